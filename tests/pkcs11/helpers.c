#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <p11-kit/p11-kit.h>

P11C_MODULE *th_module(int with_pin)
{
    P11C_MODULE *m = NULL;
    P11C_ERR err = {0};
    CK_RV rv = p11c_module_load(tu_softhsm_module(), &m, &err);
    if (rv != CKR_OK) {
        char buf[512];
        fprintf(stderr, "module: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
        return NULL;
    }
    if (with_pin)
        p11c_module_set_pin(m, TU_USER_PIN);
    return m;
}

P11C_TOKEN *th_token(P11C_MODULE *m)
{
    P11C_TOKEN *t = NULL;
    P11C_ERR err = {0};
    if (p11c_token_find(m, TH_TOKEN_URI, &t, &err) != CKR_OK)
        return NULL;
    return t;
}

EVP_PKEY *th_pkey(const P11C_KEY *k)
{
    const uint8_t *n, *e;
    size_t nlen, elen;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *bn = NULL, *be = NULL;

    p11c_key_public(k, &n, &nlen, &e, &elen);
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    if (bld == NULL || ctx == NULL || bn == NULL || be == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

int th_verify(const P11C_KEY *k, const EVP_MD *md, int pss, int salt_len, const uint8_t *tbs,
              size_t tbslen, const uint8_t *sig, size_t siglen)
{
    EVP_PKEY *pkey = th_pkey(k);
    EVP_PKEY_CTX *ctx = pkey != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    int ok =
        ctx != NULL && EVP_PKEY_verify_init(ctx) > 0 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) > 0 &&
        (md == NULL || EVP_PKEY_CTX_set_signature_md(ctx, md) > 0) &&
        (!pss || (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_len) > 0 &&
                  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0)) &&
        EVP_PKEY_verify(ctx, sig, siglen, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

int th_encrypt(const P11C_KEY *k, int pad, const EVP_MD *md, const uint8_t *label, size_t label_len,
               const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
    EVP_PKEY *pkey = th_pkey(k);
    EVP_PKEY_CTX *ctx = pkey != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    int ok =
        ctx != NULL && EVP_PKEY_encrypt_init(ctx) > 0 && EVP_PKEY_CTX_set_rsa_padding(ctx, pad) > 0;
    if (ok && pad == RSA_PKCS1_OAEP_PADDING) {
        ok = EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
        if (ok && label_len > 0) {
            void *copy = OPENSSL_memdup(label, label_len);
            ok = copy != NULL && EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)label_len) > 0;
        }
    }
    ok = ok && EVP_PKEY_encrypt(ctx, out, outlen, in, inlen) > 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

int th_sh(char **out, const char *cmd)
{
    return tu_run(out, "%s", cmd);
}

int th_sign_ok(P11C_KEY *k, P11C_ERR *err)
{
    uint8_t dgst[32], sig[1024];
    size_t siglen = sizeof(sig);
    unsigned int dl = 0;
    P11C_MECH mech = {
        .type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .mgf = CKG_MGF1_SHA256, .salt_len = 32};
    EVP_Digest("msg", 3, dgst, &dl, EVP_sha256(), NULL);
    if (p11c_key_sign(k, &mech, dgst, sizeof(dgst), sig, &siglen, err) != CKR_OK)
        return 0;
    return th_verify(k, EVP_sha256(), 1, 32, dgst, sizeof(dgst), sig, siglen);
}

CK_FUNCTION_LIST *th_raw(CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_FUNCTION_LIST *raw = p11_kit_module_load(tu_softhsm_module(), P11_KIT_MODULE_UNMANAGED);

    *slot = (CK_SLOT_ID)-1;
    if (raw == NULL)
        return NULL;
    CK_RV rv = p11_kit_module_initialize(raw);
    if ((rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) ||
        raw->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        p11_kit_module_release(raw);
        return NULL;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (raw->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, TU_TOKEN_LABEL, strlen(TU_TOKEN_LABEL)) == 0)
            *slot = slots[i];
    }
    if (*slot == (CK_SLOT_ID)-1) {
        p11_kit_module_release(raw);
        return NULL;
    }
    return raw;
}
