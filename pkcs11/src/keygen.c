#include "internal.h"

CK_RV p11c_key_generate(P11C_TOKEN *t, unsigned int bits, const char *label, const uint8_t *id,
                        size_t idlen, int persistent, P11C_KEY **out, P11C_ERR *err)
{
    (void)t;
    (void)bits;
    (void)label;
    (void)id;
    (void)idlen;
    (void)persistent;
    *out = NULL;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_GenerateKeyPair", "not yet");
}

CK_RV p11c_key_import(P11C_TOKEN *t, const P11C_RSA_PARTS *parts, const char *label,
                      const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                      P11C_ERR *err)
{
    (void)t;
    (void)parts;
    (void)label;
    (void)id;
    (void)idlen;
    (void)persistent;
    *out = NULL;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_CreateObject", "not yet");
}
