/* The key object every operation shares: a token key and its public half. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
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

P11C_PKEY *p11c_pkey_from_key(P11C_PROV *prov, P11C_KEY *key, int public_only)
{
    P11C_PKEY *pk = p11c_pkey_new(prov);
    const uint8_t *n, *e;
    size_t nlen, elen;

    if (pk == NULL) {
        p11c_key_free(key);
        return NULL;
    }
    pk->key = key;
    pk->public_only = public_only;
    if (public_only)
        pk->priv = 0;
    p11c_key_public(key, &n, &nlen, &e, &elen);
    if (!p11c_pkey_set_public(pk, n, nlen, e, elen)) {
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
    return pk->key != NULL && !pk->public_only && pk->priv != 0;
}

size_t p11c_pkey_size(const P11C_PKEY *pk)
{
    return (pk->bits + 7) / 8;
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
