/*
 * Key management for "RSA" and "RSA-PSS": keys that refer to token objects.
 * Only the public half ever leaves: export of a key whose private half is in
 * the token fails for the private selection, which also makes OpenSSL 3.0
 * fall back from another provider's operation to ours.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/param_build.h>
#include <p11-kit/uri.h>

#include "prov.h"

static OSSL_FUNC_keymgmt_new_fn km_new;
static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_gettable_params_fn km_gettable_params;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_import_types_fn km_io_types;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_export_types_fn km_io_types;
static OSSL_FUNC_keymgmt_load_fn km_load;
static OSSL_FUNC_keymgmt_dup_fn km_dup;
static OSSL_FUNC_keymgmt_query_operation_name_fn km_query_name;
static OSSL_FUNC_keymgmt_gen_init_fn km_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn km_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn km_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_fn km_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn km_gen_cleanup;

static void *km_new(void *provctx)
{
    return p11c_pkey_new(provctx);
}

static void km_free(void *keydata)
{
    p11c_pkey_free(keydata);
}

static int km_has(const void *keydata, int selection)
{
    P11C_PKEY *pk = (P11C_PKEY *)keydata;

    if (pk == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && pk->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !p11c_pkey_has_private(pk))
        return 0;
    return 1;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const P11C_PKEY *a = keydata1, *b = keydata2;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    if (a->pub == NULL || b->pub == NULL)
        return 0;
    /* The private half of a token key is its public half's partner. */
    return EVP_PKEY_eq(a->pub, b->pub) == 1;
}

static const OSSL_PARAM km_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_gettable_params(void *provctx)
{
    (void)provctx;
    return km_gettable;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    P11C_PKEY *pk = keydata;
    BIGNUM *bn = NULL;
    OSSL_PARAM *p;
    int ret = 0;

    if (pk == NULL || pk->pub == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS);
    if (p != NULL && !OSSL_PARAM_set_int(p, (int)pk->bits))
        goto end;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS);
    if (p != NULL && !OSSL_PARAM_set_int(p, EVP_PKEY_get_security_bits(pk->pub)))
        goto end;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE);
    if (p != NULL && !OSSL_PARAM_set_int(p, (int)p11c_pkey_size(pk)))
        goto end;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, "SHA256"))
        goto end;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N);
    if (p != NULL &&
        (!EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_N, &bn) || !OSSL_PARAM_set_BN(p, bn)))
        goto end;
    BN_free(bn);
    bn = NULL;
    p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E);
    if (p != NULL &&
        (!EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_E, &bn) || !OSSL_PARAM_set_BN(p, bn)))
        goto end;
    ret = 1;
end:
    BN_free(bn);
    return ret;
}

static const OSSL_PARAM km_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_io_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? km_types : NULL;
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    P11C_PKEY *pk = keydata;
    const OSSL_PARAM *pn, *pe;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t *nb = NULL, *eb = NULL;
    int nlen, elen, ret = 0;

    if (pk == NULL || pk->key != NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL) {
        P11C_RAISE(pk->prov, P11C_R_UNSUPPORTED,
                   "private keys are not imported through OpenSSL; create them in the token");
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
        return 0;
    pn = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N);
    pe = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E);
    if (pn == NULL || pe == NULL || !OSSL_PARAM_get_BN(pn, &n) || !OSSL_PARAM_get_BN(pe, &e))
        goto end;
    nlen = BN_num_bytes(n);
    elen = BN_num_bytes(e);
    nb = OPENSSL_malloc(nlen > 0 ? (size_t)nlen : 1);
    eb = OPENSSL_malloc(elen > 0 ? (size_t)elen : 1);
    if (nb == NULL || eb == NULL || BN_bn2bin(n, nb) != nlen || BN_bn2bin(e, eb) != elen)
        goto end;
    pk->public_only = 1;
    pk->priv = 0;
    ret = p11c_pkey_set_public(pk, nb, (size_t)nlen, eb, (size_t)elen);
end:
    BN_free(n);
    BN_free(e);
    OPENSSL_free(nb);
    OPENSSL_free(eb);
    return ret;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    P11C_PKEY *pk = keydata;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    int ret = 0;

    if (pk == NULL || pk->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && p11c_pkey_has_private(pk)) {
        char what[300];
        P11C_RAISE(pk->prov, P11C_R_PRIVATE_EXPORT,
                   "%s: the private key stays in the token; only the public key can be exported",
                   p11c_pkey_describe(pk, what, sizeof(what)));
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
        return 0;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(pk->pub, OSSL_PKEY_PARAM_RSA_E, &e) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto end;
    ret = cb(params, cbarg);
end:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return ret;
}

/* The store hands out a reference: the address of a P11C_PKEY it holds. */
static void *km_load(const void *reference, size_t reference_sz)
{
    P11C_PKEY *pk = NULL;

    if (reference == NULL || reference_sz != sizeof(pk))
        return NULL;
    memcpy(&pk, reference, sizeof(pk));
    if (pk == NULL || pk->magic != P11C_PKEY_MAGIC)
        return NULL;
    return p11c_pkey_up_ref(pk);
}

/* Keys never change after they are made, so a copy may share the object. */
static void *km_dup(const void *keydata, int selection)
{
    (void)selection;
    return p11c_pkey_up_ref((P11C_PKEY *)keydata);
}

static const char *km_query_name(int operation_id)
{
    (void)operation_id;
    return "RSA";
}

/* ---- Generation ------------------------------------------------------------ */

typedef struct {
    P11C_PROV *prov;
    unsigned int bits;
    char *uri;
    char *label;
    uint8_t id[64];
    size_t idlen;
    int has_id;
    int persistent; /* -1: by default, persistent when a label or an id is given */
    int decrypt_only;
} GEN_CTX;

static void *km_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    GEN_CTX *g;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return NULL;
    g = OPENSSL_zalloc(sizeof(*g));
    if (g == NULL)
        return NULL;
    g->prov = provctx;
    g->bits = 2048;
    g->persistent = -1;
    if (!km_gen_set_params(g, params)) {
        km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

static int hex_id(GEN_CTX *g, const char *hex)
{
    size_t n = strlen(hex);

    if (n == 0 || n % 2 != 0 || n / 2 > sizeof(g->id))
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        g->id[i] = (uint8_t)(hi << 4 | lo);
    }
    g->idlen = n / 2;
    g->has_id = 1;
    return 1;
}

static int set_string(char **dst, const OSSL_PARAM *p)
{
    const char *s = NULL;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
        return 0;
    OPENSSL_free(*dst);
    *dst = OPENSSL_strdup(s);
    return *dst != NULL;
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    GEN_CTX *g = genctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS);
    if (p != NULL) {
        size_t bits;
        if (!OSSL_PARAM_get_size_t(p, &bits) || (bits != 2048 && bits != 3072 && bits != 4096)) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "key size must be 2048, 3072 or 4096 bits");
            return 0;
        }
        g->bits = (unsigned int)bits;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E);
    if (p != NULL) {
        BIGNUM *e = NULL;
        int ok = OSSL_PARAM_get_BN(p, &e) && BN_is_word(e, 65537);
        BN_free(e);
        if (!ok) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "the public exponent must be 65537");
            return 0;
        }
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_PRIMES);
    if (p != NULL) {
        int primes;
        if (!OSSL_PARAM_get_int(p, &primes) || primes != 2) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "only two-prime RSA keys are made");
            return 0;
        }
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_URI);
    if (p != NULL && !set_string(&g->uri, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_LABEL);
    if (p != NULL && !set_string(&g->label, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_ID);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_OCTET_STRING) {
            if (p->data_size == 0 || p->data_size > sizeof(g->id))
                goto bad_id;
            memcpy(g->id, p->data, p->data_size);
            g->idlen = p->data_size;
            g->has_id = 1;
        } else if (p->data_type != OSSL_PARAM_UTF8_STRING || !hex_id(g, p->data)) {
            goto bad_id;
        }
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_PERSISTENT);
    if (p != NULL) {
        int v = -1;
        if (p->data_type == OSSL_PARAM_UTF8_STRING)
            v = p11c_parse_bool(p->data);
        else if (!OSSL_PARAM_get_int(p, &v)) {
            v = -1;
        }
        if (v < 0) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "persistent must be yes or no");
            return 0;
        }
        g->persistent = v != 0;
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_USAGE);
    if (p != NULL) {
        if (p->data_type != OSSL_PARAM_UTF8_STRING ||
            (strcmp(p->data, "decrypt") != 0 && strcmp(p->data, "any") != 0)) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "usage must be decrypt or any");
            return 0;
        }
        g->decrypt_only = strcmp(p->data, "decrypt") == 0;
    }
    return 1;
bad_id:
    P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "id must be 1 to 64 bytes, as octets or hex");
    return 0;
}

static const OSSL_PARAM km_gen_settable[] = {
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_URI, NULL, 0),
    OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_LABEL, NULL, 0),
    OSSL_PARAM_octet_string(P11CHAT_PKEY_PARAM_ID, NULL, 0),
    OSSL_PARAM_int(P11CHAT_PKEY_PARAM_PERSISTENT, NULL),
    OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_USAGE, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_gen_settable_params(void *genctx, void *provctx)
{
    (void)genctx;
    (void)provctx;
    return km_gen_settable;
}

/* Object label, id and PIN (pin-value, else pin-source) from the generation URI
 * (label/id params win). */
static int gen_from_uri(GEN_CTX *g, char **pin)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_ATTRIBUTE *a;
    const char *pv, *ps;
    char *read = NULL;
    P11C_ERR err;
    int ret = 0;

    if (u == NULL)
        return 0;
    if (p11_kit_uri_parse(g->uri, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
        P11C_RAISE(g->prov, p11c_reason_of_rv(P11C_CKR_URI_MALFORMED),
                   "key generation: '%s' is not a pkcs11: URI", g->uri);
        goto end;
    }
    a = p11_kit_uri_get_attribute(u, CKA_LABEL);
    if (a != NULL && g->label == NULL) {
        g->label = OPENSSL_strndup(a->pValue, a->ulValueLen);
        if (g->label == NULL)
            goto end;
    }
    a = p11_kit_uri_get_attribute(u, CKA_ID);
    if (a != NULL && !g->has_id && a->ulValueLen > 0 && a->ulValueLen <= sizeof(g->id)) {
        memcpy(g->id, a->pValue, a->ulValueLen);
        g->idlen = a->ulValueLen;
        g->has_id = 1;
    }
    pv = p11_kit_uri_get_pin_value(u);
    ps = p11_kit_uri_get_pin_source(u);
    if (pv != NULL) {
        if ((*pin = OPENSSL_strdup(pv)) == NULL)
            goto end;
    } else if (ps != NULL) {
        /* the reader the store's URIs go through: same file rules, same errors */
        memset(&err, 0, sizeof(err));
        if (p11c_pin_from_source(ps, &read, &err) != CKR_OK) {
            P11C_RAISE_RV(g->prov, &err);
            goto end;
        }
        *pin = OPENSSL_strdup(read);
        p11c_pin_free(read);
        if (*pin == NULL)
            goto end;
    }
    ret = 1;
end:
    p11_kit_uri_free(u);
    return ret;
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    GEN_CTX *g = genctx;
    P11C_PROV *prov = g->prov;
    P11C_MODULE *m;
    P11C_TOKEN *t = NULL;
    P11C_KEY *key = NULL;
    P11C_PKEY *pk = NULL;
    P11C_ERR err;
    char *pin = NULL;
    const char *token_uri;
    int persistent;
    CK_RV rv;

    (void)cb;
    (void)cbarg;
    memset(&err, 0, sizeof(err));
    m = p11c_prov_module(prov, "key generation");
    if (m == NULL)
        goto end;
    if (g->uri != NULL && !gen_from_uri(g, &pin))
        goto end;
    token_uri = g->uri != NULL ? g->uri : prov->token_uri;
    if (token_uri != NULL) {
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = p11c_token_find(m, token_uri, &t, &err);
        ERR_pop_to_mark();
    } else {
        pthread_mutex_lock(&prov->lock);
        t = prov->last_token;
        pthread_mutex_unlock(&prov->lock);
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = t != NULL ? CKR_OK : p11c_token_find(m, "pkcs11:", &t, &err);
        ERR_pop_to_mark();
    }
    if (rv != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    if (pin != NULL && (rv = p11c_token_login(t, pin, &err)) != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    persistent = g->persistent >= 0 ? g->persistent : (g->label != NULL || g->has_id);
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_generate(t, g->bits, g->label, g->has_id ? g->id : NULL, g->idlen,
                           persistent | (g->decrypt_only ? P11C_GEN_DECRYPT_ONLY : 0), &key, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    pk = p11c_pkey_from_key(prov, key, 0);
    if (pk != NULL)
        pk->priv = 1;
end:
    if (pin != NULL)
        OPENSSL_clear_free(pin, strlen(pin));
    return pk;
}

static void km_gen_cleanup(void *genctx)
{
    GEN_CTX *g = genctx;

    if (g == NULL)
        return;
    OPENSSL_free(g->uri);
    OPENSSL_free(g->label);
    OPENSSL_free(g);
}

#define KM_COMMON                                                                                  \
    P11C_DISPATCH(KEYMGMT, keymgmt, NEW, new, km_new),                                             \
        P11C_DISPATCH(KEYMGMT, keymgmt, FREE, free, km_free),                                      \
        P11C_DISPATCH(KEYMGMT, keymgmt, HAS, has, km_has),                                         \
        P11C_DISPATCH(KEYMGMT, keymgmt, MATCH, match, km_match),                                   \
        P11C_DISPATCH(KEYMGMT, keymgmt, GET_PARAMS, get_params, km_get_params),                    \
        P11C_DISPATCH(KEYMGMT, keymgmt, GETTABLE_PARAMS, gettable_params, km_gettable_params),     \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT, import, km_import),                                \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT_TYPES, import_types, km_io_types),                  \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT, export, km_export),                                \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT_TYPES, export_types, km_io_types),                  \
        P11C_DISPATCH(KEYMGMT, keymgmt, LOAD, load, km_load),                                      \
        P11C_DISPATCH(KEYMGMT, keymgmt, DUP, dup, km_dup),                                         \
        P11C_DISPATCH(KEYMGMT, keymgmt, QUERY_OPERATION_NAME, query_operation_name,                \
                      km_query_name),                                                              \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_INIT, gen_init, km_gen_init),                          \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SET_PARAMS, gen_set_params, km_gen_set_params),        \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SETTABLE_PARAMS, gen_settable_params,                  \
                      km_gen_settable_params),                                                     \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN, gen, km_gen),                                         \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_CLEANUP, gen_cleanup, km_gen_cleanup)

const OSSL_DISPATCH p11c_rsa_keymgmt_functions[] = {KM_COMMON, P11C_DISPATCH_END};
const OSSL_DISPATCH p11c_rsa_pss_keymgmt_functions[] = {KM_COMMON, P11C_DISPATCH_END};
