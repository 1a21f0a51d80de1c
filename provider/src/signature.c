/*
 * The shared core of signatures (sig.h): what every key kind's signature
 * file does alike.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "sig.h"

void p11c_sig_init(P11C_SIG *s, P11C_PROV *prov)
{
    memset(s, 0, sizeof(*s));
    s->prov = prov;
}

void p11c_sig_cleanup(P11C_SIG *s)
{
    p11c_pkey_free(s->pk);
    EVP_MD_CTX_free(s->mdctx);
    OPENSSL_clear_free(s->msg, s->msgcap);
    s->pk = NULL;
    s->mdctx = NULL;
    s->msg = NULL;
    s->msglen = s->msgcap = 0;
}

int p11c_sig_dup(P11C_SIG *dst, const P11C_SIG *src)
{
    dst->mdctx = NULL;
    dst->msg = NULL;
    dst->pk = NULL;
    if (src->msg != NULL && (dst->msg = OPENSSL_memdup(src->msg, src->msgcap)) == NULL)
        return 0;
    if (src->mdctx != NULL) {
        dst->mdctx = EVP_MD_CTX_new();
        if (dst->mdctx == NULL || !EVP_MD_CTX_copy_ex(dst->mdctx, src->mdctx)) {
            EVP_MD_CTX_free(dst->mdctx);
            OPENSSL_clear_free(dst->msg, dst->msgcap);
            dst->mdctx = NULL;
            dst->msg = NULL;
            return 0;
        }
    }
    dst->pk = p11c_pkey_up_ref(src->pk);
    return 1;
}

int p11c_sig_set_key(P11C_SIG *s, void *provkey, int sign, const char *kind)
{
    P11C_PKEY *pk = provkey;
    char what[300];

    if (pk != NULL) {
        if (pk->pub == NULL) {
            P11C_RAISE(s->prov, P11C_R_NO_KEY, "the key holds no %s key", kind);
            return 0;
        }
        if (sign && !p11c_pkey_has_private(pk)) {
            P11C_RAISE(s->prov, p11c_reason_of_rv(P11C_CKR_NO_PRIVATE),
                       "signing with %s: the key has no private half",
                       p11c_pkey_describe(pk, what, sizeof(what)));
            return 0;
        }
        p11c_pkey_free(s->pk);
        s->pk = p11c_pkey_up_ref(pk);
    }
    if (s->pk == NULL) {
        P11C_RAISE(s->prov, P11C_R_NO_KEY, "no key given");
        return 0;
    }
    s->md_locked = 0;
    return 1;
}

int p11c_sig_digest_start(P11C_SIG *s, const char *mdname, const char *dflt)
{
    if (mdname != NULL && *mdname != '\0') {
        const P11C_HASH *md = p11c_hash_by_name(mdname);
        if (md == NULL) {
            P11C_RAISE(s->prov, P11C_R_UNSUPPORTED, "digest %s is not supported", mdname);
            return 0;
        }
        s->md = md;
    }
    if (s->md == NULL)
        s->md = p11c_hash_by_name(dflt);
    if (s->mdctx == NULL && (s->mdctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    if (!EVP_DigestInit_ex2(s->mdctx, p11c_prov_md(s->prov, s->md), NULL))
        return 0;
    s->md_locked = 1;
    s->buffering = 0;
    s->msglen = 0;
    return 1;
}

int p11c_sig_update(P11C_SIG *s, const unsigned char *data, size_t datalen)
{
    if (s->buffering && datalen > 0) {
        if (datalen > SIZE_MAX / 2 - s->msglen)
            return 0;
        if (s->msglen + datalen > s->msgcap) {
            size_t cap = (s->msglen + datalen) * 2;
            uint8_t *m = OPENSSL_clear_realloc(s->msg, s->msgcap, cap);
            if (m == NULL)
                return 0;
            s->msg = m;
            s->msgcap = cap;
        }
        memcpy(s->msg + s->msglen, data, datalen);
        s->msglen += datalen;
    }
    return s->mdctx != NULL && EVP_DigestUpdate(s->mdctx, data, datalen);
}

int p11c_sig_digest_final(P11C_SIG *s, unsigned char *dgst, unsigned int *dlen)
{
    if (s->mdctx == NULL || !EVP_DigestFinal_ex(s->mdctx, dgst, dlen))
        return 0;
    s->md_locked = 0;
    return 1;
}

void p11c_sig_forget_message(P11C_SIG *s)
{
    OPENSSL_cleanse(s->msg, s->msglen);
    s->msglen = 0;
}

void p11c_der_put(P11C_DER *d, const uint8_t *b, size_t n)
{
    if (d->bad || n > d->cap - d->len) {
        d->bad = 1;
        return;
    }
    memcpy(d->p + d->len, b, n);
    d->len += n;
}

void p11c_der_wrap(P11C_DER *d, size_t start, uint8_t tag)
{
    size_t n = d->len - start;

    if (d->bad || n > 127 || d->cap - d->len < 2) {
        d->bad = 1;
        return;
    }
    memmove(d->p + start + 2, d->p + start, n);
    d->p[start] = tag;
    d->p[start + 1] = (uint8_t)n;
    d->len += 2;
}

/* ---- What the token offers ------------------------------------------------- */

static const CK_MECHANISM_TYPE asked_mechs[] = {CKM_ECDSA, CKM_EDDSA, CKM_ECDH1_DERIVE};

int p11c_pkey_token_offers(P11C_PKEY *pk, CK_MECHANISM_TYPE mech, CK_FLAGS flags, const char *what)
{
    P11C_TOKEN *t = p11c_key_token(pk->key);
    char name[64], desc[300];
    int bit = -1, offered;

    for (size_t i = 0; i < sizeof(asked_mechs) / sizeof(asked_mechs[0]); i++)
        if (asked_mechs[i] == mech)
            bit = 1 << i;
    if (bit < 0 || t == NULL)
        return 1;
    if ((__atomic_load_n(&pk->asked, __ATOMIC_ACQUIRE) & bit) != 0) {
        offered = (__atomic_load_n(&pk->offered, __ATOMIC_RELAXED) & bit) != 0;
    } else {
        P11C_ERR err;
        memset(&err, 0, sizeof(err));
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        offered = p11c_token_mechanism(t, mech, flags, NULL, &err) == CKR_OK;
        ERR_pop_to_mark();
        if (offered)
            __atomic_or_fetch(&pk->offered, bit, __ATOMIC_RELAXED);
        __atomic_or_fetch(&pk->asked, bit, __ATOMIC_RELEASE);
    }
    if (!offered)
        P11C_RAISE(pk->prov, p11c_reason_of_rv(CKR_MECHANISM_INVALID),
                   "%s with %s: token '%s' does not offer %s; use a key on a token that offers "
                   "it (pkcs11-tool --list-mechanisms shows what a token offers)",
                   what, p11c_pkey_describe(pk, desc, sizeof(desc)), p11c_token_label(t),
                   p11c_mech_name(mech, name, sizeof(name)));
    return offered;
}

int p11c_sig_token_offers(P11C_SIG *s, CK_MECHANISM_TYPE mech, CK_FLAGS flags, const char *what)
{
    return p11c_pkey_token_offers(s->pk, mech, flags, what);
}

int p11c_sig_algorithm_id(OSSL_PARAM *p, int sig_nid)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    unsigned char *der = NULL;
    int len = -1, ret = 0;

    if (alg == NULL || sig_nid == NID_undef ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), V_ASN1_UNDEF, NULL))
        goto end;
    len = i2d_X509_ALGOR(alg, &der);
    ret = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);
end:
    OPENSSL_free(der);
    X509_ALGOR_free(alg);
    return ret;
}

int p11c_sig_host_sign(P11C_SIG *s, int digest, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen)
{
    OSSL_LIB_CTX *sw = p11c_prov_sw(s->prov);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *m = NULL;
    int ok;

    *siglen = sigsize;
    if (digest) {
        pctx = EVP_PKEY_CTX_new_from_pkey(sw, s->pk->pub, "provider=default");
        ok = pctx != NULL && EVP_PKEY_sign_init(pctx) > 0 &&
             EVP_PKEY_sign(pctx, sig, siglen, tbs, tbslen) > 0;
    } else {
        m = EVP_MD_CTX_new();
        ok = m != NULL &&
             EVP_DigestSignInit_ex(m, NULL, NULL, sw, "provider=default", s->pk->pub, NULL) > 0 &&
             EVP_DigestSign(m, sig, siglen, tbs, tbslen) > 0;
    }
    EVP_PKEY_CTX_free(pctx);
    EVP_MD_CTX_free(m);
    return ok;
}

void p11c_sig_freectx(void *vctx)
{
    P11C_SIG *s = vctx;

    if (s == NULL)
        return;
    p11c_sig_cleanup(s);
    OPENSSL_free(s);
}

void *p11c_sig_dupctx(const void *vctx, size_t size)
{
    P11C_SIG *d = OPENSSL_memdup(vctx, size);

    if (d != NULL && !p11c_sig_dup(d, vctx)) {
        OPENSSL_free(d);
        d = NULL;
    }
    return d;
}

int p11c_sig_digest_update(void *vctx, const unsigned char *data, size_t datalen)
{
    return p11c_sig_update(vctx, data, datalen);
}

int p11c_sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen,
                                 OSSL_FUNC_signature_verify_fn *verify)
{
    P11C_SIG *s = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (s->pk == NULL || !p11c_sig_digest_final(s, dgst, &dlen))
        return 0;
    return verify(vctx, sig, siglen, dgst, dlen);
}

int p11c_sig_set_digest_param(P11C_SIG *s, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    const P11C_HASH *md;

    if (p == NULL)
        return 1;
    md = p11c_hash_from_param(s->prov, p, "");
    if (md == NULL)
        return 0;
    if (s->md_locked && md != s->md) {
        P11C_RAISE(s->prov, P11C_R_BAD_PARAM, "the digest cannot change while hashing");
        return 0;
    }
    s->md = md;
    return 1;
}
