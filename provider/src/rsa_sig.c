/*
 * RSA signatures: PKCS#1 v1.5 and PSS over the shared core of signature.c.
 * Signing hashes on the host (with the default provider in a private library
 * context, never with ours) and signs the digest in the token; verification
 * runs on the host with the public half.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "prov.h"
#include "sig.h"

static OSSL_FUNC_signature_newctx_fn sig_newctx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_verify_init_fn sig_verify_init;
static OSSL_FUNC_signature_verify_fn sig_verify;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn sig_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn sig_settable_ctx_params;

typedef struct {
    P11C_SIG s;            /* key, digest, message: the shared core */
    int pad;               /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    const P11C_HASH *mgf1; /* NULL: same as md */
    int saltlen;           /* RSA_PSS_SALTLEN_* or a length */
    /* Tokens without the bare mechanisms get the message itself, signed with
     * a hash-and-sign mechanism (CKM_SHA256_RSA_PKCS_PSS, ...). */
    int bare_pss, bare_pkcs; /* the token signs digests with these */
} SIG_CTX;

static void *sig_newctx(void *provctx, const char *propq)
{
    SIG_CTX *c = OPENSSL_zalloc(sizeof(*c));

    (void)propq;
    if (c == NULL)
        return NULL;
    p11c_sig_init(&c->s, provctx);
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_AUTO;
    return c;
}

static void *sig_dupctx(void *vctx)
{
    return p11c_sig_dupctx(vctx, sizeof(SIG_CTX));
}

static int init(SIG_CTX *c, void *provkey, const OSSL_PARAM params[], int sign)
{
    return p11c_sig_set_key(&c->s, provkey, sign, "RSA") && sig_set_ctx_params(c, params);
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 1);
}

static int sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 0);
}

/* Salt length for signing (or the AlgorithmIdentifier). */
static int salt_for(const SIG_CTX *c, const P11C_HASH *md, size_t *salt)
{
    size_t emlen = (c->s.pk->bits - 1 + 7) / 8;
    size_t max;

    if (emlen < md->len + 2)
        return 0;
    max = emlen - md->len - 2;
    switch (c->saltlen) {
    case RSA_PSS_SALTLEN_DIGEST:
        *salt = md->len;
        break;
    case RSA_PSS_SALTLEN_MAX:
    case RSA_PSS_SALTLEN_AUTO: /* signing: as OpenSSL 3.0 does, the maximum */
        *salt = max;
        break;
    case -4: /* RSA_PSS_SALTLEN_AUTO_DIGEST_MAX of OpenSSL 3.1 */
        *salt = md->len < max ? md->len : max;
        break;
    default:
        if (c->saltlen < 0)
            return 0;
        *salt = (size_t)c->saltlen;
    }
    return *salt <= max;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    SIG_CTX *c = vctx;
    const P11C_HASH *md = c->s.md;
    P11C_MECH mech;
    P11C_ERR err;
    uint8_t buf[19 + 64];
    const uint8_t *in = tbs;
    size_t inlen = tbslen, salt, k;
    CK_RV rv;

    if (c->s.pk == NULL)
        return 0;
    k = p11c_pkey_size(c->s.pk);
    if (sig == NULL) {
        *siglen = k;
        return 1;
    }
    if (sigsize < k) {
        P11C_RAISE(c->s.prov, P11C_R_BUFFER_SMALL, "signature buffer of %zu bytes, %zu needed",
                   sigsize, k);
        return 0;
    }
    if (!p11c_prov_alive(c->s.prov))
        return 0;
    if (md == NULL && c->pad == RSA_PKCS1_PSS_PADDING)
        md = p11c_hash_by_len(tbslen);
    if (md != NULL && tbslen != md->len) {
        P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM, "a %s digest is %zu bytes, got %zu", md->name,
                   md->len, tbslen);
        return 0;
    }
    memset(&mech, 0, sizeof(mech));
    if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const P11C_HASH *mgf1 = c->mgf1 != NULL ? c->mgf1 : md;
        if (md == NULL || !salt_for(c, md, &salt)) {
            P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM,
                       "PSS: digest or salt length do not fit the key");
            return 0;
        }
        /* A token without PSS but with raw RSA: encoded on the host. */
        int host = p11c_pss_host_wanted(c->s.prov, c->s.pk, NULL);
        if (host != 0)
            return host > 0 && p11c_pss_host_sign(c->s.prov, c->s.pk, md, mgf1, salt, tbs, sig,
                                                  siglen, sigsize);
        mech.type = CKM_RSA_PKCS_PSS;
        mech.hash = md->ckm;
        mech.mgf = mgf1->mgf;
        mech.salt_len = salt;
    } else {
        mech.type = CKM_RSA_PKCS;
        if (md != NULL) {
            memcpy(buf, md->diginfo, md->diginfolen);
            memcpy(buf + md->diginfolen, tbs, tbslen);
            in = buf;
            inlen = md->diginfolen + tbslen;
        }
    }
    memset(&err, 0, sizeof(err));
    *siglen = sigsize;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_sign(c->s.pk->key, &mech, in, inlen, sig, siglen, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->s.prov, &err);
        return 0;
    }
    return 1;
}

/* Verification on the host, with the public half in the private context. */
static int verify_digest(SIG_CTX *c, const unsigned char *sig, size_t siglen,
                         const unsigned char *tbs, size_t tbslen)
{
    const P11C_HASH *md = c->s.md;
    EVP_PKEY_CTX *v = NULL;
    int ret = 0;

    if (md == NULL && c->pad == RSA_PKCS1_PSS_PADDING)
        md = p11c_hash_by_len(tbslen);
    v = EVP_PKEY_CTX_new_from_pkey(p11c_prov_sw(c->s.prov), c->s.pk->pub, "provider=default");
    if (v == NULL || EVP_PKEY_verify_init(v) <= 0 || EVP_PKEY_CTX_set_rsa_padding(v, c->pad) <= 0)
        goto end;
    if (md != NULL && EVP_PKEY_CTX_set_signature_md(v, p11c_prov_md(c->s.prov, md)) <= 0)
        goto end;
    if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const P11C_HASH *mgf1 = c->mgf1 != NULL ? c->mgf1 : md;
        /* Verifying, "auto" means: take the salt length from the signature. */
        int salt = c->saltlen == -4 ? RSA_PSS_SALTLEN_AUTO : c->saltlen;
        if (EVP_PKEY_CTX_set_rsa_pss_saltlen(v, salt) <= 0 ||
            (mgf1 != NULL && EVP_PKEY_CTX_set_rsa_mgf1_md(v, p11c_prov_md(c->s.prov, mgf1)) <= 0))
            goto end;
    }
    ret = EVP_PKEY_verify(v, sig, siglen, tbs, tbslen) == 1;
end:
    EVP_PKEY_CTX_free(v);
    return ret;
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen)
{
    SIG_CTX *c = vctx;
    int ok;

    if (c->s.pk == NULL)
        return 0;
    ERR_set_mark();
    ok = verify_digest(c, sig, siglen, tbs, tbslen);
    ERR_pop_to_mark();
    if (!ok)
        P11C_RAISE(c->s.prov, P11C_R_BAD_SIGNATURE, "signature verification failed");
    return ok;
}

static int digest_init(SIG_CTX *c, const char *mdname, void *provkey, const OSSL_PARAM params[],
                       int sign)
{
    if (!init(c, provkey, params, sign) || !p11c_sig_digest_start(&c->s, mdname, "SHA256"))
        return 0;
    if (sign) {
        /* Asked once per key (the padding may still change, so both); the
         * answers stay with the key. */
        int mechs = __atomic_load_n(&c->s.pk->mechs, __ATOMIC_RELAXED);
        if (mechs == 0) {
            P11C_TOKEN *t = p11c_key_token(c->s.pk->key);
            P11C_ERR err;
            memset(&err, 0, sizeof(err));
            ERR_set_mark();
            mechs = P11C_MECHS_KNOWN;
            if (p11c_token_mechanism(t, CKM_RSA_PKCS_PSS, CKF_SIGN, NULL, &err) == CKR_OK)
                mechs |= P11C_MECHS_PSS;
            if (p11c_token_mechanism(t, CKM_RSA_PKCS, CKF_SIGN, NULL, &err) == CKR_OK)
                mechs |= P11C_MECHS_PKCS;
            ERR_pop_to_mark();
            __atomic_store_n(&c->s.pk->mechs, mechs, __ATOMIC_RELAXED);
        }
        c->bare_pss = (mechs & P11C_MECHS_PSS) != 0;
        c->bare_pkcs = (mechs & P11C_MECHS_PKCS) != 0;
        c->s.buffering = !c->bare_pss || !c->bare_pkcs;
    }
    return 1;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, params, 1);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, params, 0);
}

/* Signs the whole message with a hash-and-sign mechanism. */
static int sign_message(SIG_CTX *c, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    P11C_TOKEN *t = p11c_key_token(c->s.pk->key);
    P11C_MECH mech;
    P11C_ERR err;
    size_t salt;
    CK_RV rv;

    memset(&mech, 0, sizeof(mech));
    memset(&err, 0, sizeof(err));
    if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const P11C_HASH *mgf1 = c->mgf1 != NULL ? c->mgf1 : c->s.md;
        if (!salt_for(c, c->s.md, &salt)) {
            P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM, "PSS: salt length does not fit the key");
            return 0;
        }
        mech.type = c->s.md->rsa_pss;
        mech.hash = c->s.md->ckm;
        mech.mgf = mgf1->mgf;
        mech.salt_len = salt;
    } else {
        mech.type = c->s.md->rsa_pkcs;
    }
    ERR_set_mark();
    rv = p11c_token_mechanism(t, mech.type, CKF_SIGN, NULL, &err);
    if (rv == CKR_OK) {
        *siglen = sigsize;
        rv = p11c_key_sign(c->s.pk->key, &mech, c->s.msg, c->s.msglen, sig, siglen, &err);
    }
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->s.prov, &err);
        return 0;
    }
    return 1;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    SIG_CTX *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ret;

    if (c->s.pk == NULL || c->s.mdctx == NULL)
        return 0;
    if (sig == NULL)
        return sig_sign(c, NULL, siglen, sigsize, NULL, 0);
    if (!p11c_sig_digest_final(&c->s, dgst, &dlen))
        return 0;
    /* A token without any PSS mechanism but with raw RSA signs the digest
     * (PSS encoded on the host), not the message. */
    int host = c->pad == RSA_PKCS1_PSS_PADDING && c->s.buffering && !c->bare_pss
                   ? p11c_pss_host_wanted(c->s.prov, c->s.pk, c->s.md)
                   : 0;
    if (host < 0) {
        OPENSSL_cleanse(dgst, sizeof(dgst));
        return 0;
    }
    if (c->s.buffering && !(c->pad == RSA_PKCS1_PSS_PADDING ? c->bare_pss : c->bare_pkcs) &&
        host == 0) {
        size_t k = p11c_pkey_size(c->s.pk);
        if (sigsize < k) {
            P11C_RAISE(c->s.prov, P11C_R_BUFFER_SMALL, "signature buffer of %zu bytes, %zu needed",
                       sigsize, k);
            return 0;
        }
        ret = p11c_prov_alive(c->s.prov) && sign_message(c, sig, siglen, sigsize);
        p11c_sig_forget_message(&c->s);
        return ret;
    }
    ret = sig_sign(c, sig, siglen, sigsize, dgst, dlen);
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ret;
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    return p11c_sig_digest_verify_final(vctx, sig, siglen, sig_verify);
}

/* ---- AlgorithmIdentifier --------------------------------------------------- */

static void der_hash_algid(P11C_DER *d, const P11C_HASH *h)
{
    static const uint8_t null[] = {0x05, 0x00};
    size_t s = d->len;

    p11c_der_put(d, h->oid, h->oidlen);
    p11c_der_put(d, null, sizeof(null));
    p11c_der_wrap(d, s, 0x30);
}

static int algorithm_id(SIG_CTX *c, uint8_t *out, size_t cap, size_t *len)
{
    static const uint8_t null[] = {0x05, 0x00};
    static const uint8_t pss_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                      0xf7, 0x0d, 0x01, 0x01, 0x0a};
    static const uint8_t mgf1_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                       0xf7, 0x0d, 0x01, 0x01, 0x08};
    P11C_DER d = {out, 0, cap, 0};
    const P11C_HASH *md = c->s.md, *mgf1;
    size_t salt, s0, s1, s2;

    if (md == NULL)
        return 0;
    if (c->pad != RSA_PKCS1_PSS_PADDING) {
        p11c_der_put(&d, md->rsa_oid, 11);
        p11c_der_put(&d, null, sizeof(null));
        p11c_der_wrap(&d, 0, 0x30);
    } else {
        mgf1 = c->mgf1 != NULL ? c->mgf1 : md;
        if (c->s.pk == NULL || !salt_for(c, md, &salt) || salt > 0x7fff)
            return 0;
        p11c_der_put(&d, pss_oid, sizeof(pss_oid));
        s0 = d.len; /* RSASSA-PSS-params; SHA-1, MGF1-SHA-1 and 20 are DEFAULT */
        if (md->index != 0) {
            s1 = d.len;
            der_hash_algid(&d, md);
            p11c_der_wrap(&d, s1, 0xa0);
        }
        if (mgf1->index != 0) {
            s1 = d.len;
            s2 = d.len;
            p11c_der_put(&d, mgf1_oid, sizeof(mgf1_oid));
            der_hash_algid(&d, mgf1);
            p11c_der_wrap(&d, s2, 0x30);
            p11c_der_wrap(&d, s1, 0xa1);
        }
        if (salt != 20) {
            uint8_t integer[4] = {0x02, 0x01, (uint8_t)salt, 0};
            size_t n = 3;
            s1 = d.len;
            if (salt >= 0x80) {
                integer[1] = 0x02;
                integer[2] = (uint8_t)(salt >> 8);
                integer[3] = (uint8_t)salt;
                n = 4;
            }
            p11c_der_put(&d, integer, n);
            p11c_der_wrap(&d, s1, 0xa2);
        }
        p11c_der_wrap(&d, s0, 0x30);
        p11c_der_wrap(&d, 0, 0x30);
    }
    *len = d.len;
    return !d.bad;
}

/* ---- Parameters ------------------------------------------------------------ */

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    SIG_CTX *c = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL) {
        uint8_t aid[128];
        size_t len = 0;
        if (!algorithm_id(c, aid, sizeof(aid), &len) || !OSSL_PARAM_set_octet_string(p, aid, len))
            return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->s.md != NULL ? c->s.md->name : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, c->pad))
                return 0;
        } else if (!OSSL_PARAM_set_utf8_string(p,
                                               c->pad == RSA_PKCS1_PSS_PADDING ? "pss" : "pkcs1")) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const P11C_HASH *mgf1 = c->mgf1 != NULL ? c->mgf1 : c->s.md;
        if (!OSSL_PARAM_set_utf8_string(p, mgf1 != NULL ? mgf1->name : ""))
            return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, c->saltlen))
                return 0;
        } else {
            char s[16];
            switch (c->saltlen) {
            case RSA_PSS_SALTLEN_DIGEST:
                strcpy(s, "digest");
                break;
            case RSA_PSS_SALTLEN_MAX:
                strcpy(s, "max");
                break;
            case RSA_PSS_SALTLEN_AUTO:
                strcpy(s, "auto");
                break;
            default:
                snprintf(s, sizeof(s), "%d", c->saltlen);
            }
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        }
    }
    return 1;
}

static const OSSL_PARAM sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return sig_gettable;
}

static int set_pad(SIG_CTX *c, const OSSL_PARAM *p)
{
    int pad = -1;

    if (p->data_type == OSSL_PARAM_INTEGER || p->data_type == OSSL_PARAM_UNSIGNED_INTEGER) {
        if (!OSSL_PARAM_get_int(p, &pad))
            pad = -1;
    } else if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (strcasecmp(p->data, "pkcs1") == 0)
            pad = RSA_PKCS1_PADDING;
        else if (strcasecmp(p->data, "pss") == 0)
            pad = RSA_PKCS1_PSS_PADDING;
    }
    if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
        P11C_RAISE(c->s.prov, P11C_R_UNSUPPORTED, "padding: only pkcs1 and pss are supported");
        return 0;
    }
    c->pad = pad;
    return 1;
}

static int set_saltlen(SIG_CTX *c, const OSSL_PARAM *p)
{
    int v;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *s = p->data;
        char *endp = NULL;
        long n;
        if (strcmp(s, "digest") == 0) {
            v = RSA_PSS_SALTLEN_DIGEST;
        } else if (strcmp(s, "max") == 0) {
            v = RSA_PSS_SALTLEN_MAX;
        } else if (strcmp(s, "auto") == 0) {
            v = RSA_PSS_SALTLEN_AUTO;
        } else if (strcmp(s, "auto-digestmax") == 0) {
            v = -4;
        } else {
            n = strtol(s, &endp, 10);
            if (*s == '\0' || *endp != '\0' || n < -4 || n > 0x7fff)
                goto bad;
            v = (int)n;
        }
    } else if (!OSSL_PARAM_get_int(p, &v) || v < -4 || v > 0x7fff) {
        goto bad;
    }
    c->saltlen = v;
    return 1;
bad:
    P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM, "PSS salt length: digest, max, auto or a number");
    return 0;
}

static int set_md(SIG_CTX *c, const OSSL_PARAM *p, const P11C_HASH **dst)
{
    const P11C_HASH *h = p11c_hash_from_param(c->s.prov, p, "");

    if (h != NULL)
        *dst = h;
    return h != NULL;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    SIG_CTX *c = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if (!p11c_sig_set_digest_param(&c->s, params))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && !set_pad(c, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !set_saltlen(c, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL && !set_md(c, p, &c->mgf1))
        return 0;
    return 1;
}

static const OSSL_PARAM sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return sig_settable;
}

const OSSL_DISPATCH p11c_rsa_signature_functions[] = {
    P11C_SIG_DISPATCH(sig),
    P11C_DISPATCH_END,
};
