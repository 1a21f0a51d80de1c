/*
 * Key management for "RSA" and "RSA-PSS" over the shared core of keymgmt.c:
 * keys that refer to token objects. Only the public half ever leaves: export
 * of a key whose private half is in the token fails for the private
 * selection, which also makes OpenSSL 3.0 fall back from another provider's
 * operation to ours.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/param_build.h>

#include "prov.h"

static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_gettable_params_fn km_gettable_params;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_import_types_fn km_io_types;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_export_types_fn km_io_types;
static OSSL_FUNC_keymgmt_query_operation_name_fn km_query_name;
static OSSL_FUNC_keymgmt_gen_init_fn km_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn km_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn km_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_fn km_gen;

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

    if (!p11c_km_export_check(pk, selection))
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

static const char *km_query_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE || operation_id == OSSL_OP_ASYM_CIPHER ? P11C_OP_RSA
                                                                                    : "RSA";
}

/* ---- Generation ------------------------------------------------------------ */

static void *km_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    P11C_GEN *g = p11c_gen_new(provctx, selection);

    if (g == NULL)
        return NULL;
    g->bits = 2048;
    if (!km_gen_set_params(g, params)) {
        p11c_gen_free(g);
        return NULL;
    }
    return g;
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    P11C_GEN *g = genctx;
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
    return p11c_gen_set_common(g, params);
}

static const OSSL_PARAM km_gen_settable[] = {
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    P11C_GEN_SETTABLE_COMMON,
    OSSL_PARAM_END,
};

static const OSSL_PARAM *km_gen_settable_params(void *genctx, void *provctx)
{
    (void)genctx;
    (void)provctx;
    return km_gen_settable;
}

static CK_RV make_rsa(P11C_TOKEN *t, const P11C_GEN *g, int persistent, P11C_KEY **out,
                      P11C_ERR *err)
{
    return (g->per_use ? p11c_key_generate_per_use : p11c_key_generate)(
        t, g->bits, g->label, g->has_id ? g->id : NULL, g->idlen, persistent | g->usage, out, err);
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    (void)cb;
    (void)cbarg;
    return p11c_gen_run(genctx, make_rsa);
}

#define KM_COMMON                                                                                  \
    P11C_KM_SHARED, P11C_DISPATCH(KEYMGMT, keymgmt, GET_PARAMS, get_params, km_get_params),        \
        P11C_DISPATCH(KEYMGMT, keymgmt, GETTABLE_PARAMS, gettable_params, km_gettable_params),     \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT, import, km_import),                                \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT_TYPES, import_types, km_io_types),                  \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT, export, km_export),                                \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT_TYPES, export_types, km_io_types),                  \
        P11C_DISPATCH(KEYMGMT, keymgmt, QUERY_OPERATION_NAME, query_operation_name,                \
                      km_query_name),                                                              \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_INIT, gen_init, km_gen_init),                          \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SET_PARAMS, gen_set_params, km_gen_set_params),        \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SETTABLE_PARAMS, gen_settable_params,                  \
                      km_gen_settable_params),                                                     \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN, gen, km_gen),                                         \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_CLEANUP, gen_cleanup, p11c_gen_free)

const OSSL_DISPATCH p11c_rsa_keymgmt_functions[] = {KM_COMMON, P11C_DISPATCH_END};
const OSSL_DISPATCH p11c_rsa_pss_keymgmt_functions[] = {KM_COMMON, P11C_DISPATCH_END};
