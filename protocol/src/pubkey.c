/*
 * pub(K) for both kinds of key (spec sections 1 and 10): the RSA encoding
 * lives in keys.c, the EC one in pub_ec.c; this file picks between them.
 */
#include "p11c_internal.h"

unsigned p11c_key_kind(const EVP_PKEY *key)
{
    if (key == NULL)
        return 0;
    if (EVP_PKEY_is_a(key, "RSA"))
        return P11C_KIND_RSA;
    if (EVP_PKEY_is_a(key, "EC"))
        return p11c_ec_kind(key);
    return 0;
}

p11c_err p11c_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len)
{
    if (key == NULL || der == NULL || len == NULL)
        return P11C_ERR_ARG;
    if (EVP_PKEY_is_a(key, "EC"))
        return p11c_ec_pub_der(key, der, len);
    return p11c_rsa_pub_der(key, der, len);
}

p11c_err p11c_pub_decode(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der, size_t len,
                         unsigned kinds, EVP_PKEY **key)
{
    P11C_RCUR c;
    uint8_t tag, first;
    size_t seqlen;

    /* The outer SEQUENCE's first element says which structure this is. */
    p11c_rcur_init(&c, der, len);
    if (!p11c_rcur_u8(&c, &tag) || tag != 0x30 || !p11c_der_read_len(&c, &seqlen) ||
        !p11c_rcur_u8(&c, &first))
        return P11C_ERR_KEY;
    if (first == 0x02)
        return (kinds & P11C_KIND_RSA) ? p11c_key_from_der(libctx, propq, der, len, key)
                                       : P11C_ERR_KEY;
    if (first == 0x30 && (kinds & P11C_KIND_EC))
        return p11c_ec_key_from_der(libctx, propq, der, len, kinds, key);
    return P11C_ERR_KEY;
}
