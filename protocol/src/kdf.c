/* Key schedule (spec section 5): EncKey = HMAC(Sec, "0"), MACKey = HMAC(Sec, "1"). */
#include <openssl/crypto.h>

#include "p11c_internal.h"

p11c_err p11c_kdf(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t sec[P11C_SEC_LEN],
                  uint8_t enc_key[P11C_KEY_LEN], uint8_t mac_key[P11C_KEY_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MAC_CTX *ctx = p11c_hmac_new(libctx, propq, sec, P11C_SEC_LEN);

    if (ctx == NULL)
        goto end;
    ret = p11c_hmac(ctx, (const uint8_t *)"0", 1, NULL, 0, enc_key);
    if (ret == P11C_OK)
        ret = p11c_hmac(ctx, (const uint8_t *)"1", 1, NULL, 0, mac_key);
end:
    if (ret != P11C_OK) {
        OPENSSL_cleanse(enc_key, P11C_KEY_LEN);
        OPENSSL_cleanse(mac_key, P11C_KEY_LEN);
    }
    EVP_MAC_CTX_free(ctx); /* wipes the keyed HMAC state */
    return ret;
}
