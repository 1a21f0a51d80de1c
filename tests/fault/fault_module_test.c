/*
 * The fault module itself: it forwards to SoftHSM2, fails exactly the call
 * asked for with exactly the CKR asked for, makes the token's state match
 * (logged out, session closed), and clears.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "fault.h"

static void *lib;
static CK_FUNCTION_LIST *f;
static CK_SLOT_ID slot;
static int (*fault_set)(const char *);
static unsigned long (*fault_calls)(void);
static unsigned long (*fault_fired)(void);
static const char *(*fault_call_name)(unsigned long);
static CK_RV (*fault_rv)(const char *);

static void *sym(const char *name)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, "missing symbol %s\n", name);
        exit(2);
    }
    return p;
}

static int suite_init(void)
{
    tu_token_make("fault_module", 1);
    lib = dlopen(P11C_FAULT_SO, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList get;
    *(void **)&get = sym("C_GetFunctionList");
    *(void **)&fault_set = sym("p11c_fault_set");
    *(void **)&fault_calls = sym("p11c_fault_calls");
    *(void **)&fault_fired = sym("p11c_fault_fired");
    *(void **)&fault_call_name = sym("p11c_fault_call_name");
    *(void **)&fault_rv = sym("p11c_fault_rv");
    if (get(&f) != CKR_OK)
        return 1;
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    if (f->C_Initialize(&args) != CKR_OK)
        return 1;
    CK_SLOT_ID slots[8];
    unsigned long n = 8;
    if (f->C_GetSlotList(1, slots, &n) != CKR_OK || n < 1)
        return 1;
    slot = slots[0];
    return 0;
}

static int suite_clean(void)
{
    if (f != NULL)
        f->C_Finalize(NULL);
    /* The module stays mapped: SoftHSM2 registers exit handlers. */
    return 0;
}

static CK_SESSION_HANDLE open_login(void)
{
    CK_SESSION_HANDLE h = 0;
    CU_ASSERT_EQUAL_FATAL(
        f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
    CK_RV rv = f->C_Login(h, CKU_USER, (unsigned char *)TU_USER_PIN, 4);
    CU_ASSERT_FATAL(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
    return h;
}

static CK_OBJECT_HANDLE find_private(CK_SESSION_HANDLE h, const char *label)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE o = 0;
    unsigned long got = 0;
    CU_ASSERT_EQUAL_FATAL(f->C_FindObjectsInit(h, t, 2), CKR_OK);
    CU_ASSERT_EQUAL_FATAL(f->C_FindObjects(h, &o, 1, &got), CKR_OK);
    CU_ASSERT_EQUAL_FATAL(f->C_FindObjectsFinal(h), CKR_OK);
    CU_ASSERT_EQUAL_FATAL(got, 1);
    return o;
}

static CK_RV sign_once(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    unsigned char sig[512];
    unsigned long siglen = sizeof(sig);
    CK_RV rv = f->C_SignInit(h, &m, key);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_Sign(h, (unsigned char *)"hello", 5, sig, &siglen);
    if (rv == CKR_OK && siglen != 256)
        return CKR_GENERAL_ERROR;
    return rv;
}

static void test_forwarding(void)
{
    CU_ASSERT_EQUAL(fault_set("count"), 0);
    CK_SESSION_HANDLE h = open_login();
    CK_OBJECT_HANDLE key = find_private(h, "alice");
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    /* OpenSession, Login, FindObjectsInit, FindObjects, FindObjectsFinal, SignInit, Sign */
    CU_ASSERT_EQUAL(fault_calls(), 7);
    CU_ASSERT_EQUAL(fault_fired(), 0);
    CU_ASSERT_STRING_EQUAL(fault_call_name(0), "C_OpenSession");
    CU_ASSERT_STRING_EQUAL(fault_call_name(5), "C_SignInit");
    CU_ASSERT_STRING_EQUAL(fault_call_name(6), "C_Sign");
    CU_ASSERT_PTR_NULL(fault_call_name(7));
    CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
    fault_set("");
}

static void test_nth_call_of_function(void)
{
    CK_SESSION_HANDLE h = open_login();
    CK_OBJECT_HANDLE key = find_private(h, "alice");
    CU_ASSERT_EQUAL(fault_set("C_Sign:2:CKR_DEVICE_ERROR"), 0);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_DEVICE_ERROR);
    /* The real C_Sign was not made: SoftHSM2 still has the operation open. */
    f->C_SignFinal(h, NULL, NULL);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(fault_fired(), 1);
    CU_ASSERT_EQUAL(fault_set(""), 0);
    CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
}

static void test_sticky(void)
{
    CK_SESSION_HANDLE h = open_login();
    CK_OBJECT_HANDLE key = find_private(h, "bob");
    CU_ASSERT_EQUAL(fault_set("C_SignInit:2+:CKR_TOKEN_NOT_PRESENT"), 0);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_TOKEN_NOT_PRESENT);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_TOKEN_NOT_PRESENT);
    CU_ASSERT_EQUAL(fault_fired(), 2);
    fault_set("");
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
}

static void test_nth_call_overall(void)
{
    CK_SESSION_HANDLE h = open_login();
    CU_ASSERT_EQUAL(fault_set("*:3:CKR_HOST_MEMORY"), 0);
    CK_TOKEN_INFO ti;
    CK_SESSION_INFO si;
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_OK);
    CU_ASSERT_EQUAL(f->C_GetSessionInfo(h, &si), CKR_OK);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_HOST_MEMORY);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_OK);
    CU_ASSERT_EQUAL(fault_calls(), 4);
    fault_set("");
    CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
}

static void test_logout_is_real(void)
{
    CK_SESSION_HANDLE h = open_login();
    CK_OBJECT_HANDLE key = find_private(h, "alice");
    CK_SESSION_INFO si;
    CU_ASSERT_EQUAL(fault_set("C_Sign:1:CKR_USER_NOT_LOGGED_IN"), 0);
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_USER_NOT_LOGGED_IN);
    fault_set("");
    CU_ASSERT_EQUAL(f->C_GetSessionInfo(h, &si), CKR_OK);
    CU_ASSERT_EQUAL(si.state, CKS_RW_PUBLIC_SESSION);
    /* Logged out for real: the private key cannot be used until login. */
    CU_ASSERT_NOT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(f->C_Login(h, CKU_USER, (unsigned char *)TU_USER_PIN, 4), CKR_OK);
    key = find_private(h, "alice");
    CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
    CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
}

static void test_session_closed_is_real(void)
{
    static const char *const rvs[] = {"CKR_SESSION_CLOSED", "CKR_SESSION_HANDLE_INVALID"};
    for (size_t i = 0; i < 2; i++) {
        char spec[64];
        CK_SESSION_HANDLE h = open_login();
        CK_OBJECT_HANDLE key = find_private(h, "alice");
        snprintf(spec, sizeof(spec), "C_SignInit:1:%s", rvs[i]);
        CU_ASSERT_EQUAL(fault_set(spec), 0);
        CU_ASSERT_EQUAL(sign_once(h, key), fault_rv(rvs[i]));
        fault_set("");
        CK_SESSION_INFO si;
        CU_ASSERT_EQUAL(f->C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
        /* Another session still works: the token itself is fine. */
        h = open_login();
        key = find_private(h, "alice");
        CU_ASSERT_EQUAL(sign_once(h, key), CKR_OK);
        CU_ASSERT_EQUAL(f->C_CloseSession(h), CKR_OK);
    }
}

static void test_control_file_and_log(void)
{
    char file[256], logf[256];
    snprintf(file, sizeof(file), "/tmp/p11c_fault_ctl.%ld", (long)getpid());
    snprintf(logf, sizeof(logf), "/tmp/p11c_fault_log.%ld", (long)getpid());
    setenv("P11C_FAULT_FILE", file, 1);
    setenv("P11C_FAULT_LOG", logf, 1);
    unlink(logf);

    FILE *fp = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs("C_GetTokenInfo:1:CKR_PIN_EXPIRED\n", fp);
    fclose(fp);
    CK_TOKEN_INFO ti;
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_PIN_EXPIRED);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_OK);

    /* Writing the same kind of fault again restarts the count. */
    fp = fopen(file, "w");
    fputs("C_GetTokenInfo:2:CKR_DEVICE_REMOVED", fp);
    fclose(fp);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_OK);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_DEVICE_REMOVED);

    /* An emptied file clears the fault. */
    fp = fopen(file, "w");
    fclose(fp);
    CU_ASSERT_EQUAL(f->C_GetTokenInfo(slot, &ti), CKR_OK);

    char *log = NULL;
    CU_ASSERT_EQUAL(tu_run(&log, "cat %s", logf), 0);
    CU_ASSERT_STRING_EQUAL(log, "C_GetTokenInfo\nC_GetTokenInfo\nC_GetTokenInfo\nC_GetTokenInfo\n"
                                "C_GetTokenInfo\n");
    free(log);
    unsetenv("P11C_FAULT_FILE");
    unsetenv("P11C_FAULT_LOG");
    unlink(file);
    unlink(logf);
}

static void test_bad_specs(void)
{
    static const char *const bad[] = {
        "C_Sign",
        "C_Sign:1",
        "C_Sign:0:CKR_DEVICE_ERROR",
        "C_Nope:1:CKR_DEVICE_ERROR",
        "C_Sign:x:CKR_DEVICE_ERROR",
        "C_Sign:1:CKR_NOPE",
        "C_Sign:1:CKR_OK",
        "C_Sign:1-:CKR_DEVICE_ERROR",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(fault_set(bad[i]), -1);
    CU_ASSERT_EQUAL(fault_set("C_Sign:1:0x30"), 0);
    CU_ASSERT_EQUAL(fault_rv("CKR_SESSION_CLOSED"), CKR_SESSION_CLOSED);
    CU_ASSERT_EQUAL(fault_rv("CKR_NOPE"), (CK_RV)-1);
    fault_set("");
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("fault_module", suite_init, suite_clean);
    CU_add_test(s, "forwarding and counting", test_forwarding);
    CU_add_test(s, "Nth call of a function", test_nth_call_of_function);
    CU_add_test(s, "sticky fault", test_sticky);
    CU_add_test(s, "Nth call overall", test_nth_call_overall);
    CU_add_test(s, "USER_NOT_LOGGED_IN logs out", test_logout_is_real);
    CU_add_test(s, "SESSION_CLOSED closes", test_session_closed_is_real);
    CU_add_test(s, "control file and log", test_control_file_and_log);
    CU_add_test(s, "bad specs", test_bad_specs);
    return tu_main();
}
