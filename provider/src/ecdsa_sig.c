/*
 * ECDSA over the shared core of signature.c. The digest is made on the host
 * (the default provider in our private context) and signed in the token with
 * CKM_ECDSA, whose raw r||s becomes the DER ECDSA-Sig-Value OpenSSL expects.
 * Verification runs on the host with the public half.
 */
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "prov.h"
#include "sig.h"

static OSSL_FUNC_signature_newctx_fn ecdsa_newctx;
static OSSL_FUNC_signature_dupctx_fn ecdsa_dupctx;
static OSSL_FUNC_signature_sign_init_fn ecdsa_sign_init;
static OSSL_FUNC_signature_sign_fn ecdsa_sign;
static OSSL_FUNC_signature_verify_init_fn ecdsa_verify_init;
static OSSL_FUNC_signature_verify_fn ecdsa_verify;
static OSSL_FUNC_signature_digest_sign_init_fn ecdsa_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_final_fn ecdsa_digest_sign_final;
static OSSL_FUNC_signature_digest_sign_fn ecdsa_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn ecdsa_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_final_fn ecdsa_digest_verify_final;
static OSSL_FUNC_signature_get_ctx_params_fn ecdsa_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn ecdsa_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn ecdsa_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ecdsa_settable_ctx_params;

typedef struct {
    P11C_SIG s;
} ECDSA_CTX;

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    ECDSA_CTX *c = OPENSSL_zalloc(sizeof(*c));

    (void)propq;
    if (c != NULL)
        p11c_sig_init(&c->s, provctx);
    return c;
}

static void *ecdsa_dupctx(void *vctx)
{
    return p11c_sig_dupctx(vctx, sizeof(ECDSA_CTX));
}

static int init(ECDSA_CTX *c, void *provkey, const OSSL_PARAM params[], int sign)
{
    P11C_PKEY *pk = provkey;

    if (pk != NULL && pk->kind != P11C_PKIND_EC) {
        P11C_RAISE(c->s.prov, P11C_R_NO_KEY, "ECDSA needs an EC key");
        return 0;
    }
    if (!p11c_sig_set_key(&c->s, provkey, sign, "EC"))
        return 0;
    if (sign && !p11c_sig_token_offers(&c->s, CKM_ECDSA, CKF_SIGN, "ECDSA signing"))
        return 0;
    return ecdsa_set_ctx_params(c, params);
}

static int ecdsa_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 1);
}

static int ecdsa_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 0);
}

/* One DER INTEGER of the unsigned big-endian v[n]: no leading zero bytes
 * but one, a zero byte first when the top bit is set. At most n + 3 bytes. */
static size_t der_uint(uint8_t *out, const uint8_t *v, size_t n)
{
    size_t len;

    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    len = n + (v[0] >> 7);
    out[0] = 0x02;
    out[1] = (uint8_t)len; /* n <= 66: always the short form */
    out[2] = 0;
    memcpy(out + 2 + len - n, v, n);
    return 2 + len;
}

/* r||s of n bytes each (n <= 66) as the DER ECDSA-Sig-Value, written
 * directly: no ECDSA_SIG, no BIGNUM, no allocation. */
static int raw_to_der(const uint8_t *raw, size_t n, unsigned char *sig, size_t *siglen,
                      size_t sigsize)
{
    uint8_t body[2 * (66 + 3)];
    size_t blen = der_uint(body, raw, n), hlen;

    blen += der_uint(body + blen, raw + n, n);
    hlen = blen < 0x80 ? 2 : 3;
    if (hlen + blen > sigsize)
        return 0;
    sig[0] = 0x30;
    if (hlen == 3)
        sig[1] = 0x81;
    sig[hlen - 1] = (uint8_t)blen;
    memcpy(sig + hlen, body, blen);
    *siglen = hlen + blen;
    return 1;
}

static int ecdsa_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                      const unsigned char *tbs, size_t tbslen)
{
    ECDSA_CTX *c = vctx;
    P11C_MECH mech;
    P11C_ERR err;
    uint8_t raw[2 * 66];
    size_t rawlen = sizeof(raw), max, flen;
    CK_RV rv;

    if (c->s.pk == NULL)
        return 0;
    max = p11c_pkey_size(c->s.pk);
    if (sig == NULL) {
        *siglen = max;
        return 1;
    }
    if (c->s.md != NULL && tbslen != c->s.md->len) {
        P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM, "a %s digest is %zu bytes, got %zu", c->s.md->name,
                   c->s.md->len, tbslen);
        return 0;
    }
    if (c->s.pk->host_private)
        return p11c_sig_host_sign(&c->s, 1, sig, siglen, sigsize, tbs, tbslen);
    if (!p11c_prov_alive(c->s.prov))
        return 0;
    /* A digest longer than the group order is cut to its leading bytes, as
     * ECDSA says (the orders of P-256 and P-384 are whole bytes; P-521's is
     * longer than any digest). */
    flen = p11c_key_sig_len(c->s.pk->key) / 2;
    if (tbslen > flen)
        tbslen = flen;
    memset(&mech, 0, sizeof(mech));
    mech.type = CKM_ECDSA;
    memset(&err, 0, sizeof(err));
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_sign(c->s.pk->key, &mech, tbs, tbslen, raw, &rawlen, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->s.prov, &err);
        return 0;
    }
    if (rawlen != 2 * flen || !raw_to_der(raw, flen, sig, siglen, sigsize)) {
        P11C_RAISE(c->s.prov, P11C_R_BUFFER_SMALL,
                   "ECDSA signature: %zu bytes from the token, buffer of %zu", rawlen, sigsize);
        return 0;
    }
    return 1;
}

static int ecdsa_verify(void *vctx, const unsigned char *sig, size_t siglen,
                        const unsigned char *tbs, size_t tbslen)
{
    ECDSA_CTX *c = vctx;
    EVP_PKEY_CTX *v = NULL;
    int ok = 0;

    if (c->s.pk == NULL)
        return 0;
    ERR_set_mark();
    v = EVP_PKEY_CTX_new_from_pkey(p11c_prov_sw(c->s.prov), c->s.pk->pub, "provider=default");
    ok = v != NULL && EVP_PKEY_verify_init(v) > 0 &&
         EVP_PKEY_verify(v, sig, siglen, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(v);
    ERR_pop_to_mark();
    if (!ok)
        P11C_RAISE(c->s.prov, P11C_R_BAD_SIGNATURE, "signature verification failed");
    return ok;
}

static int digest_init(ECDSA_CTX *c, const char *mdname, void *provkey, const OSSL_PARAM params[],
                       int sign)
{
    return init(c, provkey, params, sign) && p11c_sig_digest_start(&c->s, mdname, "SHA256");
}

static int ecdsa_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, params, 1);
}

static int ecdsa_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                    const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, params, 0);
}

static int ecdsa_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    ECDSA_CTX *c = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ret;

    if (c->s.pk == NULL || c->s.mdctx == NULL)
        return 0;
    if (sig == NULL)
        return ecdsa_sign(c, NULL, siglen, sigsize, NULL, 0);
    if (!p11c_sig_digest_final(&c->s, dgst, &dlen))
        return 0;
    ret = ecdsa_sign(c, sig, siglen, sigsize, dgst, dlen);
    OPENSSL_cleanse(dgst, sizeof(dgst));
    return ret;
}

/* EVP_DigestSign: the message alone, hashed afresh (so that the context
 * can sign again), without libcrypto's copy of the whole context that
 * EVP_DigestSignFinal makes to keep the caller's context usable. */
static int ecdsa_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                             const unsigned char *tbs, size_t tbslen)
{
    ECDSA_CTX *c = vctx;

    if (c->s.pk == NULL || c->s.mdctx == NULL)
        return 0;
    if (sig == NULL)
        return ecdsa_sign(c, NULL, siglen, sigsize, NULL, 0);
    if (!EVP_DigestInit_ex2(c->s.mdctx, NULL, NULL) || !p11c_sig_update(&c->s, tbs, tbslen))
        return 0;
    return ecdsa_digest_sign_final(c, sig, siglen, sigsize);
}

static int ecdsa_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    return p11c_sig_digest_verify_final(vctx, sig, siglen, ecdsa_verify);
}

/* ---- Parameters ------------------------------------------------------------ */

static int ecdsa_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    ECDSA_CTX *c = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL) {
        int sig_nid = NID_undef;
        if (c->s.md == NULL ||
            !OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(p11c_prov_md(c->s.prov, c->s.md)),
                                    NID_X9_62_id_ecPublicKey) ||
            !p11c_sig_algorithm_id(p, sig_nid))
            return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->s.md != NULL ? c->s.md->name : ""))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE);
    if (p != NULL && !OSSL_PARAM_set_size_t(p, c->s.md != NULL ? c->s.md->len : 0))
        return 0;
    return 1;
}

static const OSSL_PARAM ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdsa_gettable;
}

static int ecdsa_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    ECDSA_CTX *c = vctx;

    return params == NULL || p11c_sig_set_digest_param(&c->s, params);
}

static const OSSL_PARAM ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdsa_settable;
}

const OSSL_DISPATCH p11c_ecdsa_signature_functions[] = {
    P11C_SIG_DISPATCH(ecdsa),
    P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN, digest_sign, ecdsa_digest_sign),
    P11C_DISPATCH_END,
};
