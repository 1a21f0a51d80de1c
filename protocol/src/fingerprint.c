/* Fingerprints (spec section 2) and identities (spec section 3). */
#include <string.h>

#include <openssl/crypto.h>

#include "p11c_internal.h"

p11c_err p11c_fingerprint_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der,
                              size_t len, uint8_t fp[P11C_FP_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MD *md = NULL;
    unsigned int n = 0;

    if (der == NULL || fp == NULL)
        return P11C_ERR_ARG;
    md = EVP_MD_fetch(libctx, "SHA256", propq);
    if (md == NULL || EVP_Digest(der, len, fp, &n, md, NULL) != 1 || n != P11C_FP_LEN)
        goto end;
    ret = P11C_OK;
end:
    EVP_MD_free(md);
    return ret;
}

p11c_err p11c_fingerprint(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *key,
                          uint8_t fp[P11C_FP_LEN])
{
    uint8_t *der = NULL;
    size_t len = 0;
    p11c_err ret;

    if (fp == NULL)
        return P11C_ERR_ARG;
    ret = p11c_pub_der(key, &der, &len);
    if (ret == P11C_OK)
        ret = p11c_fingerprint_der(libctx, propq, der, len, fp);
    OPENSSL_free(der);
    return ret;
}

static const char hexdig[] = "0123456789abcdef";

void p11c_fingerprint_hex(const uint8_t fp[P11C_FP_LEN], char out[2 * P11C_FP_LEN + 1])
{
    for (size_t i = 0; i < P11C_FP_LEN; i++) {
        out[2 * i] = hexdig[fp[i] >> 4];
        out[2 * i + 1] = hexdig[fp[i] & 15];
    }
    out[2 * P11C_FP_LEN] = '\0';
}

void p11c_fingerprint_short(const uint8_t fp[P11C_FP_LEN], char out[P11C_SHORT_FP_LEN + 1])
{
    size_t o = 0;

    for (size_t i = 0; i < 8; i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = ':';
        out[o++] = hexdig[fp[i] >> 4];
        out[o++] = hexdig[fp[i] & 15];
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

p11c_err p11c_fingerprint_parse(const char *hex, uint8_t fp[P11C_FP_LEN])
{
    size_t n = 0;
    int prev_colon = 1; /* no leading colon */
    uint8_t out[P11C_FP_LEN];
    const char *p;

    if (hex == NULL || fp == NULL)
        return P11C_ERR_ARG;
    for (p = hex; *p != '\0'; p++) {
        if (*p == ':') {
            /* Colons only between complete bytes, never two in a row. */
            if (prev_colon || n % 2 != 0)
                return P11C_ERR_ARG;
            prev_colon = 1;
            continue;
        }
        int v = hexval(*p);
        if (v < 0 || n >= 2 * P11C_FP_LEN)
            return P11C_ERR_ARG;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
        prev_colon = 0;
    }
    if (n != 2 * P11C_FP_LEN || prev_colon)
        return P11C_ERR_ARG;
    memcpy(fp, out, P11C_FP_LEN);
    return P11C_OK;
}
