/*
 * Key management for "ED25519" and "ED448" over the shared core of
 * keymgmt.c: Edwards keys in the token (CKK_EC_EDWARDS). The public half is
 * OpenSSL's own, so export and encoding write what OpenSSL writes.
 */
#include "prov.h"

static OSSL_FUNC_keymgmt_gettable_params_fn ecx_gettable_params;
static OSSL_FUNC_keymgmt_import_fn ed25519_import, ed448_import;
static OSSL_FUNC_keymgmt_import_types_fn ecx_io_types;
static OSSL_FUNC_keymgmt_export_types_fn ecx_io_types;
static OSSL_FUNC_keymgmt_query_operation_name_fn ed25519_query_name, ed448_query_name;
static OSSL_FUNC_keymgmt_gen_init_fn ed25519_gen_init, ed448_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn ecx_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ecx_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_fn ecx_gen;

static const OSSL_PARAM ecx_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecx_gettable_params(void *provctx)
{
    (void)provctx;
    return ecx_gettable;
}

static const OSSL_PARAM ecx_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecx_io_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? ecx_types : NULL;
}

static int ed25519_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return keydata != NULL &&
           p11c_pkey_import_public(keydata, "ED25519", P11C_PKIND_ED25519, selection, params);
}

static int ed448_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return keydata != NULL &&
           p11c_pkey_import_public(keydata, "ED448", P11C_PKIND_ED448, selection, params);
}

static const char *ed25519_query_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? P11C_OP_ED25519 : "ED25519";
}

static const char *ed448_query_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? P11C_OP_ED448 : "ED448";
}

/* ---- Generation ------------------------------------------------------------ */

static void *gen_init(void *provctx, int selection, const OSSL_PARAM params[], const char *curve)
{
    P11C_GEN *g = p11c_gen_new(provctx, selection);

    if (g == NULL)
        return NULL;
    g->curve = curve;
    if (!ecx_gen_set_params(g, params)) {
        p11c_gen_free(g);
        return NULL;
    }
    return g;
}

static void *ed25519_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(provctx, selection, params, "Ed25519");
}

static void *ed448_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(provctx, selection, params, "Ed448");
}

static int ecx_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    return p11c_gen_set_common(genctx, params);
}

static const OSSL_PARAM ecx_gen_settable[] = {
    P11C_GEN_SETTABLE_COMMON,
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ecx_gen_settable_params(void *genctx, void *provctx)
{
    (void)genctx;
    (void)provctx;
    return ecx_gen_settable;
}

static CK_RV make_ecx(P11C_TOKEN *t, const P11C_GEN *g, int persistent, P11C_KEY **out,
                      P11C_ERR *err)
{
    return p11c_key_generate_ec(t, g->curve, g->label, g->has_id ? g->id : NULL, g->idlen,
                                persistent | g->usage | (g->per_use ? P11C_GEN_PER_USE : 0), out,
                                err);
}

static void *ecx_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    (void)cb;
    (void)cbarg;
    return p11c_gen_run(genctx, make_ecx);
}

#define ECX_KEYMGMT(table, import_fn, query_fn, gen_init_fn)                                       \
    const OSSL_DISPATCH table[] = {                                                                \
        P11C_KM_SHARED,                                                                            \
        P11C_DISPATCH(KEYMGMT, keymgmt, GET_PARAMS, get_params, p11c_km_host_get_params),          \
        P11C_DISPATCH(KEYMGMT, keymgmt, GETTABLE_PARAMS, gettable_params, ecx_gettable_params),    \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT, import, import_fn),                                \
        P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT_TYPES, import_types, ecx_io_types),                 \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT, export, p11c_km_host_export),                      \
        P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT_TYPES, export_types, ecx_io_types),                 \
        P11C_DISPATCH(KEYMGMT, keymgmt, QUERY_OPERATION_NAME, query_operation_name, query_fn),     \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_INIT, gen_init, gen_init_fn),                          \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SET_PARAMS, gen_set_params, ecx_gen_set_params),       \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SETTABLE_PARAMS, gen_settable_params,                  \
                      ecx_gen_settable_params),                                                    \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN, gen, ecx_gen),                                        \
        P11C_DISPATCH(KEYMGMT, keymgmt, GEN_CLEANUP, gen_cleanup, p11c_gen_free),                  \
        P11C_DISPATCH_END,                                                                         \
    }
ECX_KEYMGMT(p11c_ed25519_keymgmt_functions, ed25519_import, ed25519_query_name, ed25519_gen_init);
ECX_KEYMGMT(p11c_ed448_keymgmt_functions, ed448_import, ed448_query_name, ed448_gen_init);
