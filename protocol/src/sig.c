/* Sign(K, m) and its check (spec section 10): each key signs with its own kind. */
#include "p11c_internal.h"

p11c_err p11c_sig_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                       size_t tbslen, uint8_t **sig, size_t *siglen)
{
    if (key != NULL && EVP_PKEY_is_a(key, "EC"))
        return p11c_ecdsa_sign(libctx, propq, key, tbs, tbslen, sig, siglen);
    return p11c_pss_sign(libctx, propq, key, tbs, tbslen, sig, siglen);
}

p11c_err p11c_sig_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, const uint8_t *sig, size_t siglen)
{
    if (key != NULL && EVP_PKEY_is_a(key, "EC"))
        return p11c_ecdsa_verify(libctx, propq, key, tbs, tbslen, sig, siglen);
    return p11c_pss_verify(libctx, propq, key, tbs, tbslen, sig, siglen);
}
