/* Key schedule (spec section 5): EncKey = HMAC(Sec, "0"), MACKey = HMAC(Sec, "1"). */
#include <openssl/core_names.h>

#include "p11c_internal.h"

p11c_err p11c_kdf(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t sec[P11C_SEC_LEN],
                  uint8_t enc_key[P11C_KEY_LEN], uint8_t mac_key[P11C_KEY_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MAC *mac = EVP_MAC_fetch(libctx, "HMAC", propq);
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[3];
    size_t n = 0;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_PROPERTIES, (char *)propq, 0);
    params[2] = OSSL_PARAM_construct_end();
    if (propq == NULL)
        params[1] = OSSL_PARAM_construct_end();
    if (mac == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
        goto end;
    if (!EVP_MAC_init(ctx, sec, P11C_SEC_LEN, params) ||
        !EVP_MAC_update(ctx, (const uint8_t *)"0", 1) ||
        !EVP_MAC_final(ctx, enc_key, &n, P11C_KEY_LEN) || n != P11C_KEY_LEN)
        goto end;
    if (!EVP_MAC_init(ctx, NULL, 0, NULL) || !EVP_MAC_update(ctx, (const uint8_t *)"1", 1) ||
        !EVP_MAC_final(ctx, mac_key, &n, P11C_KEY_LEN) || n != P11C_KEY_LEN)
        goto end;
    ret = P11C_OK;
end:
    if (ret != P11C_OK) {
        OPENSSL_cleanse(enc_key, P11C_KEY_LEN);
        OPENSSL_cleanse(mac_key, P11C_KEY_LEN);
    }
    EVP_MAC_CTX_free(ctx); /* wipes the keyed HMAC state */
    EVP_MAC_free(mac);
    return ret;
}
