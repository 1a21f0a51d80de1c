/*
 * The "pkcs11" store loader: OSSL_STORE_open("pkcs11:...") and therefore
 * every -key/-inkey/-in of the openssl command. Keys leave as object
 * references that our keymgmt's load() turns back into the key; X.509
 * certificates stored in the token (type=cert, or when certificates are
 * expected or anything is) leave as their DER, read without a login.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_object.h>
#include <openssl/store.h>

#include "prov.h"

static OSSL_FUNC_store_open_fn st_open;
static OSSL_FUNC_store_settable_ctx_params_fn st_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn st_set_ctx_params;
static OSSL_FUNC_store_load_fn st_load;
static OSSL_FUNC_store_eof_fn st_eof;
static OSSL_FUNC_store_close_fn st_close;
static OSSL_FUNC_store_export_object_fn st_export_object;

typedef struct {
    P11C_PROV *prov;
    char *uri;
    int expect; /* OSSL_STORE_INFO_* or 0 */
    int loaded; /* the keys were looked up */
    int failed;
    P11C_PKEY **keys;
    size_t nkeys, cap, next;
    struct st_cert {
        uint8_t *der;
        size_t len;
    } * certs;
    size_t ncerts, next_cert;
    int certs_failed;
} ST_CTX;

static void *st_open(void *provctx, const char *uri)
{
    ST_CTX *c;

    if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
        return NULL;
    c = OPENSSL_zalloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->uri = OPENSSL_strdup(uri);
    if (c->uri == NULL) {
        OPENSSL_free(c);
        return NULL;
    }
    return c;
}

static const OSSL_PARAM st_settable[] = {
    OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *st_settable_ctx_params(void *provctx)
{
    (void)provctx;
    return st_settable;
}

static int st_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    ST_CTX *c = loaderctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != NULL && !OSSL_PARAM_get_int(p, &c->expect))
        return 0;
    /* No search criteria are supported: OSSL_STORE_supports_search says so. */
    return 1;
}

static int add_key(ST_CTX *c, P11C_KEY *key, int public_only)
{
    P11C_PKEY *pk;

    if (c->nkeys == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        P11C_PKEY **k = OPENSSL_realloc(c->keys, cap * sizeof(*k));
        if (k == NULL) {
            p11c_key_free(key);
            return 0;
        }
        c->keys = k;
        c->cap = cap;
    }
    pthread_mutex_lock(&c->prov->lock);
    c->prov->last_token = p11c_key_token(key);
    pthread_mutex_unlock(&c->prov->lock);
    pk = p11c_pkey_from_key(c->prov, key, public_only);
    if (pk == NULL)
        return 0;
    c->keys[c->nkeys++] = pk;
    return 1;
}

static int uri_type_public(const char *uri);

static void enum_cb(P11C_KEY *key, void *arg)
{
    ST_CTX *c = arg;

    /* p11c_key_enum drops its own reference when this returns: the store
     * keeps the key, so it takes a reference of its own (add_key owns it) */
    if (!add_key(c, p11c_key_up_ref(key),
                 uri_type_public(c->uri) || c->expect == OSSL_STORE_INFO_PUBKEY))
        c->failed = 1;
}

/* The URI names one key when it carries an object attribute. */
static int names_object(const char *uri)
{
    const char *path = uri + 7, *end = strchr(path, '?');
    size_t n = end != NULL ? (size_t)(end - path) : strlen(path);
    static const char *attrs[] = {"object=", "id="};

    for (size_t i = 0; i < 2; i++) {
        size_t an = strlen(attrs[i]);
        for (size_t j = 0; j + an <= n; j++)
            if ((j == 0 || path[j - 1] == ';') && strncmp(path + j, attrs[i], an) == 0)
                return 1;
    }
    return 0;
}

/* The URI's path holds attribute `attr` ("type=public"). */
static int uri_has(const char *uri, const char *attr)
{
    const char *path = uri + 7, *end = strchr(path, '?');
    size_t n = end != NULL ? (size_t)(end - path) : strlen(path), an = strlen(attr);

    for (size_t j = 0; j + an <= n; j++)
        if ((j == 0 || path[j - 1] == ';') && strncmp(path + j, attr, an) == 0 &&
            (j + an == n || path[j + an] == ';'))
            return 1;
    return 0;
}

static int uri_type_public(const char *uri)
{
    return uri_has(uri, "type=public");
}

static void cert_cb(const P11C_CERT *cert, void *arg)
{
    ST_CTX *c = arg;
    struct st_cert *grown;

    grown = OPENSSL_realloc(c->certs, (c->ncerts + 1) * sizeof(*grown));
    if (grown == NULL) {
        c->certs_failed = 1;
        return;
    }
    c->certs = grown;
    c->certs[c->ncerts].der = OPENSSL_memdup(cert->der, cert->derlen);
    c->certs[c->ncerts].len = cert->derlen;
    if (c->certs[c->ncerts].der == NULL)
        c->certs_failed = 1;
    else
        c->ncerts++;
}

/* The certificates the URI names. */
static int lookup_certs(ST_CTX *c, P11C_MODULE *m)
{
    P11C_ERR err;
    CK_RV rv;

    memset(&err, 0, sizeof(err));
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_cert_enum(m, c->uri, cert_cb, c, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->prov, &err);
        return 0;
    }
    return !c->certs_failed;
}

static int lookup_keys(ST_CTX *c, P11C_MODULE *m)
{
    P11C_ERR err;
    P11C_KEY *key = NULL;
    int public_only;
    p11c_want want;
    CK_RV rv;

    if (m == NULL)
        return 0;
    memset(&err, 0, sizeof(err));
    if (!names_object(c->uri)) {
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = p11c_key_enum(m, c->uri, enum_cb, c, &err);
        ERR_pop_to_mark();
        if (rv != CKR_OK) {
            P11C_RAISE_RV(c->prov, &err);
            return 0;
        }
        return !c->failed;
    }
    public_only = uri_type_public(c->uri) || c->expect == OSSL_STORE_INFO_PUBKEY;
    want = public_only ? P11C_WANT_PUBLIC : P11C_WANT_ANY;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_load(m, c->uri, want, &key, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(c->prov, &err);
        return 0;
    }
    return add_key(c, key, public_only);
}

/*
 * Keys unless the URI says type=cert or certificates are expected;
 * certificates when it says so, or when anything is expected and the URI
 * names no key half. A URI naming keys and certificates alike (no type, no
 * expectation) fails only when neither is found.
 */
static int lookup(ST_CTX *c)
{
    P11C_MODULE *m = p11c_prov_module(c->prov, "opening a pkcs11: URI");
    int type_cert = uri_has(c->uri, "type=cert");
    int type_key = uri_has(c->uri, "type=public") || uri_has(c->uri, "type=private");
    int want_certs =
        type_cert || c->expect == OSSL_STORE_INFO_CERT || (c->expect == 0 && !type_key);
    int want_keys = !type_cert && c->expect != OSSL_STORE_INFO_CERT;
    int keys_ok = 1;

    if (m == NULL)
        return 0;
    if (want_keys) {
        if (want_certs)
            ERR_set_mark();
        keys_ok = lookup_keys(c, m);
        if (want_certs) {
            if (!lookup_certs(c, m))
                return 0;
            if (!keys_ok && c->ncerts > 0) {
                ERR_pop_to_mark(); /* no key of that name, but a certificate */
                return 1;
            }
            ERR_clear_last_mark();
        }
        return keys_ok;
    }
    return lookup_certs(c, m);
}

static int st_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    ST_CTX *c = loaderctx;
    P11C_PKEY *pk;
    OSSL_PARAM params[4];
    int type = OSSL_OBJECT_PKEY;
    static const char *const types[] = {"RSA", "EC", "ED25519", "ED448"};
    char data_type[8];

    (void)pw_cb;
    (void)pw_cbarg;
    if (!c->loaded) {
        c->loaded = 1;
        if (c->expect != 0 && c->expect != OSSL_STORE_INFO_PKEY &&
            c->expect != OSSL_STORE_INFO_PUBKEY && c->expect != OSSL_STORE_INFO_CERT)
            return 0; /* only keys and certificates live here */
        if (!lookup(c)) {
            c->failed = 1;
            return 0;
        }
    }
    if (c->next >= c->nkeys) {
        if (c->next_cert >= c->ncerts)
            return 0;
        struct st_cert *cert = &c->certs[c->next_cert++];
        type = OSSL_OBJECT_CERT;
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, cert->der, cert->len);
        params[2] = OSSL_PARAM_construct_end();
        return object_cb(params, object_cbarg);
    }
    pk = c->keys[c->next++];
    strcpy(data_type, types[pk->kind]);
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, data_type, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &pk, sizeof(pk));
    params[3] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int st_eof(void *loaderctx)
{
    ST_CTX *c = loaderctx;

    return c->failed || (c->loaded && c->next >= c->nkeys && c->next_cert >= c->ncerts);
}

static int st_close(void *loaderctx)
{
    ST_CTX *c = loaderctx;

    if (c == NULL)
        return 1;
    for (size_t i = 0; i < c->nkeys; i++)
        p11c_pkey_free(c->keys[i]);
    OPENSSL_free(c->keys);
    for (size_t i = 0; i < c->ncerts; i++)
        OPENSSL_free(c->certs[i].der);
    OPENSSL_free(c->certs);
    OPENSSL_free(c->uri);
    OPENSSL_free(c);
    return 1;
}

/*
 * Used when OpenSSL picked another provider's keymgmt for the reference: a
 * key whose private half is in the token is refused, so that OpenSSL falls
 * back to our keymgmt; a public key is handed over as n and e.
 */
static int st_export_object(void *loaderctx, const void *reference, size_t reference_sz,
                            OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    P11C_PKEY *pk = NULL;
    OSSL_PARAM params[3];
    BIGNUM *n = NULL, *e = NULL;
    uint8_t nb[1024], eb[16];
    int nlen, elen, ret = 0;

    (void)loaderctx;
    if (reference == NULL || reference_sz != sizeof(pk))
        return 0;
    memcpy(&pk, reference, sizeof(pk));
    if (pk == NULL || pk->magic != P11C_PKEY_MAGIC || pk->pub == NULL || p11c_pkey_has_private(pk))
        return 0;
    if (!EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_E, &e))
        goto end;
    nlen = BN_bn2nativepad(n, nb, BN_num_bytes(n));
    elen = BN_bn2nativepad(e, eb, BN_num_bytes(e));
    if (nlen <= 0 || elen <= 0)
        goto end;
    params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nb, (size_t)nlen);
    params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, eb, (size_t)elen);
    params[2] = OSSL_PARAM_construct_end();
    ret = export_cb(params, export_cbarg);
end:
    BN_free(n);
    BN_free(e);
    return ret;
}

int p11c_store_fetch(P11C_PROV *prov, const char *uri, int expect, OSSL_CALLBACK *object_cb,
                     void *object_cbarg)
{
    ST_CTX *c = st_open(prov, uri);
    int ret;

    if (c == NULL)
        return -1;
    c->expect = expect;
    ret = st_load(c, object_cb, object_cbarg, NULL, NULL);
    if (c->failed)
        ret = -1;
    else if (c->nkeys == 0)
        ret = 1;
    st_close(c);
    return ret;
}

const OSSL_DISPATCH p11c_store_functions[] = {
    P11C_DISPATCH(STORE, store, OPEN, open, st_open),
    P11C_DISPATCH(STORE, store, SETTABLE_CTX_PARAMS, settable_ctx_params, st_settable_ctx_params),
    P11C_DISPATCH(STORE, store, SET_CTX_PARAMS, set_ctx_params, st_set_ctx_params),
    P11C_DISPATCH(STORE, store, LOAD, load, st_load),
    P11C_DISPATCH(STORE, store, EOF, eof, st_eof),
    P11C_DISPATCH(STORE, store, CLOSE, close, st_close),
    P11C_DISPATCH(STORE, store, EXPORT_OBJECT, export_object, st_export_object),
    P11C_DISPATCH_END,
};
