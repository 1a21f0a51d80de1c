/*
 * Ed25519 and Ed448 (pure EdDSA, no context) over the shared core of
 * signature.c: the whole message is signed in the token with CKM_EDDSA, in
 * one shot as OpenSSL's EdDSA is; verification runs on the host.
 */
#include <string.h>

#include <openssl/objects.h>

#include "prov.h"
#include "sig.h"

static OSSL_FUNC_signature_newctx_fn eddsa_newctx;
static OSSL_FUNC_signature_freectx_fn eddsa_freectx;
static OSSL_FUNC_signature_dupctx_fn eddsa_dupctx;
static OSSL_FUNC_signature_digest_sign_init_fn eddsa_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_fn eddsa_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn eddsa_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_fn eddsa_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn eddsa_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn eddsa_gettable_ctx_params;

typedef struct {
    P11C_SIG s;
} EDDSA_CTX;

static void *eddsa_newctx(void *provctx, const char *propq)
{
    EDDSA_CTX *c = OPENSSL_zalloc(sizeof(*c));

    (void)propq;
    if (c != NULL)
        p11c_sig_init(&c->s, provctx);
    return c;
}

static void eddsa_freectx(void *vctx)
{
    EDDSA_CTX *c = vctx;

    if (c == NULL)
        return;
    p11c_sig_cleanup(&c->s);
    OPENSSL_free(c);
}

static void *eddsa_dupctx(void *vctx)
{
    EDDSA_CTX *c = vctx, *d = OPENSSL_memdup(c, sizeof(*c));

    if (d != NULL && !p11c_sig_dup(&d->s, &c->s)) {
        OPENSSL_free(d);
        d = NULL;
    }
    return d;
}

static int init(EDDSA_CTX *c, const char *mdname, void *provkey, int sign)
{
    P11C_PKEY *pk = provkey;

    if (mdname != NULL && *mdname != '\0') {
        P11C_RAISE(c->s.prov, P11C_R_BAD_PARAM, "EdDSA hashes the message itself: no digest (%s)",
                   mdname);
        return 0;
    }
    if (pk != NULL && pk->kind != P11C_PKIND_ED25519 && pk->kind != P11C_PKIND_ED448) {
        P11C_RAISE(c->s.prov, P11C_R_NO_KEY, "EdDSA needs an Ed25519 or Ed448 key");
        return 0;
    }
    if (!p11c_sig_set_key(&c->s, provkey, sign, "EdDSA"))
        return 0;
    return !sign || p11c_sig_token_offers(&c->s, CKM_EDDSA, CKF_SIGN, "EdDSA signing");
}

static int eddsa_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    (void)params;
    return init(vctx, mdname, provkey, 1);
}

static int eddsa_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                    const OSSL_PARAM params[])
{
    (void)params;
    return init(vctx, mdname, provkey, 0);
}

static int eddsa_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                             const unsigned char *tbs, size_t tbslen)
{
    EDDSA_CTX *c = vctx;
    P11C_MECH mech;
    P11C_ERR err;
    size_t n;
    CK_RV rv;

    if (c->s.pk == NULL)
        return 0;
    n = p11c_pkey_size(c->s.pk);
    if (sig == NULL) {
        *siglen = n;
        return 1;
    }
    if (sigsize < n) {
        P11C_RAISE(c->s.prov, P11C_R_BUFFER_SMALL, "signature buffer of %zu bytes, %zu needed",
                   sigsize, n);
        return 0;
    }
    if (c->s.pk->host_private)
        return p11c_sig_host_sign(&c->s, 0, sig, siglen, sigsize, tbs, tbslen);
    if (!p11c_prov_alive(c->s.prov))
        return 0;
    memset(&mech, 0, sizeof(mech));
    mech.type = CKM_EDDSA;
    memset(&err, 0, sizeof(err));
    *siglen = sigsize;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_sign(c->s.pk->key, &mech, tbs, tbslen, sig, siglen, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->s.prov, &err);
        return 0;
    }
    return 1;
}

static int eddsa_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                               const unsigned char *tbs, size_t tbslen)
{
    EDDSA_CTX *c = vctx;
    EVP_MD_CTX *m = NULL;
    int ok = 0;

    if (c->s.pk == NULL)
        return 0;
    ERR_set_mark();
    m = EVP_MD_CTX_new();
    ok = m != NULL &&
         EVP_DigestVerifyInit_ex(m, NULL, NULL, p11c_prov_sw(c->s.prov), "provider=default",
                                 c->s.pk->pub, NULL) == 1 &&
         EVP_DigestVerify(m, sig, siglen, tbs, tbslen) == 1;
    EVP_MD_CTX_free(m);
    ERR_pop_to_mark();
    if (!ok)
        P11C_RAISE(c->s.prov, P11C_R_BAD_SIGNATURE, "signature verification failed");
    return ok;
}

static int eddsa_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    EDDSA_CTX *c = vctx;
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);

    if (p != NULL &&
        (c->s.pk == NULL ||
         !p11c_sig_algorithm_id(p, c->s.pk->kind == P11C_PKIND_ED448 ? NID_ED448 : NID_ED25519)))
        return 0;
    return 1;
}

static const OSSL_PARAM eddsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *eddsa_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return eddsa_gettable;
}

#define EDDSA_SIGNATURE(table)                                                                     \
    const OSSL_DISPATCH table[] = {                                                                \
        P11C_DISPATCH(SIGNATURE, signature, NEWCTX, newctx, eddsa_newctx),                         \
        P11C_DISPATCH(SIGNATURE, signature, FREECTX, freectx, eddsa_freectx),                      \
        P11C_DISPATCH(SIGNATURE, signature, DUPCTX, dupctx, eddsa_dupctx),                         \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN_INIT, digest_sign_init,                    \
                      eddsa_digest_sign_init),                                                     \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN, digest_sign, eddsa_digest_sign),          \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_VERIFY_INIT, digest_verify_init,                \
                      eddsa_digest_verify_init),                                                   \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_VERIFY, digest_verify, eddsa_digest_verify),    \
        P11C_DISPATCH(SIGNATURE, signature, GET_CTX_PARAMS, get_ctx_params, eddsa_get_ctx_params), \
        P11C_DISPATCH(SIGNATURE, signature, GETTABLE_CTX_PARAMS, gettable_ctx_params,              \
                      eddsa_gettable_ctx_params),                                                  \
        P11C_DISPATCH_END,                                                                         \
    }
EDDSA_SIGNATURE(p11c_ed25519_signature_functions);
EDDSA_SIGNATURE(p11c_ed448_signature_functions);
