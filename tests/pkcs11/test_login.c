/*
 * Logins: the asked PIN (p11c_module_set_pin_ask), kept for the token once it
 * worked and across fork, or not kept when switched off; PINs refused before
 * the token counts a try (blank, empty); a token on its last PIN try or with
 * its PIN locked (flags set by tests/fault's module) is not tried. Each case
 * that must not spend a try checks, through the fault module's call log,
 * that C_Login was never called.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlfcn.h>

#define ALICE TH_TOKEN_URI ";object=alice"

/* What the asker hands out, and how often it was asked. */
static const char *ask_pin = TU_USER_PIN;
static int asked;

static CK_RV ask(void *arg, const P11C_TOKEN *t, char **pin, P11C_ERR *err)
{
    (void)arg;
    (void)err;
    CU_ASSERT_STRING_EQUAL(p11c_token_label(t), TU_TOKEN_LABEL);
    asked++;
    if (ask_pin == NULL)
        return P11C_CKR_NO_PIN;
    *pin = strdup(ask_pin);
    return *pin != NULL ? CKR_OK : CKR_HOST_MEMORY;
}

static unsigned long (*fault_calls)(void);
static const char *(*fault_call_name)(unsigned long);
static int (*fault_set)(const char *);

/* A module through the fault module (counting only), the asker installed. */
static P11C_MODULE *module_asking(void)
{
    P11C_MODULE *m = NULL;
    P11C_ERR err = {0};
    if (p11c_module_load(P11C_FAULT_SO, &m, &err) != CKR_OK)
        return NULL;
    p11c_module_set_pin_ask(m, ask, NULL);
    void *h = dlopen(P11C_FAULT_SO, RTLD_NOW | RTLD_NOLOAD);
    if (h != NULL) {
        *(void **)&fault_calls = dlsym(h, "p11c_fault_calls");
        *(void **)&fault_call_name = dlsym(h, "p11c_fault_call_name");
        *(void **)&fault_set = dlsym(h, "p11c_fault_set");
        dlclose(h);
    }
    return m;
}

/* C_Login calls since the fault module's counters restarted. */
static int logins(void)
{
    int n = 0;
    if (fault_calls == NULL)
        return -1;
    for (unsigned long i = 0, c = fault_calls(); i < c; i++)
        if (strcmp(fault_call_name(i), "C_Login") == 0)
            n++;
    return n;
}

/* Asked once, kept: later logins (a forced one, a child after fork) ask
 * nothing more. */
static void test_asked_and_kept(void)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    asked = 0;
    ask_pin = TU_USER_PIN;
    CU_ASSERT_EQUAL_FATAL(p11c_key_load(m, ALICE ";type=private", P11C_WANT_PRIVATE, &k, &err),
                          CKR_OK);
    CU_ASSERT_EQUAL(asked, 1);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(asked, 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child logs in again, with the kept PIN. */
        int ok = th_sign_ok(k, &err) && asked == 1;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    p11c_key_free(k);
    p11c_module_free(m);
}

/* Not kept when switched off: the child of a fork asks again. */
static void test_not_kept(void)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p11c_module_set_pin_cache(m, 0);
    asked = 0;
    CU_ASSERT_EQUAL_FATAL(p11c_key_load(m, ALICE ";type=private", P11C_WANT_PRIVATE, &k, &err),
                          CKR_OK);
    CU_ASSERT_EQUAL(asked, 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = th_sign_ok(k, &err) && asked == 2;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    p11c_key_free(k);
    p11c_module_free(m);
}

/* A wrong asked PIN is not kept: the next login asks again. */
static void test_wrong_not_kept(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    asked = 0;
    ask_pin = "9999";
    CU_ASSERT_EQUAL(p11c_token_login(t, NULL, &err), CKR_PIN_INCORRECT);
    ask_pin = TU_USER_PIN;
    CU_ASSERT_EQUAL(p11c_token_login(t, NULL, &err), CKR_OK);
    CU_ASSERT_EQUAL(asked, 2);
    p11c_module_free(m);
}

/* Nothing anywhere: P11C_CKR_NO_PIN, naming the token. */
static void test_no_pin(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    asked = 0;
    ask_pin = NULL;
    fault_set("count");
    CU_ASSERT_EQUAL(p11c_token_login(t, NULL, &err), P11C_CKR_NO_PIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, TU_TOKEN_LABEL));
    CU_ASSERT_EQUAL(asked, 1);
    CU_ASSERT_EQUAL(logins(), 0);
    fault_set("");
    ask_pin = TU_USER_PIN;
    p11c_module_free(m);
}

/* PINs that cannot be right are refused without a try. */
static void test_implausible(void)
{
    static const char *const bad[] = {"", " 1234", "1234 ", "1234\n", "12\n34", "\t1234"};
    P11C_ERR err = {0};
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fault_set("count");
        ask_pin = bad[i];
        CU_ASSERT_EQUAL(p11c_token_login(t, NULL, &err), P11C_CKR_PIN_SOURCE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "no PIN try was spent"));
        CU_ASSERT_EQUAL(logins(), 0);
        /* given directly too */
        CU_ASSERT_EQUAL(p11c_token_login(t, bad[i], &err), P11C_CKR_PIN_SOURCE);
        CU_ASSERT_EQUAL(logins(), 0);
    }
    fault_set("");
    ask_pin = TU_USER_PIN;
    p11c_module_free(m);
}

/* The last PIN try is not spent unless allowed; a locked PIN is not tried. */
static void test_final_try(void)
{
    P11C_ERR err = {0};
    char buf[512];
    setenv("P11C_FAULT_TOKEN_FLAGS", "CKF_USER_PIN_FINAL_TRY", 1);
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    fault_set("count");
    CU_ASSERT_EQUAL(p11c_token_login(t, TU_USER_PIN, &err), P11C_CKR_PIN_FINAL_TRY);
    CU_ASSERT_EQUAL(logins(), 0);
    p11c_err_string(&err, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "one PIN try is left"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "pkcs11-pin-final-try"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "P11C_PIN_FINAL_TRY"));
    p11c_module_set_pin_final_try(m, 1);
    CU_ASSERT_EQUAL(p11c_token_login(t, TU_USER_PIN, &err), CKR_OK);
    CU_ASSERT_EQUAL(logins(), 1);
    p11c_module_free(m);

    setenv("P11C_FAULT_TOKEN_FLAGS", "CKF_USER_PIN_LOCKED", 1);
    m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    t = th_token(m);
    fault_set("count");
    CU_ASSERT_EQUAL(p11c_token_login(t, TU_USER_PIN, &err), CKR_PIN_LOCKED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "locked"));
    CU_ASSERT_EQUAL(logins(), 0);
    fault_set("");
    p11c_module_free(m);
    unsetenv("P11C_FAULT_TOKEN_FLAGS");
}

/* A protected authentication path (a pinpad reader) gets no PIN from us:
 * nothing is asked, nothing given, C_Login is called with a NULL PIN (which
 * SoftHSM2, having no pinpad, refuses). */
static void test_pinpad(void)
{
    P11C_ERR err = {0};
    setenv("P11C_FAULT_TOKEN_FLAGS", "CKF_PROTECTED_AUTHENTICATION_PATH", 1);
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    asked = 0;
    fault_set("count");
    CU_ASSERT_NOT_EQUAL(p11c_token_login(t, NULL, &err), CKR_OK);
    CU_ASSERT_EQUAL(asked, 0);
    CU_ASSERT_EQUAL(logins(), 1);
    fault_set("");
    p11c_module_free(m);
    unsetenv("P11C_FAULT_TOKEN_FLAGS");
}

/* ---- Per-use PIN (CKA_ALWAYS_AUTHENTICATE) ------------------------------------ */

static P11C_KEY *make_peruse(P11C_MODULE *m)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    P11C_TOKEN *t = th_token(m);
    if (t == NULL)
        return NULL;
    if (p11c_key_load(m, TH_TOKEN_URI ";object=carol", P11C_WANT_PRIVATE, &k, &err) == CKR_OK)
        return k;
    if (p11c_key_generate_per_use(t, 2048, "carol", (const uint8_t *)"\x03", 1, 1, &k, &err) !=
        CKR_OK) {
        char buf[512];
        fprintf(stderr, "carol: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
        p11c_key_free(k);
        return NULL;
    }
    return k;
}

/* EC and Edwards keys made with P11C_GEN_PER_USE want the PIN for every
 * signature too: one context-specific login per use, and a session key
 * (not persistent) the same. */
static void test_per_use_ec(void)
{
    static const struct {
        const char *curve;
        CK_MECHANISM_TYPE mech;
        int persistent;
    } kinds[] = {{"P-256", CKM_ECDSA, 0}, {"Ed25519", CKM_EDDSA, 0}, {"P-384", CKM_ECDSA, 1}};
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p11c_module_set_pin(m, TU_USER_PIN);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        P11C_ERR err = {0};
        P11C_KEY *k = NULL;
        uint8_t dgst[32] = {1, 2, 3}, sig[160];
        P11C_MECH mech = {.type = kinds[i].mech};
        CK_RV rv = p11c_key_generate_ec(t, kinds[i].curve, kinds[i].persistent ? "dora" : NULL,
                                        kinds[i].persistent ? (const uint8_t *)"\x0d" : NULL,
                                        kinds[i].persistent, kinds[i].persistent | P11C_GEN_PER_USE,
                                        &k, &err);
        CU_ASSERT_EQUAL_FATAL(rv, CKR_OK);
        unsigned long before = p11c_module_context_logins(m);
        for (int j = 0; j < 3; j++) {
            size_t siglen = sizeof(sig);
            CU_ASSERT_EQUAL(p11c_key_sign(k, &mech, dgst, sizeof(dgst), sig, &siglen, &err),
                            CKR_OK);
        }
        CU_ASSERT_EQUAL(p11c_module_context_logins(m) - before, 3);
        if (kinds[i].persistent)
            CU_ASSERT_EQUAL(p11c_key_destroy(k, &err), CKR_OK);
        p11c_key_free(k);
    }
    p11c_module_free(m);
}

static void *sign_many(void *arg)
{
    P11C_ERR err = {0};
    intptr_t ok = 1;
    for (int i = 0; i < 10; i++)
        ok &= th_sign_ok(arg, &err);
    return (void *)ok;
}

/* Every signature logs in for its own use: in threads, after fork, with the
 * PIN kept from an asked login. */
static void test_per_use(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p11c_module_set_pin(m, TU_USER_PIN);
    P11C_KEY *k = make_peruse(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    unsigned long before = p11c_module_context_logins(m);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_context_logins(m) - before, 2);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, sign_many, k);
    for (int i = 0; i < 4; i++) {
        void *ok = NULL;
        pthread_join(th[i], &ok);
        CU_ASSERT_TRUE(ok != NULL);
    }
    CU_ASSERT_EQUAL(p11c_module_context_logins(m) - before, 42);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = th_sign_ok(k, &err) && p11c_module_context_logins(m) - before == 43;
        p11c_key_free(k);
        p11c_module_free(m);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    p11c_key_free(k);
    p11c_module_free(m);

    /* Loaded again in a fresh module with no PIN but the asker's: asked
     * once, then kept for every per-use login. */
    m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    asked = 0;
    k = make_peruse(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(asked, 1);
    CU_ASSERT_EQUAL(p11c_module_context_logins(m), 3);
    p11c_key_free(k);
    p11c_module_free(m);

    /* Not kept: every use asks; a wrong PIN fails the use and the next
     * one works again. */
    m = module_asking();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    p11c_module_set_pin_cache(m, 0);
    asked = 0;
    k = make_peruse(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(asked, 3);
    ask_pin = "9999";
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, CKR_PIN_INCORRECT);
    ask_pin = TU_USER_PIN;
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

/* Initialisation arguments go to a module loaded by path only. */
static void test_init_args_need_path(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = NULL;
    CU_ASSERT_EQUAL(p11c_module_load_args("softhsm2", "configdir=x", &m, &err),
                    P11C_CKR_MODULE_LOAD);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err.what, "initialisation arguments need the module's file path"));
    CU_ASSERT_EQUAL(p11c_module_load_args(NULL, "configdir=x", &m, &err), P11C_CKR_MODULE_LOAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "p11-kit-proxy"));
    /* empty arguments are none */
    CU_ASSERT_EQUAL(p11c_module_load_args(tu_softhsm_module(), "", &m, &err), CKR_OK);
    p11c_module_free(m);
}

int main(void)
{
    CU_pSuite s;

    tu_token_make("pkcs11_login", 1);
    setenv("P11C_FAULT_MODULE", tu_softhsm_module(), 1);
    CU_initialize_registry();
    s = CU_add_suite("pkcs11_login", NULL, NULL);
    CU_add_test(s, "asked PIN kept, also after fork", test_asked_and_kept);
    CU_add_test(s, "PIN cache off: asked again", test_not_kept);
    CU_add_test(s, "wrong asked PIN not kept", test_wrong_not_kept);
    CU_add_test(s, "no PIN anywhere", test_no_pin);
    CU_add_test(s, "implausible PINs not tried", test_implausible);
    CU_add_test(s, "last PIN try, locked PIN", test_final_try);
    CU_add_test(s, "per-use PIN (CKA_ALWAYS_AUTHENTICATE)", test_per_use);
    CU_add_test(s, "per-use PIN on EC and Edwards keys", test_per_use_ec);
    CU_add_test(s, "protected authentication path: no PIN", test_pinpad);
    CU_add_test(s, "initialisation arguments need a module path", test_init_args_need_path);
    return tu_main();
}
