/*
 * RSA-PSS for tokens without CKM_RSA_PKCS_PSS but with raw RSA
 * (CKM_RSA_X_509): the EMSA-PSS encoding (RFC 8017, 9.1.1), which needs no
 * secret, is made on the host by OpenSSL, and the token does the raw private
 * operation on it. Tokens with neither (some OpenPGP cards sign PKCS#1 v1.5
 * only) cannot make PSS signatures at all: said plainly, naming the token.
 *
 * RSA_padding_add_PKCS1_PSS_mgf1 is OpenSSL's own encoder; it is deprecated
 * in 3.0 without a replacement outside the RSA signature code, so this file
 * alone is built with the deprecated declarations (provider/CMakeLists.txt).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/rsa.h>

#include "prov.h"

/* 1 when the token has mech for signing, 0 when it says it has not, -1
 * when it could not be asked (gone for now: the operation itself will tell,
 * or recover). */
static int token_has(P11C_TOKEN *t, CK_MECHANISM_TYPE mech)
{
    P11C_ERR err;
    memset(&err, 0, sizeof(err));
    ERR_set_mark();
    CK_RV rv = p11c_token_mechanism(t, mech, CKF_SIGN, NULL, &err);
    ERR_pop_to_mark();
    return rv == CKR_OK ? 1 : rv == CKR_MECHANISM_INVALID ? 0 : -1;
}

int p11c_pss_host_wanted(P11C_PROV *prov, P11C_PKEY *pk, const P11C_HASH *md)
{
    P11C_TOKEN *t = p11c_key_token(pk->key);

    int pss = token_has(t, CKM_RSA_PKCS_PSS);
    if (pss != 0 || (md != NULL && token_has(t, md->rsa_pss) != 0))
        return 0;
    int raw = token_has(t, CKM_RSA_X_509);
    if (raw < 0)
        return 0;
    if (raw > 0) {
        if (!prov->pss_on_host) {
            P11C_RAISE(prov, p11c_reason_of_rv(CKR_MECHANISM_INVALID),
                       "token '%s' has no CKM_RSA_PKCS_PSS; PSS signatures would need encoding "
                       "on the host with CKM_RSA_X_509, which pkcs11-pss-on-host = no forbids",
                       p11c_token_label(t));
            return -1;
        }
        if (!__atomic_exchange_n(&prov->pss_on_host_told, 1, __ATOMIC_RELAXED))
            fprintf(stderr,
                    "p11chat: token '%s' has no CKM_RSA_PKCS_PSS: PSS signatures are encoded on "
                    "the host and signed with the token's raw RSA (CKM_RSA_X_509)\n",
                    p11c_token_label(t));
        return 1;
    }
    P11C_RAISE(prov, p11c_reason_of_rv(CKR_MECHANISM_INVALID),
               "token '%s' has neither CKM_RSA_PKCS_PSS nor raw RSA (CKM_RSA_X_509): it cannot "
               "make RSA-PSS signatures at all (it signs PKCS#1 v1.5 only); use a key on a token "
               "that has one of them",
               p11c_token_label(t));
    return -1;
}

int p11c_pss_host_sign(P11C_PROV *prov, P11C_PKEY *pk, const P11C_HASH *md, const P11C_HASH *mgf1,
                       size_t salt, const uint8_t *dgst, uint8_t *sig, size_t *siglen,
                       size_t sigsize)
{
    size_t k = p11c_pkey_size(pk);
    uint8_t em[2048];
    P11C_MECH mech;
    P11C_ERR err;
    int ret = 0;

    /* The public key tells OpenSSL the modulus size; nothing secret here. */
    RSA *rsa = (RSA *)EVP_PKEY_get0_RSA(pk->pub);
    if (rsa == NULL || k > sizeof(em) || sigsize < k || salt > INT32_MAX) {
        P11C_RAISE(prov, P11C_R_INTERNAL, "PSS encoding on the host: no usable public key");
        goto end;
    }
    if (RSA_padding_add_PKCS1_PSS_mgf1(rsa, em, dgst, p11c_prov_md(prov, md),
                                       p11c_prov_md(prov, mgf1), (int)salt) != 1) {
        P11C_RAISE(prov, P11C_R_BAD_PARAM, "PSS encoding on the host failed (digest or salt)");
        goto end;
    }
    memset(&mech, 0, sizeof(mech));
    memset(&err, 0, sizeof(err));
    mech.type = CKM_RSA_X_509;
    *siglen = sigsize;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    CK_RV rv = p11c_key_sign(pk->key, &mech, em, k, sig, siglen, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    ret = 1;
end:
    OPENSSL_cleanse(em, sizeof(em));
    return ret;
}
