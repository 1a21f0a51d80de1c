/*
 * ECDH key exchange: the token derives (CKM_ECDH1_DERIVE, no KDF) with its
 * private key and the peer's public point; the shared secret, OpenSSL's
 * plain x coordinate, comes back through a session object the token destroys
 * before EVP_PKEY_derive returns.
 */
#include <string.h>

#include "prov.h"

static OSSL_FUNC_keyexch_newctx_fn ecdh_newctx;
static OSSL_FUNC_keyexch_init_fn ecdh_init;
static OSSL_FUNC_keyexch_set_peer_fn ecdh_set_peer;
static OSSL_FUNC_keyexch_derive_fn ecdh_derive;
static OSSL_FUNC_keyexch_freectx_fn ecdh_freectx;
static OSSL_FUNC_keyexch_dupctx_fn ecdh_dupctx;
static OSSL_FUNC_keyexch_set_ctx_params_fn ecdh_set_ctx_params;
static OSSL_FUNC_keyexch_settable_ctx_params_fn ecdh_settable_ctx_params;
static OSSL_FUNC_keyexch_get_ctx_params_fn ecdh_get_ctx_params;
static OSSL_FUNC_keyexch_gettable_ctx_params_fn ecdh_gettable_ctx_params;

typedef struct {
    P11C_PROV *prov;
    P11C_PKEY *pk;   /* ours, in the token */
    P11C_PKEY *peer; /* theirs, public */
} ECDH_CTX;

static void *ecdh_newctx(void *provctx)
{
    ECDH_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c != NULL)
        c->prov = provctx;
    return c;
}

static void ecdh_freectx(void *vctx)
{
    ECDH_CTX *c = vctx;

    if (c == NULL)
        return;
    p11c_pkey_free(c->pk);
    p11c_pkey_free(c->peer);
    OPENSSL_free(c);
}

static void *ecdh_dupctx(void *vctx)
{
    ECDH_CTX *c = vctx, *d = OPENSSL_memdup(c, sizeof(*c));

    if (d != NULL) {
        p11c_pkey_up_ref(d->pk);
        p11c_pkey_up_ref(d->peer);
    }
    return d;
}

static int ecdh_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    ECDH_CTX *c = vctx;
    P11C_PKEY *pk = provkey;
    char what[300];

    if (pk == NULL || pk->kind != P11C_PKIND_EC || pk->pub == NULL) {
        P11C_RAISE(c->prov, P11C_R_NO_KEY, "ECDH needs an EC key");
        return 0;
    }
    if (!p11c_pkey_has_private(pk)) {
        P11C_RAISE(c->prov, p11c_reason_of_rv(P11C_CKR_NO_PRIVATE),
                   "ECDH with %s: the key has no private half",
                   p11c_pkey_describe(pk, what, sizeof(what)));
        return 0;
    }
    if (!p11c_pkey_token_offers(pk, CKM_ECDH1_DERIVE, CKF_DERIVE, "ECDH"))
        return 0;
    p11c_pkey_free(c->pk);
    c->pk = p11c_pkey_up_ref(pk);
    return ecdh_set_ctx_params(c, params);
}

static int ecdh_set_peer(void *vctx, void *provkey)
{
    ECDH_CTX *c = vctx;
    P11C_PKEY *peer = provkey;
    const char *ours;

    if (c->pk == NULL || peer == NULL || peer->kind != P11C_PKIND_EC || peer->pub == NULL) {
        P11C_RAISE(c->prov, P11C_R_NO_KEY, "ECDH: the peer key is not an EC key");
        return 0;
    }
    /* A peer that spells its curve out (explicit parameters) may carry a
     * cofactor or generator of its own: only named curves are taken. The
     * peer's curve and point were read once, when it was imported. */
    if (peer->curve == NULL || peer->pointlen == 0) {
        P11C_RAISE(c->prov, P11C_R_BAD_PARAM,
                   "ECDH: the peer key gives explicit curve parameters or no point; only named "
                   "curves are used");
        return 0;
    }
    ours = c->pk->curve;
    if (ours == NULL || strcmp(ours, peer->curve) != 0) {
        P11C_RAISE(c->prov, P11C_R_BAD_PARAM,
                   "ECDH: the peer key is on curve %s, the token key on %s", peer->curve,
                   ours != NULL ? ours : "?");
        return 0;
    }
    p11c_pkey_free(c->peer);
    c->peer = p11c_pkey_up_ref(peer);
    return 1;
}

/* A key pair held on the host (host_private): the default provider derives. */
static int host_derive(ECDH_CTX *c, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    EVP_PKEY_CTX *d =
        EVP_PKEY_CTX_new_from_pkey(p11c_prov_sw(c->prov), c->pk->pub, "provider=default");
    int ok = d != NULL && EVP_PKEY_derive_init(d) > 0 &&
             EVP_PKEY_derive_set_peer_ex(d, c->peer->pub, 0) > 0;

    *secretlen = outlen;
    ok = ok && EVP_PKEY_derive(d, secret, secretlen) > 0;
    EVP_PKEY_CTX_free(d);
    return ok;
}

static int ecdh_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    ECDH_CTX *c = vctx;
    uint8_t buf[66];
    size_t n = sizeof(buf);
    P11C_ERR err;
    CK_RV rv;
    int ret = 0;

    if (c->pk == NULL || c->peer == NULL) {
        P11C_RAISE(c->prov, P11C_R_NO_KEY, "ECDH: %s", c->pk == NULL ? "no key" : "no peer key");
        return 0;
    }
    if (c->pk->host_private)
        return host_derive(c, secret, secretlen, outlen);
    n = p11c_key_sig_len(c->pk->key) / 2;
    if (secret == NULL) {
        *secretlen = n;
        return 1;
    }
    if (!p11c_prov_alive(c->prov))
        return 0;
    memset(&err, 0, sizeof(err));
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_derive(c->pk->key, c->peer->point, c->peer->pointlen, buf, &n, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->prov, &err);
        goto end;
    }
    /* As OpenSSL does: a shorter buffer gets the leading bytes. */
    if (outlen < n)
        n = outlen;
    memcpy(secret, buf, n);
    *secretlen = n;
    ret = 1;
end:
    OPENSSL_cleanse(buf, sizeof(buf));
    return ret;
}

static int ecdh_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    ECDH_CTX *c = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p != NULL) {
        const char *kdf = NULL;
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &kdf) || (kdf != NULL && *kdf != '\0')) {
            P11C_RAISE(c->prov, P11C_R_UNSUPPORTED,
                       "ECDH in the token gives the plain shared secret: no KDF (%s)",
                       kdf != NULL ? kdf : "?");
            return 0;
        }
    }
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p != NULL) {
        int mode;
        /* P-256, P-384, P-521 have cofactor 1: both modes are the same. */
        if (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1)
            return 0;
    }
    return 1;
}

static const OSSL_PARAM ecdh_settable[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdh_settable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdh_settable;
}

static int ecdh_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);

    (void)vctx;
    return p == NULL || OSSL_PARAM_set_utf8_string(p, "");
}

static const OSSL_PARAM ecdh_gettable[] = {
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecdh_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdh_gettable;
}

const OSSL_DISPATCH p11c_ecdh_keyexch_functions[] = {
    P11C_DISPATCH(KEYEXCH, keyexch, NEWCTX, newctx, ecdh_newctx),
    P11C_DISPATCH(KEYEXCH, keyexch, INIT, init, ecdh_init),
    P11C_DISPATCH(KEYEXCH, keyexch, SET_PEER, set_peer, ecdh_set_peer),
    P11C_DISPATCH(KEYEXCH, keyexch, DERIVE, derive, ecdh_derive),
    P11C_DISPATCH(KEYEXCH, keyexch, FREECTX, freectx, ecdh_freectx),
    P11C_DISPATCH(KEYEXCH, keyexch, DUPCTX, dupctx, ecdh_dupctx),
    P11C_DISPATCH(KEYEXCH, keyexch, SET_CTX_PARAMS, set_ctx_params, ecdh_set_ctx_params),
    P11C_DISPATCH(KEYEXCH, keyexch, SETTABLE_CTX_PARAMS, settable_ctx_params,
                  ecdh_settable_ctx_params),
    P11C_DISPATCH(KEYEXCH, keyexch, GET_CTX_PARAMS, get_ctx_params, ecdh_get_ctx_params),
    P11C_DISPATCH(KEYEXCH, keyexch, GETTABLE_CTX_PARAMS, gettable_ctx_params,
                  ecdh_gettable_ctx_params),
    P11C_DISPATCH_END,
};
