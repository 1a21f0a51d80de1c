/*
 * HMAC-SHA256 (spec section 1), the one place the protocol's MACs are made:
 * the key schedule, record MACs and key confirmations all go through here,
 * and so do the Wycheproof vectors in the tests.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include "p11c_internal.h"

EVP_MAC_CTX *p11c_hmac_new(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *key,
                           size_t keylen)
{
    static const uint8_t empty[1] = {0};
    EVP_MAC *mac = EVP_MAC_fetch(libctx, "HMAC", propq);
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[3], *pp = params;

    *pp++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    if (propq != NULL)
        *pp++ = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_PROPERTIES, (char *)propq, 0);
    *pp = OSSL_PARAM_construct_end();
    if (mac == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
        goto end;
    /* A NULL key means "keep the old one" to EVP_MAC_init: an empty key needs a pointer. */
    if (!EVP_MAC_init(ctx, key != NULL ? key : empty, keylen, params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
end:
    EVP_MAC_free(mac);
    return ctx;
}

p11c_err p11c_hmac(EVP_MAC_CTX *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                   uint8_t out[P11C_MAC_LEN])
{
    size_t n = 0;

    if (!EVP_MAC_init(ctx, NULL, 0, NULL) || (alen > 0 && !EVP_MAC_update(ctx, a, alen)) ||
        (blen > 0 && !EVP_MAC_update(ctx, b, blen)) || !EVP_MAC_final(ctx, out, &n, P11C_MAC_LEN) ||
        n != P11C_MAC_LEN) {
        OPENSSL_cleanse(out, P11C_MAC_LEN);
        return P11C_ERR_CRYPTO;
    }
    return P11C_OK;
}

p11c_err p11c_hmac_verify(EVP_MAC_CTX *ctx, const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen, const uint8_t *tag, size_t taglen)
{
    uint8_t mac[P11C_MAC_LEN];
    p11c_err ret;

    if (taglen == 0 || taglen > P11C_MAC_LEN)
        return P11C_ERR_ARG;
    ret = p11c_hmac(ctx, a, alen, b, blen, mac);
    if (ret == P11C_OK && CRYPTO_memcmp(mac, tag, taglen) != 0)
        ret = P11C_ERR_MAC;
    OPENSSL_cleanse(mac, sizeof(mac));
    return ret;
}
