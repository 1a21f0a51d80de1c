#include "internal.h"

CK_RV p11c_token_find(P11C_MODULE *m, const char *uri, P11C_TOKEN **out, P11C_ERR *err)
{
    (void)m;
    (void)uri;
    *out = NULL;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "p11c_token_find", "not yet");
}

const char *p11c_token_label(const P11C_TOKEN *t)
{
    (void)t;
    return "";
}

CK_RV p11c_token_login(P11C_TOKEN *t, const char *pin, P11C_ERR *err)
{
    (void)t;
    (void)pin;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_Login", "not yet");
}

CK_RV p11c_token_mechanism(P11C_TOKEN *t, CK_MECHANISM_TYPE mech, CK_FLAGS flags,
                           CK_MECHANISM_INFO *info, P11C_ERR *err)
{
    (void)t;
    (void)mech;
    (void)flags;
    (void)info;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_GetMechanismInfo", "not yet");
}

CK_RV p11c_token_random(P11C_TOKEN *t, uint8_t *buf, size_t len, P11C_ERR *err)
{
    (void)t;
    (void)buf;
    (void)len;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "C_GenerateRandom", "not yet");
}

CK_ULONG p11c_token_max_sessions(const P11C_TOKEN *t)
{
    (void)t;
    return 0;
}

void p11c_token_set_max_sessions(P11C_TOKEN *t, CK_ULONG max)
{
    (void)t;
    (void)max;
}
