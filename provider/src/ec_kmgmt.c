/*
 * Key management for "EC" over the shared core of keymgmt.c: P-256, P-384
 * and P-521 keys in the token. The public half is an OpenSSL EC key on the
 * named curve, so export and encoding write what OpenSSL writes for a
 * software key (SubjectPublicKeyInfo with the curve's OID, never explicit
 * parameters).
 */
#include <string.h>

#include <openssl/ec.h>
#include <openssl/objects.h>

#include "prov.h"

static OSSL_FUNC_keymgmt_gettable_params_fn ec_gettable_params;
static OSSL_FUNC_keymgmt_import_fn ec_import;
static OSSL_FUNC_keymgmt_import_types_fn ec_io_types;
static OSSL_FUNC_keymgmt_export_types_fn ec_io_types;
static OSSL_FUNC_keymgmt_query_operation_name_fn ec_query_name;
static OSSL_FUNC_keymgmt_gen_init_fn ec_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn ec_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ec_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_fn ec_gen;

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    (void)provctx;
    return ec_gettable;
}

static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_io_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? ec_types : NULL;
}

/* Another provider's EC public key (a peer of ECDH, a certificate's key). */
static int ec_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return keydata != NULL &&
           p11c_pkey_import_public(keydata, "EC", P11C_PKIND_EC, selection, params);
}

static const char *ec_query_name(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return P11C_OP_ECDSA;
    case OSSL_OP_KEYEXCH:
        return P11C_OP_ECDH;
    default:
        return "EC";
    }
}

/* ---- Generation ------------------------------------------------------------ */

static void *ec_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    P11C_GEN *g = p11c_gen_new(provctx, selection);

    if (g == NULL)
        return NULL;
    g->curve = "P-256";
    if (!ec_gen_set_params(g, params)) {
        p11c_gen_free(g);
        return NULL;
    }
    return g;
}

/* "P-256", "prime256v1", "secp256r1" ...: the NIST name, NULL if none. */
static const char *nist_name(const char *name)
{
    int nid = EC_curve_nist2nid(name);

    if (nid == NID_undef)
        nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = OBJ_ln2nid(name);
    return nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
}

static int ec_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    P11C_GEN *g = genctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p != NULL) {
        const char *name = NULL, *nist = NULL;
        if (OSSL_PARAM_get_utf8_string_ptr(p, &name))
            nist = nist_name(name);
        if (nist == NULL || (strcmp(nist, "P-256") != 0 && strcmp(nist, "P-384") != 0 &&
                             strcmp(nist, "P-521") != 0)) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM,
                       "curve %s: keys are made on P-256, P-384 or P-521 only",
                       name != NULL ? name : "?");
            return 0;
        }
        g->curve = nist;
    }
    return p11c_gen_set_common(g, params);
}

static const OSSL_PARAM ec_gen_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    P11C_GEN_SETTABLE_COMMON,
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ec_gen_settable_params(void *genctx, void *provctx)
{
    (void)genctx;
    (void)provctx;
    return ec_gen_settable;
}

static CK_RV make_ec(P11C_TOKEN *t, const P11C_GEN *g, int persistent, P11C_KEY **out,
                     P11C_ERR *err)
{
    return p11c_key_generate_ec(t, g->curve, g->label, g->has_id ? g->id : NULL, g->idlen,
                                persistent | g->usage | (g->per_use ? P11C_GEN_PER_USE : 0), out,
                                err);
}

static void *ec_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    (void)cb;
    (void)cbarg;
    return p11c_gen_run(genctx, make_ec);
}

const OSSL_DISPATCH p11c_ec_keymgmt_functions[] = {
    P11C_KM_SHARED,
    P11C_DISPATCH(KEYMGMT, keymgmt, GET_PARAMS, get_params, p11c_km_host_get_params),
    P11C_DISPATCH(KEYMGMT, keymgmt, GETTABLE_PARAMS, gettable_params, ec_gettable_params),
    P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT, import, ec_import),
    P11C_DISPATCH(KEYMGMT, keymgmt, IMPORT_TYPES, import_types, ec_io_types),
    P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT, export, p11c_km_host_export),
    P11C_DISPATCH(KEYMGMT, keymgmt, EXPORT_TYPES, export_types, ec_io_types),
    P11C_DISPATCH(KEYMGMT, keymgmt, QUERY_OPERATION_NAME, query_operation_name, ec_query_name),
    P11C_DISPATCH(KEYMGMT, keymgmt, GEN_INIT, gen_init, ec_gen_init),
    P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SET_PARAMS, gen_set_params, ec_gen_set_params),
    P11C_DISPATCH(KEYMGMT, keymgmt, GEN_SETTABLE_PARAMS, gen_settable_params,
                  ec_gen_settable_params),
    P11C_DISPATCH(KEYMGMT, keymgmt, GEN, gen, ec_gen),
    P11C_DISPATCH(KEYMGMT, keymgmt, GEN_CLEANUP, gen_cleanup, p11c_gen_free),
    P11C_DISPATCH_END,
};
