/* One table of CK_RV names, and the P11C_ERR helpers. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define R(x)                                                                                       \
    {                                                                                              \
        x, #x                                                                                      \
    }
#define P(x)                                                                                       \
    {                                                                                              \
        P11C_CKR_##x, "P11C_" #x                                                                   \
    }

static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    R(CKR_OK),
    R(CKR_CANCEL),
    R(CKR_HOST_MEMORY),
    R(CKR_SLOT_ID_INVALID),
    R(CKR_GENERAL_ERROR),
    R(CKR_FUNCTION_FAILED),
    R(CKR_ARGUMENTS_BAD),
    R(CKR_NO_EVENT),
    R(CKR_NEED_TO_CREATE_THREADS),
    R(CKR_CANT_LOCK),
    R(CKR_ATTRIBUTE_READ_ONLY),
    R(CKR_ATTRIBUTE_SENSITIVE),
    R(CKR_ATTRIBUTE_TYPE_INVALID),
    R(CKR_ATTRIBUTE_VALUE_INVALID),
    R(CKR_ACTION_PROHIBITED),
    R(CKR_DATA_INVALID),
    R(CKR_DATA_LEN_RANGE),
    R(CKR_DEVICE_ERROR),
    R(CKR_DEVICE_MEMORY),
    R(CKR_DEVICE_REMOVED),
    R(CKR_ENCRYPTED_DATA_INVALID),
    R(CKR_ENCRYPTED_DATA_LEN_RANGE),
    R(CKR_FUNCTION_CANCELED),
    R(CKR_FUNCTION_NOT_PARALLEL),
    R(CKR_FUNCTION_NOT_SUPPORTED),
    R(CKR_KEY_HANDLE_INVALID),
    R(CKR_KEY_SIZE_RANGE),
    R(CKR_KEY_TYPE_INCONSISTENT),
    R(CKR_KEY_NOT_NEEDED),
    R(CKR_KEY_CHANGED),
    R(CKR_KEY_NEEDED),
    R(CKR_KEY_INDIGESTIBLE),
    R(CKR_KEY_FUNCTION_NOT_PERMITTED),
    R(CKR_KEY_NOT_WRAPPABLE),
    R(CKR_KEY_UNEXTRACTABLE),
    R(CKR_MECHANISM_INVALID),
    R(CKR_MECHANISM_PARAM_INVALID),
    R(CKR_OBJECT_HANDLE_INVALID),
    R(CKR_OPERATION_ACTIVE),
    R(CKR_OPERATION_NOT_INITIALIZED),
    R(CKR_PIN_INCORRECT),
    R(CKR_PIN_INVALID),
    R(CKR_PIN_LEN_RANGE),
    R(CKR_PIN_EXPIRED),
    R(CKR_PIN_LOCKED),
    R(CKR_SESSION_CLOSED),
    R(CKR_SESSION_COUNT),
    R(CKR_SESSION_HANDLE_INVALID),
    R(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    R(CKR_SESSION_READ_ONLY),
    R(CKR_SESSION_EXISTS),
    R(CKR_SESSION_READ_ONLY_EXISTS),
    R(CKR_SESSION_READ_WRITE_SO_EXISTS),
    R(CKR_SIGNATURE_INVALID),
    R(CKR_SIGNATURE_LEN_RANGE),
    R(CKR_TEMPLATE_INCOMPLETE),
    R(CKR_TEMPLATE_INCONSISTENT),
    R(CKR_TOKEN_NOT_PRESENT),
    R(CKR_TOKEN_NOT_RECOGNIZED),
    R(CKR_TOKEN_WRITE_PROTECTED),
    R(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    R(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_USER_ALREADY_LOGGED_IN),
    R(CKR_USER_NOT_LOGGED_IN),
    R(CKR_USER_PIN_NOT_INITIALIZED),
    R(CKR_USER_TYPE_INVALID),
    R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    R(CKR_USER_TOO_MANY_TYPES),
    R(CKR_WRAPPED_KEY_INVALID),
    R(CKR_WRAPPED_KEY_LEN_RANGE),
    R(CKR_WRAPPING_KEY_HANDLE_INVALID),
    R(CKR_WRAPPING_KEY_SIZE_RANGE),
    R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    R(CKR_RANDOM_SEED_NOT_SUPPORTED),
    R(CKR_RANDOM_NO_RNG),
    R(CKR_DOMAIN_PARAMS_INVALID),
    R(CKR_CURVE_NOT_SUPPORTED),
    R(CKR_BUFFER_TOO_SMALL),
    R(CKR_SAVED_STATE_INVALID),
    R(CKR_INFORMATION_SENSITIVE),
    R(CKR_STATE_UNSAVEABLE),
    R(CKR_CRYPTOKI_NOT_INITIALIZED),
    R(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    R(CKR_MUTEX_BAD),
    R(CKR_MUTEX_NOT_LOCKED),
    R(CKR_NEW_PIN_MODE),
    R(CKR_NEXT_OTP),
    R(CKR_EXCEEDED_MAX_ITERATIONS),
    R(CKR_FIPS_SELF_TEST_FAILED),
    R(CKR_LIBRARY_LOAD_FAILED),
    R(CKR_PIN_TOO_WEAK),
    R(CKR_PUBLIC_KEY_INVALID),
    R(CKR_FUNCTION_REJECTED),
    R(CKR_VENDOR_DEFINED),
    P(URI_MALFORMED),
    P(URI_UNSUPPORTED),
    P(NO_TOKEN),
    P(TOKEN_AMBIGUOUS),
    P(NO_KEY),
    P(KEY_AMBIGUOUS),
    P(NO_PIN),
    P(PIN_SOURCE),
    P(MODULE_LOAD),
    P(NOT_RSA),
    P(KEY_EXISTS),
    P(NO_PRIVATE),
    P(SESSION_LIMIT),
};

const char *p11c_rv_name(CK_RV rv)
{
    /* Unknown values are named in a per-thread buffer so callers need not free. */
    static _Thread_local char unknown[24];

    for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++) {
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    }
    snprintf(unknown, sizeof(unknown), "CKR_0x%08lx", (unsigned long)rv);
    return unknown;
}

const char *p11c_err_string(const P11C_ERR *err, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return "";
    if (err == NULL) {
        snprintf(buf, len, "no error information");
        return buf;
    }
    const char *func = err->func != NULL ? err->func : "p11chat";
    if (err->what[0] != '\0')
        snprintf(buf, len, "%s on %s: %s", func, err->what, p11c_rv_name(err->rv));
    else
        snprintf(buf, len, "%s: %s", func, p11c_rv_name(err->rv));
    return buf;
}

CK_RV p11c_err_set(P11C_ERR *err, CK_RV rv, const char *func, const char *fmt, ...)
{
    if (err == NULL)
        return rv;
    err->rv = rv;
    err->func = func;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->what, sizeof(err->what), fmt, ap);
        va_end(ap);
    }
    return rv;
}

CK_RV p11c_err_rv(P11C_ERR *err, CK_RV rv, const char *func)
{
    if (err != NULL) {
        err->rv = rv;
        err->func = func;
    }
    return rv;
}

void p11c_err_what(P11C_ERR *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->what, sizeof(err->what), fmt, ap);
    va_end(ap);
}

#define M(x)                                                                                       \
    {                                                                                              \
        x, #x                                                                                      \
    }

static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mech_names[] = {
    M(CKM_RSA_PKCS_KEY_PAIR_GEN),
    M(CKM_RSA_PKCS),
    M(CKM_RSA_X_509),
    M(CKM_RSA_PKCS_OAEP),
    M(CKM_RSA_PKCS_PSS),
    M(CKM_SHA1_RSA_PKCS),
    M(CKM_SHA224_RSA_PKCS),
    M(CKM_SHA256_RSA_PKCS),
    M(CKM_SHA384_RSA_PKCS),
    M(CKM_SHA512_RSA_PKCS),
    M(CKM_SHA1_RSA_PKCS_PSS),
    M(CKM_SHA224_RSA_PKCS_PSS),
    M(CKM_SHA256_RSA_PKCS_PSS),
    M(CKM_SHA384_RSA_PKCS_PSS),
    M(CKM_SHA512_RSA_PKCS_PSS),
    M(CKM_SHA_1),
    M(CKM_SHA224),
    M(CKM_SHA256),
    M(CKM_SHA384),
    M(CKM_SHA512),
    M(CKM_EC_KEY_PAIR_GEN),
    M(CKM_ECDSA),
    M(CKM_ECDH1_DERIVE),
    M(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    M(CKM_EDDSA),
};

const char *p11c_mech_name(CK_MECHANISM_TYPE mech, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++) {
        if (mech_names[i].mech == mech) {
            snprintf(buf, len, "%s", mech_names[i].name);
            return buf;
        }
    }
    snprintf(buf, len, "mechanism 0x%08lx", (unsigned long)mech);
    return buf;
}
