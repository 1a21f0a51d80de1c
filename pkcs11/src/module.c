#include "internal.h"

CK_RV p11c_module_load(const char *spec, P11C_MODULE **out, P11C_ERR *err)
{
    (void)spec;
    *out = NULL;
    return p11c_err_set(err, CKR_FUNCTION_NOT_SUPPORTED, "p11c_module_load", "not yet");
}

void p11c_module_free(P11C_MODULE *m)
{
    (void)m;
}

CK_RV p11c_module_set_pin(P11C_MODULE *m, const char *pin)
{
    (void)m;
    (void)pin;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

unsigned long p11c_module_call_count(const P11C_MODULE *m)
{
    (void)m;
    return 0;
}
