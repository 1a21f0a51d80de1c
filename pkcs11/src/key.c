#include "internal.h"

CK_RV p11c_key_load(P11C_MODULE *m, const char *uri, p11c_want want, P11C_KEY **out, P11C_ERR *err)
{
    (void)m;
    (void)uri;
    (void)want;
    *out = NULL;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "p11c_key_load", "not yet");
}

CK_RV p11c_key_enum(P11C_MODULE *m, const char *uri, void (*cb)(P11C_KEY *key, void *arg),
                    void *arg, P11C_ERR *err)
{
    (void)m;
    (void)uri;
    (void)cb;
    (void)arg;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "p11c_key_enum", "not yet");
}

P11C_KEY *p11c_key_up_ref(P11C_KEY *k)
{
    return k;
}

void p11c_key_free(P11C_KEY *k)
{
    (void)k;
}

int p11c_key_has_private(P11C_KEY *k)
{
    (void)k;
    return 0;
}

int p11c_key_is_ephemeral(const P11C_KEY *k)
{
    (void)k;
    return 0;
}

unsigned int p11c_key_bits(const P11C_KEY *k)
{
    (void)k;
    return 0;
}

void p11c_key_public(const P11C_KEY *k, const uint8_t **n, size_t *nlen, const uint8_t **e,
                     size_t *elen)
{
    (void)k;
    *n = *e = NULL;
    *nlen = *elen = 0;
}

const char *p11c_key_label(const P11C_KEY *k)
{
    (void)k;
    return "";
}

const uint8_t *p11c_key_id(const P11C_KEY *k, size_t *len)
{
    (void)k;
    *len = 0;
    return NULL;
}

P11C_TOKEN *p11c_key_token(const P11C_KEY *k)
{
    (void)k;
    return NULL;
}

CK_RV p11c_key_sign(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                    uint8_t *sig, size_t *siglen, P11C_ERR *err)
{
    (void)k;
    (void)mech;
    (void)in;
    (void)inlen;
    (void)sig;
    (void)siglen;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_Sign", "not yet");
}

CK_RV p11c_key_decrypt(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen, P11C_ERR *err)
{
    (void)k;
    (void)mech;
    (void)in;
    (void)inlen;
    (void)out;
    (void)outlen;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_Decrypt", "not yet");
}

CK_RV p11c_key_destroy(P11C_KEY *k, P11C_ERR *err)
{
    (void)k;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_DestroyObject", "not yet");
}
