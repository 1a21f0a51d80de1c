/* The key object every operation shares: a token key and its public half. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "prov.h"

P11C_PKEY *p11c_pkey_new(P11C_PROV *prov)
{
    P11C_PKEY *pk = OPENSSL_zalloc(sizeof(*pk));

    if (pk == NULL)
        return NULL;
    pk->magic = P11C_PKEY_MAGIC;
    pk->refs = 1;
    pk->prov = prov;
    pk->priv = -1;
    return pk;
}

int p11c_pkey_set_public(P11C_PKEY *pk, const uint8_t *n, size_t nlen, const uint8_t *e,
                         size_t elen)
{
    OSSL_LIB_CTX *sw = p11c_prov_sw(pk->prov);
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    EVP_PKEY *pub = NULL;
    int ret = 0;

    if (sw == NULL)
        goto end;
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn_n == NULL || bn_e == NULL || bld == NULL || BN_is_zero(bn_n) || BN_is_zero(bn_e) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto end;
    ctx = EVP_PKEY_CTX_new_from_name(sw, "RSA", "provider=default");
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto end;
    EVP_PKEY_free(pk->pub);
    pk->pub = pub;
    pk->bits = (unsigned int)EVP_PKEY_get_bits(pub);
    pub = NULL;
    ret = 1;
end:
    if (!ret)
        P11C_RAISE(pk->prov, P11C_R_BAD_PARAM, "invalid RSA public key");
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return ret;
}

int p11c_pkey_set_ec_public(P11C_PKEY *pk, const char *curve, const uint8_t *pt, size_t ptlen)
{
    OSSL_LIB_CTX *sw = p11c_prov_sw(pk->prov);
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    int ed25519 = strcmp(curve, "Ed25519") == 0, ed448 = strcmp(curve, "Ed448") == 0;
    int ret = 0;

    if (sw == NULL)
        goto end;
    if (ed25519 || ed448) {
        pub = EVP_PKEY_new_raw_public_key_ex(sw, ed25519 ? "ED25519" : "ED448", "provider=default",
                                             pt, ptlen);
        pk->kind = ed25519 ? P11C_PKIND_ED25519 : P11C_PKIND_ED448;
    } else {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptlen);
        params[2] = OSSL_PARAM_construct_end();
        ctx = EVP_PKEY_CTX_new_from_name(sw, "EC", "provider=default");
        if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            goto end;
        pk->kind = P11C_PKIND_EC;
    }
    if (pub == NULL)
        goto end;
    EVP_PKEY_free(pk->pub);
    pk->pub = pub;
    pk->bits = (unsigned int)EVP_PKEY_get_bits(pub);
    pub = NULL;
    ret = 1;
end:
    if (!ret)
        P11C_RAISE(pk->prov, P11C_R_BAD_PARAM, "invalid %s public key", curve);
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

/* The curve (named curves only) and the uncompressed point of an EC key
 * held on the host. */
static int ec_peer_fill(P11C_PKEY *pk)
{
    char group[64], enc[32];
    EVP_PKEY *copy = NULL;
    int nid, ok;

    pk->curve = NULL;
    if (EVP_PKEY_get_utf8_string_param(pk->pub, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
                                       NULL) &&
        strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0 &&
        EVP_PKEY_get_utf8_string_param(pk->pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL)) {
        nid = EC_curve_nist2nid(group);
        if (nid == NID_undef)
            nid = OBJ_sn2nid(group);
        pk->curve = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
    }
    ok = EVP_PKEY_get_octet_string_param(pk->pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pk->point,
                                         sizeof(pk->point), &pk->pointlen);
    if (ok && pk->pointlen > 0 && pk->point[0] != 0x04) {
        /* compressed: CKM_ECDH1_DERIVE takes the uncompressed form */
        copy = EVP_PKEY_dup(pk->pub);
        ok = copy != NULL &&
             EVP_PKEY_set_utf8_string_param(copy, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            "uncompressed") &&
             EVP_PKEY_get_octet_string_param(copy, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pk->point,
                                             sizeof(pk->point), &pk->pointlen);
        EVP_PKEY_free(copy);
    }
    if (!ok)
        pk->pointlen = 0;
    return 1;
}

int p11c_pkey_import_public(P11C_PKEY *pk, const char *type, int kind, int selection,
                            const OSSL_PARAM params[])
{
    OSSL_LIB_CTX *sw = p11c_prov_sw(pk->prov);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pub = NULL;
    int host_private, ret = 0;

    if (pk->key != NULL || sw == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 0;
    host_private = (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
                   OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL;
    ctx = EVP_PKEY_CTX_new_from_name(sw, type, "provider=default");
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pub, host_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          (OSSL_PARAM *)params) <= 0)
        goto end;
    EVP_PKEY_free(pk->pub);
    pk->pub = pub;
    pk->kind = kind;
    pk->bits = (unsigned int)EVP_PKEY_get_bits(pub);
    pk->host_private = host_private;
    pk->public_only = !host_private;
    pk->priv = host_private;
    ret = kind != P11C_PKIND_EC || ec_peer_fill(pk);
end:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

int p11c_pkey_export_public(P11C_PKEY *pk, OSSL_CALLBACK *cb, void *cbarg)
{
    OSSL_PARAM *params = NULL;
    int ret;

    if (pk->pub == NULL ||
        EVP_PKEY_todata(pk->pub, pk->host_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        &params) <= 0)
        return 0;
    ret = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ret;
}

P11C_PKEY *p11c_pkey_from_key(P11C_PROV *prov, P11C_KEY *key, int public_only)
{
    P11C_PKEY *pk = p11c_pkey_new(prov);
    const uint8_t *n, *e, *pt;
    size_t nlen, elen, ptlen;
    int ok;

    if (pk == NULL) {
        p11c_key_free(key);
        return NULL;
    }
    pk->key = key;
    pk->public_only = public_only;
    if (public_only)
        pk->priv = 0;
    if (p11c_key_type(key) == CKK_RSA) {
        p11c_key_public(key, &n, &nlen, &e, &elen);
        ok = p11c_pkey_set_public(pk, n, nlen, e, elen);
    } else {
        p11c_key_ec_point(key, &pt, &ptlen);
        ok = p11c_pkey_set_ec_public(pk, p11c_key_curve(key), pt, ptlen);
        if (ok && pk->kind == P11C_PKIND_EC && ptlen <= sizeof(pk->point)) {
            /* as for an imported peer: a token key may be the peer too */
            memcpy(pk->point, pt, ptlen);
            pk->pointlen = ptlen;
            pk->curve = p11c_key_curve(key);
        }
    }
    if (!ok) {
        p11c_pkey_free(pk);
        return NULL;
    }
    return pk;
}

P11C_PKEY *p11c_pkey_up_ref(P11C_PKEY *pk)
{
    if (pk != NULL)
        __atomic_add_fetch(&pk->refs, 1, __ATOMIC_RELAXED);
    return pk;
}

void p11c_pkey_free(P11C_PKEY *pk)
{
    if (pk == NULL || __atomic_sub_fetch(&pk->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    /* After the exit handler finalised the module the token key must not be
     * touched; the process is ending and its memory goes with it. */
    if (!pk->prov->finalised)
        p11c_key_free(pk->key);
    EVP_PKEY_free(pk->pub);
    pk->magic = 0;
    OPENSSL_free(pk);
}

/*
 * A token key loaded without type=public is taken to have its private half:
 * asking the token would need a login, and reading a public key must need
 * none. A missing private half (or a wrong PIN) shows when it is used, with
 * the token's own reason.
 */
int p11c_pkey_has_private(P11C_PKEY *pk)
{
    return pk->host_private || (pk->key != NULL && !pk->public_only && pk->priv != 0);
}

size_t p11c_pkey_size(const P11C_PKEY *pk)
{
    if (pk->kind == P11C_PKIND_RSA || pk->pub == NULL)
        return (pk->bits + 7) / 8;
    return (size_t)EVP_PKEY_get_size(pk->pub);
}

char *p11c_pkey_uri(const P11C_PKEY *pk)
{
    char *uri = NULL, *copy = NULL;

    if (pk->key == NULL || p11c_key_uri(pk->key, pk->public_only, &uri, NULL) != CKR_OK)
        return NULL;
    copy = OPENSSL_strdup(uri);
    free(uri);
    return copy;
}

const char *p11c_pkey_describe(const P11C_PKEY *pk, char *buf, size_t len)
{
    if (pk->key == NULL)
        snprintf(buf, len, "public key on the host");
    else {
        const char *t = p11c_token_label(p11c_key_token(pk->key)), *k = p11c_key_label(pk->key);
        snprintf(buf, len, "token '%s', key '%s'", t != NULL ? t : "?", k != NULL ? k : "?");
    }
    return buf;
}
