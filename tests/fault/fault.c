/* A fault-injecting PKCS#11 module that forwards to a real one (fault.h). */
#include "fault.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef CK_SESSION_HANDLE sess_t;
typedef CK_SLOT_ID slot_t;
typedef CK_OBJECT_HANDLE obj_t;
typedef CK_ATTRIBUTE attr_t;
typedef CK_MECHANISM mech_t;
typedef unsigned char uchar;
typedef unsigned long ulong;

/*
 * Every function of the 2.40 list. XN: no session argument. XS: the first
 * argument, named h, is a session handle.
 */
#define FAULT_FUNCS(XN, XS)                                                                        \
    XN(C_Initialize, (void *a), (a))                                                               \
    XN(C_Finalize, (void *a), (a))                                                                 \
    XN(C_GetInfo, (CK_INFO * a), (a))                                                              \
    XN(C_GetSlotList, (uchar a, slot_t * b, ulong * c), (a, b, c))                                 \
    XN(C_GetSlotInfo, (slot_t a, CK_SLOT_INFO * b), (a, b))                                        \
    XN(C_GetTokenInfo, (slot_t a, CK_TOKEN_INFO * b), (a, b))                                      \
    XN(C_GetMechanismList, (slot_t a, CK_MECHANISM_TYPE * b, ulong * c), (a, b, c))                \
    XN(C_GetMechanismInfo, (slot_t a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO * c), (a, b, c))      \
    XN(C_InitToken, (slot_t a, uchar * b, ulong c, uchar * d), (a, b, c, d))                       \
    XS(C_InitPIN, (sess_t h, uchar * b, ulong c), (h, b, c), END_NONE)                             \
    XS(C_SetPIN, (sess_t h, uchar * b, ulong c, uchar * d, ulong e), (h, b, c, d, e), END_NONE)    \
    XN(C_OpenSession, (slot_t a, CK_FLAGS b, void *c, CK_NOTIFY d, sess_t *e), (a, b, c, d, e))    \
    XS(C_CloseSession, (sess_t h), (h), END_NONE)                                                  \
    XN(C_CloseAllSessions, (slot_t a), (a))                                                        \
    XS(C_GetSessionInfo, (sess_t h, CK_SESSION_INFO * b), (h, b), END_NONE)                        \
    XS(C_GetOperationState, (sess_t h, uchar * b, ulong * c), (h, b, c), END_NONE)                 \
    XS(C_SetOperationState, (sess_t h, uchar * b, ulong c, obj_t d, obj_t e), (h, b, c, d, e),     \
       END_NONE)                                                                                   \
    XS(C_Login, (sess_t h, CK_USER_TYPE b, uchar * c, ulong d), (h, b, c, d), END_NONE)            \
    XS(C_Logout, (sess_t h), (h), END_NONE)                                                        \
    XS(C_CreateObject, (sess_t h, attr_t * b, ulong c, obj_t * d), (h, b, c, d), END_NONE)         \
    XS(C_CopyObject, (sess_t h, obj_t b, attr_t * c, ulong d, obj_t * e), (h, b, c, d, e),         \
       END_NONE)                                                                                   \
    XS(C_DestroyObject, (sess_t h, obj_t b), (h, b), END_NONE)                                     \
    XS(C_GetObjectSize, (sess_t h, obj_t b, ulong * c), (h, b, c), END_NONE)                       \
    XS(C_GetAttributeValue, (sess_t h, obj_t b, attr_t * c, ulong d), (h, b, c, d), END_NONE)      \
    XS(C_SetAttributeValue, (sess_t h, obj_t b, attr_t * c, ulong d), (h, b, c, d), END_NONE)      \
    XS(C_FindObjectsInit, (sess_t h, attr_t * b, ulong c), (h, b, c), END_NONE)                    \
    XS(C_FindObjects, (sess_t h, obj_t * b, ulong c, ulong * d), (h, b, c, d), END_NONE)           \
    XS(C_FindObjectsFinal, (sess_t h), (h), END_NONE)                                              \
    XS(C_EncryptInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                        \
    XS(C_Encrypt, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e), END_ONE)  \
    XS(C_EncryptUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e),     \
       END_FIN(C_EncryptFinal))                                                                    \
    XS(C_EncryptFinal, (sess_t h, uchar * b, ulong * c), (h, b, c), END_FIN(C_EncryptFinal))       \
    XS(C_DecryptInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                        \
    XS(C_Decrypt, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e), END_ONE)  \
    XS(C_DecryptUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e),     \
       END_FIN(C_DecryptFinal))                                                                    \
    XS(C_DecryptFinal, (sess_t h, uchar * b, ulong * c), (h, b, c), END_FIN(C_DecryptFinal))       \
    XS(C_DigestInit, (sess_t h, mech_t * b), (h, b), END_NONE)                                     \
    XS(C_Digest, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e), END_ONE)   \
    XS(C_DigestUpdate, (sess_t h, uchar * b, ulong c), (h, b, c), END_FIN(C_DigestFinal))          \
    XS(C_DigestKey, (sess_t h, obj_t b), (h, b), END_FIN(C_DigestFinal))                           \
    XS(C_DigestFinal, (sess_t h, uchar * b, ulong * c), (h, b, c), END_FIN(C_DigestFinal))         \
    XS(C_SignInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                           \
    XS(C_Sign, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e), END_ONE)     \
    XS(C_SignUpdate, (sess_t h, uchar * b, ulong c), (h, b, c), END_FIN(C_SignFinal))              \
    XS(C_SignFinal, (sess_t h, uchar * b, ulong * c), (h, b, c), END_FIN(C_SignFinal))             \
    XS(C_SignRecoverInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                    \
    XS(C_SignRecover, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e),       \
       END_ONE)                                                                                    \
    XS(C_VerifyInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                         \
    XS(C_Verify, (sess_t h, uchar * b, ulong c, uchar * d, ulong e), (h, b, c, d, e), END_SAME)    \
    XS(C_VerifyUpdate, (sess_t h, uchar * b, ulong c), (h, b, c), END_VFIN)                        \
    XS(C_VerifyFinal, (sess_t h, uchar * b, ulong c), (h, b, c), END_SAME)                         \
    XS(C_VerifyRecoverInit, (sess_t h, mech_t * b, obj_t c), (h, b, c), END_NONE)                  \
    XS(C_VerifyRecover, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e),     \
       END_ONE)                                                                                    \
    XS(C_DigestEncryptUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e),                \
       (h, b, c, d, e), END_NONE)                                                                  \
    XS(C_DecryptDigestUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e),                \
       (h, b, c, d, e), END_NONE)                                                                  \
    XS(C_SignEncryptUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e), (h, b, c, d, e), \
       END_NONE)                                                                                   \
    XS(C_DecryptVerifyUpdate, (sess_t h, uchar * b, ulong c, uchar * d, ulong * e),                \
       (h, b, c, d, e), END_NONE)                                                                  \
    XS(C_GenerateKey, (sess_t h, mech_t * b, attr_t * c, ulong d, obj_t * e), (h, b, c, d, e),     \
       END_NONE)                                                                                   \
    XS(C_GenerateKeyPair,                                                                          \
       (sess_t h, mech_t * b, attr_t * c, ulong d, attr_t * e, ulong f, obj_t * g, obj_t * i),     \
       (h, b, c, d, e, f, g, i), END_NONE)                                                         \
    XS(C_WrapKey, (sess_t h, mech_t * b, obj_t c, obj_t d, uchar * e, ulong * f),                  \
       (h, b, c, d, e, f), END_NONE)                                                               \
    XS(C_UnwrapKey,                                                                                \
       (sess_t h, mech_t * b, obj_t c, uchar * d, ulong e, attr_t * f, ulong g, obj_t * i),        \
       (h, b, c, d, e, f, g, i), END_NONE)                                                         \
    XS(C_DeriveKey, (sess_t h, mech_t * b, obj_t c, attr_t * d, ulong e, obj_t * f),               \
       (h, b, c, d, e, f), END_NONE)                                                               \
    XS(C_SeedRandom, (sess_t h, uchar * b, ulong c), (h, b, c), END_NONE)                          \
    XS(C_GenerateRandom, (sess_t h, uchar * b, ulong c), (h, b, c), END_NONE)                      \
    XS(C_GetFunctionStatus, (sess_t h), (h), END_NONE)                                             \
    XS(C_CancelFunction, (sess_t h), (h), END_NONE)                                                \
    XN(C_WaitForSlotEvent, (CK_FLAGS a, slot_t * b, void *c), (a, b, c))

enum {
#define ENUM_N(name, params, args)      FI_##name,
#define ENUM_S(name, params, args, end) FI_##name,
    FAULT_FUNCS(ENUM_N, ENUM_S) FI_COUNT,
    FI_ANY = -1,
};

static const char *const func_names[FI_COUNT] = {
#define NAME_N(name, params, args)      #name,
#define NAME_S(name, params, args, end) #name,
    FAULT_FUNCS(NAME_N, NAME_S)};

static const struct {
    const char *name;
    CK_RV rv;
} rv_names[] = {
    {"CKR_OK", CKR_OK},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_PIN_EXPIRED", CKR_PIN_EXPIRED},
    {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
    {"CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID},
    {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
    {"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
};

typedef struct {
    int active;      /* 0: count only */
    int func;        /* FI_* or FI_ANY */
    unsigned long n; /* which call, from 1 */
    int sticky;      /* and every later one */
    CK_RV rv;
} fault_spec;

#define CALL_LOG_MAX 65536
#define SPEC_MAX     256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST *real;
static void *real_handle;
static char api_spec[SPEC_MAX];  /* from p11c_fault_set() */
static char seen_spec[SPEC_MAX]; /* the spec the counters belong to */
static fault_spec cur;
static unsigned long counts[FI_COUNT];
static unsigned long total, fired;
static unsigned char call_log[CALL_LOG_MAX];

EXPORT CK_RV p11c_fault_rv(const char *name)
{
    for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
        if (strcmp(rv_names[i].name, name) == 0)
            return rv_names[i].rv;
    char *end;
    errno = 0;
    unsigned long v = strtoul(name, &end, 0);
    if (*name != '\0' && *end == '\0' && errno == 0)
        return v;
    return (CK_RV)-1;
}

/* Parses "FUNC:N[+]:CKR" or "count" (surrounding blanks ignored). */
static int spec_parse(const char *text, fault_spec *out)
{
    char buf[SPEC_MAX];
    size_t len = strlen(text);
    memset(out, 0, sizeof(*out));
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
        len--;
    while (len > 0 && (*text == ' ' || *text == '\n')) {
        text++;
        len--;
    }
    if (len == 0 || (len == 5 && memcmp(text, "count", 5) == 0))
        return 0;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';

    char *c1 = strchr(buf, ':');
    char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
        return -1;
    *c1 = *c2 = '\0';
    out->func = FI_ANY - 1;
    if (strcmp(buf, "*") == 0)
        out->func = FI_ANY;
    for (int i = 0; i < FI_COUNT; i++)
        if (strcmp(buf, func_names[i]) == 0)
            out->func = i;
    if (out->func == FI_ANY - 1)
        return -1;
    char *end;
    errno = 0;
    out->n = strtoul(c1 + 1, &end, 10);
    if (end == c1 + 1 || errno != 0 || out->n == 0)
        return -1;
    if (*end == '+') {
        out->sticky = 1;
        end++;
    }
    if (*end != '\0')
        return -1;
    out->rv = p11c_fault_rv(c2 + 1);
    if (out->rv == (CK_RV)-1 || out->rv == CKR_OK)
        return -1;
    out->active = 1;
    return 0;
}

/* The spec in force now (caller holds the lock): API, file, environment. */
static void spec_current(char *buf, size_t len)
{
    buf[0] = '\0';
    if (api_spec[0] != '\0') {
        snprintf(buf, len, "%s", api_spec);
        return;
    }
    const char *file = getenv("P11C_FAULT_FILE");
    if (file != NULL && *file != '\0') {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t got = read(fd, buf, len - 1);
            buf[got > 0 ? got : 0] = '\0';
            close(fd);
        }
        return;
    }
    const char *env = getenv("P11C_FAULT");
    if (env != NULL)
        snprintf(buf, len, "%s", env);
}

static void counters_reset(void)
{
    memset(counts, 0, sizeof(counts));
    total = fired = 0;
}

static void log_call(int fi)
{
    const char *path = getenv("P11C_FAULT_LOG");
    if (path == NULL || *path == '\0')
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[64];
    int n = snprintf(line, sizeof(line), "%s\n", func_names[fi]);
    if (write(fd, line, (size_t)n) < 0) {
        /* a test log: nothing more to do */
    }
    close(fd);
}

/* Counts the call and says whether to fail it, and with what. */
static CK_RV fault_enter(int fi)
{
    char spec[SPEC_MAX];
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&lock);
    spec_current(spec, sizeof(spec));
    if (strcmp(spec, seen_spec) != 0) {
        snprintf(seen_spec, sizeof(seen_spec), "%s", spec);
        counters_reset();
        if (spec_parse(spec, &cur) != 0) {
            fprintf(stderr, "p11c_fault: cannot parse fault spec '%s'\n", spec);
            memset(&cur, 0, sizeof(cur));
        }
    }
    if (total < CALL_LOG_MAX)
        call_log[total] = (unsigned char)fi;
    total++;
    counts[fi]++;
    if (cur.active) {
        unsigned long c = cur.func == FI_ANY ? total : (cur.func == fi ? counts[fi] : 0);
        if (c == cur.n || (cur.sticky && c > cur.n)) {
            rv = cur.rv;
            fired++;
        }
    }
    pthread_mutex_unlock(&lock);
    log_call(fi);
    return rv;
}

/* Makes the token's state match the injected error. */
static void fault_effect(CK_RV rv, int fi, sess_t h)
{
    if (rv == CKR_USER_NOT_LOGGED_IN && fi != FI_C_Logout)
        real->C_Logout(h);
    else if ((rv == CKR_SESSION_CLOSED || rv == CKR_SESSION_HANDLE_INVALID) &&
             fi != FI_C_CloseSession)
        real->C_CloseSession(h);
}

static int real_load(void)
{
    if (real != NULL)
        return 0;
    const char *path = getenv("P11C_FAULT_MODULE");
    if (path == NULL || *path == '\0')
        path = "/usr/lib/softhsm/libsofthsm2.so";
    real_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (real_handle == NULL) {
        fprintf(stderr, "p11c_fault: %s\n", dlerror());
        return -1;
    }
    CK_C_GetFunctionList get;
    *(void **)&get = dlsym(real_handle, "C_GetFunctionList");
    if (get == NULL || get(&real) != CKR_OK || real == NULL) {
        fprintf(stderr, "p11c_fault: %s has no usable C_GetFunctionList\n", path);
        real = NULL;
        return -1;
    }
    return 0;
}

#define WRAP_N(name, params, args)                                                                 \
    static CK_RV w_##name params                                                                   \
    {                                                                                              \
        CK_RV rv = fault_enter(FI_##name);                                                         \
        if (rv != CKR_OK)                                                                          \
            return rv;                                                                             \
        return real->name args;                                                                    \
    }
/*
 * A failed call ends the token's operation, as PKCS#11 says an error does:
 * the real module is made to finish it, and its result thrown away.
 */
#define SCRATCH_END(call)                                                                          \
    {                                                                                              \
        unsigned char sc[16384] = {0};                                                             \
        CK_ULONG sl = sizeof(sc);                                                                  \
        (void)(call);                                                                              \
        (void)sl;                                                                                  \
    }
#define APPLY_END_NONE(name, args)
#define APPLY_END_SAME(name, args) (void)real->name args;
#define APPLY_END_ONE(name, args)  SCRATCH_END(real->name(h, b, c, sc, &sl))
#define APPLY_END_VFIN(name, args) SCRATCH_END(real->C_VerifyFinal(h, sc, 256))
#define APPLY_END_FIN(fin)         SCRATCH_END(real->fin(h, sc, &sl)) END_IGNORE
#define END_IGNORE(name, args)
#define WRAP_S(name, params, args, end)                                                            \
    static CK_RV w_##name params                                                                   \
    {                                                                                              \
        CK_RV rv = fault_enter(FI_##name);                                                         \
        if (rv != CKR_OK) {                                                                        \
            APPLY_##end(name, args) fault_effect(rv, FI_##name, h);                                \
            return rv;                                                                             \
        }                                                                                          \
        return real->name args;                                                                    \
    }
FAULT_FUNCS(WRAP_N, WRAP_S)

/* ---- Tokens as they are: hidden mechanisms, extra token flags -------------- */

static const struct {
    const char *name;
    unsigned long value;
} const_names[] = {
    {"CKM_RSA_PKCS", CKM_RSA_PKCS},
    {"CKM_RSA_X_509", CKM_RSA_X_509},
    {"CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS},
    {"CKM_RSA_PKCS_OAEP", CKM_RSA_PKCS_OAEP},
    {"CKM_SHA1_RSA_PKCS_PSS", CKM_SHA1_RSA_PKCS_PSS},
    {"CKM_SHA256_RSA_PKCS_PSS", CKM_SHA256_RSA_PKCS_PSS},
    {"CKM_SHA384_RSA_PKCS_PSS", CKM_SHA384_RSA_PKCS_PSS},
    {"CKM_SHA512_RSA_PKCS_PSS", CKM_SHA512_RSA_PKCS_PSS},
    {"CKM_SHA224_RSA_PKCS_PSS", CKM_SHA224_RSA_PKCS_PSS},
    {"CKM_SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS},
    {"CKF_USER_PIN_FINAL_TRY", CKF_USER_PIN_FINAL_TRY},
    {"CKF_USER_PIN_LOCKED", CKF_USER_PIN_LOCKED},
    {"CKF_USER_PIN_COUNT_LOW", CKF_USER_PIN_COUNT_LOW},
    {"CKF_PROTECTED_AUTHENTICATION_PATH", CKF_PROTECTED_AUTHENTICATION_PATH},
};

/* Parses "A,B,0x10" from the environment variable into values; count. */
static size_t env_list(const char *var, unsigned long *out, size_t max)
{
    const char *v = getenv(var);
    char buf[512];
    size_t n = 0;

    if (v == NULL || *v == '\0' || strlen(v) >= sizeof(buf))
        return 0;
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok != NULL && n < max;
         tok = strtok_r(NULL, ", ", &save)) {
        int found = 0;
        for (size_t i = 0; i < sizeof(const_names) / sizeof(const_names[0]); i++) {
            if (strcmp(tok, const_names[i].name) == 0) {
                out[n++] = const_names[i].value;
                found = 1;
                break;
            }
        }
        char *end;
        if (!found) {
            unsigned long x = strtoul(tok, &end, 0);
            if (*end == '\0')
                out[n++] = x;
            else
                fprintf(stderr, "p11c_fault: %s: unknown name '%s'\n", var, tok);
        }
    }
    return n;
}

static int mech_hidden(CK_MECHANISM_TYPE mech)
{
    unsigned long hide[32];
    size_t n = env_list("P11C_FAULT_HIDE_MECHS", hide, 32);
    for (size_t i = 0; i < n; i++)
        if (hide[i] == mech)
            return 1;
    return 0;
}

static CK_RV t_C_GetMechanismList(slot_t slot, CK_MECHANISM_TYPE *list, ulong *count)
{
    CK_MECHANISM_TYPE all[512];
    ulong n = 512, kept = 0;
    CK_RV rv = w_C_GetMechanismList(slot, all, &n);
    if (rv != CKR_OK || count == NULL)
        return rv;
    for (ulong i = 0; i < n; i++) {
        if (mech_hidden(all[i]))
            continue;
        if (list != NULL && kept < *count)
            list[kept] = all[i];
        kept++;
    }
    rv = list != NULL && kept > *count ? CKR_BUFFER_TOO_SMALL : CKR_OK;
    *count = kept;
    return rv;
}

static CK_RV t_C_GetMechanismInfo(slot_t slot, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info)
{
    if (mech_hidden(mech))
        return CKR_MECHANISM_INVALID;
    return w_C_GetMechanismInfo(slot, mech, info);
}

static CK_RV t_C_SignInit(sess_t h, mech_t *m, obj_t key)
{
    if (m != NULL && mech_hidden(m->mechanism))
        return CKR_MECHANISM_INVALID;
    return w_C_SignInit(h, m, key);
}

static CK_RV t_C_DecryptInit(sess_t h, mech_t *m, obj_t key)
{
    if (m != NULL && mech_hidden(m->mechanism))
        return CKR_MECHANISM_INVALID;
    return w_C_DecryptInit(h, m, key);
}

static CK_RV t_C_GetTokenInfo(slot_t slot, CK_TOKEN_INFO *info)
{
    unsigned long flags[8];
    size_t n = env_list("P11C_FAULT_TOKEN_FLAGS", flags, 8);
    CK_RV rv = w_C_GetTokenInfo(slot, info);
    for (size_t i = 0; rv == CKR_OK && i < n; i++)
        info->flags |= flags[i];
    return rv;
}

static CK_RV w_C_GetFunctionList(CK_FUNCTION_LIST **list);

#define LIST_N(name, params, args)      .name = w_##name,
#define LIST_S(name, params, args, end) .name = w_##name,
static CK_FUNCTION_LIST fault_list = {
    .version = {2, 40}, .C_GetFunctionList = w_C_GetFunctionList, FAULT_FUNCS(LIST_N, LIST_S)};

static CK_RV w_C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    int bad = real_load();
    pthread_mutex_unlock(&lock);
    if (bad)
        return CKR_GENERAL_ERROR;
    /* The token-shaping wrappers, in front of the counting ones. */
    fault_list.C_GetMechanismList = t_C_GetMechanismList;
    fault_list.C_GetMechanismInfo = t_C_GetMechanismInfo;
    fault_list.C_SignInit = t_C_SignInit;
    fault_list.C_DecryptInit = t_C_DecryptInit;
    fault_list.C_GetTokenInfo = t_C_GetTokenInfo;
    *list = &fault_list;
    return CKR_OK;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    return w_C_GetFunctionList(list);
}

EXPORT int p11c_fault_set(const char *spec)
{
    fault_spec parsed;
    if (spec == NULL)
        spec = "";
    if (strlen(spec) >= SPEC_MAX || spec_parse(spec, &parsed) != 0)
        return -1;
    pthread_mutex_lock(&lock);
    snprintf(api_spec, sizeof(api_spec), "%s", spec);
    spec_current(seen_spec, sizeof(seen_spec));
    cur = parsed;
    if (spec[0] == '\0') {
        char now[SPEC_MAX];
        spec_current(now, sizeof(now));
        if (spec_parse(now, &cur) != 0)
            memset(&cur, 0, sizeof(cur));
    }
    counters_reset();
    pthread_mutex_unlock(&lock);
    return 0;
}

EXPORT unsigned long p11c_fault_calls(void)
{
    pthread_mutex_lock(&lock);
    unsigned long n = total;
    pthread_mutex_unlock(&lock);
    return n;
}

EXPORT unsigned long p11c_fault_fired(void)
{
    pthread_mutex_lock(&lock);
    unsigned long n = fired;
    pthread_mutex_unlock(&lock);
    return n;
}

EXPORT const char *p11c_fault_call_name(unsigned long i)
{
    const char *name = NULL;
    pthread_mutex_lock(&lock);
    if (i < total && i < CALL_LOG_MAX)
        name = func_names[call_log[i]];
    pthread_mutex_unlock(&lock);
    return name;
}
