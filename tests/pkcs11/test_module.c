/* pkcs11/: names, modules, URIs, tokens, login, mechanisms, random, pool bound. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char errbuf[512];

#define ASSERT_RV(expr, want)                                                                      \
    do {                                                                                           \
        CK_RV rv_ = (expr);                                                                        \
        if (rv_ != (CK_RV)(want))                                                                  \
            fprintf(stderr, "\n%s:%d: %s, expected %s (%s)\n", __FILE__, __LINE__,                 \
                    p11c_rv_name(rv_), p11c_rv_name(want),                                         \
                    p11c_err_string(&err, errbuf, sizeof(errbuf)));                                \
        CU_ASSERT_EQUAL(rv_, (CK_RV)(want));                                                       \
    } while (0)

static void test_rv_names(void)
{
    char buf[128];
    P11C_ERR err = {0};
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(CKR_OK), "CKR_OK");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
                           "CKR_UNWRAPPING_KEY_HANDLE_INVALID");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(P11C_CKR_NO_KEY), "P11C_NO_KEY");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(P11C_CKR_SESSION_LIMIT), "P11C_SESSION_LIMIT");
    CU_ASSERT_STRING_EQUAL(p11c_rv_name(0x12345UL), "CKR_0x00012345");
    /* every P11C value has a name of its own */
    for (CK_RV rv = P11C_CKR_URI_MALFORMED; rv <= P11C_CKR_SESSION_LIMIT; rv++)
        CU_ASSERT_EQUAL(strncmp(p11c_rv_name(rv), "P11C_", 5), 0);

    err.rv = CKR_PIN_EXPIRED;
    err.func = "C_Sign";
    snprintf(err.what, sizeof(err.what), "token 'ci', key 'alice'");
    CU_ASSERT_STRING_EQUAL(p11c_err_string(&err, buf, sizeof(buf)),
                           "C_Sign on token 'ci', key 'alice': CKR_PIN_EXPIRED");
    err.what[0] = '\0';
    CU_ASSERT_STRING_EQUAL(p11c_err_string(&err, buf, sizeof(buf)), "C_Sign: CKR_PIN_EXPIRED");
    CU_ASSERT_STRING_EQUAL(p11c_err_string(NULL, buf, sizeof(buf)), "no error information");
}

static void test_module_by_path(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = NULL;
    P11C_TOKEN *t = NULL;
    ASSERT_RV(p11c_module_load(tu_softhsm_module(), &m, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    unsigned long before = p11c_module_call_count(m);
    CU_ASSERT(before >= 1); /* C_Initialize */
    ASSERT_RV(p11c_token_find(m, TH_TOKEN_URI, &t, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(p11c_token_label(t), TU_TOKEN_LABEL);
    CU_ASSERT(p11c_module_call_count(m) > before);
    p11c_module_free(m);
    p11c_module_free(NULL);
    CU_ASSERT_EQUAL(p11c_module_call_count(NULL), 0);
}

static void test_module_by_name(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = NULL;
    P11C_TOKEN *t = NULL;
    ASSERT_RV(p11c_module_load("softhsm2", &m, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    ASSERT_RV(p11c_token_find(m, TH_TOKEN_URI, &t, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL(t);
    p11c_module_free(m);
}

static void test_module_proxy(void)
{
    const char *specs[] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        P11C_ERR err = {0};
        P11C_MODULE *m = NULL;
        P11C_TOKEN *t = NULL;
        P11C_KEY *k = NULL;
        ASSERT_RV(p11c_module_load(specs[i], &m, &err), CKR_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        /* SoftHSM2 is registered with p11-kit; its SOFTHSM2_CONF points at our token. */
        ASSERT_RV(p11c_token_find(m, TH_TOKEN_URI, &t, &err), CKR_OK);
        CU_ASSERT_PTR_NOT_NULL(t);
        ASSERT_RV(
            p11c_key_load(m, TH_TOKEN_URI ";object=alice?pin-value=1234", P11C_WANT_ANY, &k, &err),
            CKR_OK);
        CU_ASSERT(th_sign_ok(k, &err));
        p11c_key_free(k);
        p11c_module_free(m);
    }
}

static void test_module_bad(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = (P11C_MODULE *)&err;
    ASSERT_RV(p11c_module_load("/nonexistent/libnothing.so", &m, &err), P11C_CKR_MODULE_LOAD);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_STRING_EQUAL(err.func, "p11_kit_module_load");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "/nonexistent/libnothing.so"));

    memset(&err, 0, sizeof(err));
    ASSERT_RV(p11c_module_load("no-such-module", &m, &err), P11C_CKR_MODULE_LOAD);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "'no-such-module'"));

    /* a file that is no PKCS#11 module */
    ASSERT_RV(p11c_module_load("/etc/hostname", &m, &err), P11C_CKR_MODULE_LOAD);
    CU_ASSERT_PTR_NULL(m);
    ASSERT_RV(p11c_module_load(NULL, NULL, &err), CKR_ARGUMENTS_BAD);
    CU_ASSERT_EQUAL(p11c_module_set_pin(NULL, "x"), CKR_ARGUMENTS_BAD);
}

static void test_uri_errors(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = NULL;
    P11C_KEY *k = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);

    ASSERT_RV(p11c_token_find(m, "pkcs11:id=%zz", &t, &err), P11C_CKR_URI_MALFORMED);
    CU_ASSERT_STRING_EQUAL(err.func, "p11_kit_uri_parse");
    ASSERT_RV(p11c_token_find(m, "http://x", &t, &err), P11C_CKR_URI_MALFORMED);
    ASSERT_RV(p11c_key_load(m, "pkcs11:id=%zz", P11C_WANT_ANY, &k, &err), P11C_CKR_URI_MALFORMED);
    ASSERT_RV(p11c_key_load(m, "http://x", P11C_WANT_ANY, &k, &err), P11C_CKR_URI_MALFORMED);
    CU_ASSERT_PTR_NULL(k);
    ASSERT_RV(p11c_key_load(m, "file:///etc/passwd", P11C_WANT_ANY, &k, &err),
              P11C_CKR_URI_MALFORMED);
    /* the message never repeats the URI: it may carry a PIN */
    ASSERT_RV(p11c_key_load(m, "nonsense?pin-value=secret77", P11C_WANT_ANY, &k, &err),
              P11C_CKR_URI_MALFORMED);
    CU_ASSERT_PTR_NULL(strstr(err.what, "secret77"));
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=alice;type=cert", P11C_WANT_ANY, &k, &err),
              P11C_CKR_URI_UNSUPPORTED);
    ASSERT_RV(p11c_key_enum(m, "pkcs11:%%", NULL, NULL, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);
}

static void test_token_find(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = NULL, *t2 = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);

    ASSERT_RV(p11c_token_find(m, TH_TOKEN_URI, &t, &err), CKR_OK);
    ASSERT_RV(
        p11c_token_find(m, "pkcs11:token=p11chat-test;manufacturer=SoftHSM%20project", &t2, &err),
        CKR_OK);
    CU_ASSERT_PTR_EQUAL(t, t2); /* one object per token */
    /* no token attribute: the one initialised token (the empty slot does not count) */
    ASSERT_RV(p11c_token_find(m, "pkcs11:", &t2, &err), CKR_OK);
    CU_ASSERT_PTR_EQUAL(t, t2);
    ASSERT_RV(p11c_token_find(m, NULL, &t2, &err), CKR_OK);
    CU_ASSERT_PTR_EQUAL(t, t2);

    ASSERT_RV(p11c_token_find(m, "pkcs11:token=no-such-token", &t2, &err), P11C_CKR_NO_TOKEN);
    CU_ASSERT_PTR_NULL(t2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "token 'no-such-token'"));
    ASSERT_RV(p11c_token_find(m, "pkcs11:token=p11chat-test;model=nothing", &t2, &err),
              P11C_CKR_NO_TOKEN);
    ASSERT_RV(p11c_token_find(m, "pkcs11:slot-id=987654", &t2, &err), P11C_CKR_NO_TOKEN);
    ASSERT_RV(p11c_token_find(NULL, TH_TOKEN_URI, &t2, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);
}

static void test_login(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    ASSERT_RV(p11c_token_login(t, NULL, &err), P11C_CKR_NO_PIN);
    ASSERT_RV(p11c_token_login(t, "0000", &err), CKR_PIN_INCORRECT);
    CU_ASSERT_STRING_EQUAL(err.func, "C_Login");
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test'");
    ASSERT_RV(p11c_token_login(t, TU_USER_PIN, &err), CKR_OK);
    /* once per token: no further C_Login */
    unsigned long calls = p11c_module_call_count(m);
    ASSERT_RV(p11c_token_login(t, TU_USER_PIN, &err), CKR_OK);
    ASSERT_RV(p11c_token_login(t, NULL, &err), CKR_OK);
    CU_ASSERT_EQUAL(p11c_module_call_count(m), calls);
    ASSERT_RV(p11c_token_login(NULL, NULL, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);

    /* the module PIN, then forgotten */
    m = th_module(1);
    t = th_token(m);
    CU_ASSERT_EQUAL(p11c_module_set_pin(m, NULL), CKR_OK);
    ASSERT_RV(p11c_token_login(t, NULL, &err), P11C_CKR_NO_PIN);
    CU_ASSERT_EQUAL(p11c_module_set_pin(m, TU_USER_PIN), CKR_OK);
    ASSERT_RV(p11c_token_login(t, NULL, &err), CKR_OK);
    p11c_module_free(m);
}

static void test_mechanisms(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = th_token(m);
    CK_MECHANISM_INFO info = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_PSS, CKF_SIGN, &info, &err), CKR_OK);
    CU_ASSERT(info.ulMinKeySize <= 2048 && info.ulMaxKeySize >= 4096);
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_OAEP, CKF_DECRYPT, NULL, &err), CKR_OK);
    ASSERT_RV(p11c_token_mechanism(t, CKM_SHA256_RSA_PKCS_PSS, CKF_SIGN, NULL, &err), CKR_OK);
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS, CKF_SIGN | CKF_DECRYPT, NULL, &err), CKR_OK);
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, NULL, &err),
              CKR_OK);
    /* offered, but not for signing */
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_OAEP, CKF_SIGN, NULL, &err),
              CKR_MECHANISM_INVALID);
    CU_ASSERT_STRING_EQUAL(err.func, "C_GetMechanismInfo");
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', CKM_RSA_PKCS_OAEP");
    /* not offered at all */
    ASSERT_RV(p11c_token_mechanism(t, CKM_VENDOR_DEFINED | 0x1234, 0, NULL, &err),
              CKR_MECHANISM_INVALID);
    CU_ASSERT_STRING_EQUAL(err.func, "C_GetMechanismList");
    /* cached: asking again calls nothing */
    unsigned long calls = p11c_module_call_count(m);
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_PSS, CKF_SIGN, NULL, &err), CKR_OK);
    ASSERT_RV(p11c_token_mechanism(t, CKM_RSA_PKCS_OAEP, CKF_SIGN, NULL, &err),
              CKR_MECHANISM_INVALID);
    CU_ASSERT_EQUAL(p11c_module_call_count(m), calls);
    ASSERT_RV(p11c_token_mechanism(NULL, CKM_RSA_PKCS, 0, NULL, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);
}

static void test_random(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = th_token(m);
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    ASSERT_RV(p11c_token_random(t, a, sizeof(a), &err), CKR_OK);
    ASSERT_RV(p11c_token_random(t, b, sizeof(b), &err), CKR_OK);
    CU_ASSERT(memcmp(a, b, sizeof(a)) != 0);
    CU_ASSERT(memcmp(a, zero, sizeof(a)) != 0);
    ASSERT_RV(p11c_token_random(t, a, 0, &err), CKR_OK);
    ASSERT_RV(p11c_token_random(t, NULL, 8, &err), CKR_ARGUMENTS_BAD);
    ASSERT_RV(p11c_token_random(NULL, a, 8, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);
}

static void test_max_sessions(void)
{
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* SoftHSM2 says "effectively infinite": the default bound */
    CU_ASSERT_EQUAL(p11c_token_max_sessions(t), 64);
    p11c_token_set_max_sessions(t, 1);
    CU_ASSERT_EQUAL(p11c_token_max_sessions(t), 1);
    p11c_token_set_max_sessions(t, 0);
    CU_ASSERT_EQUAL(p11c_token_max_sessions(t), 64);
    CU_ASSERT_EQUAL(p11c_token_max_sessions(NULL), 0);
    p11c_module_free(m);
}

/* Last: a second initialised token makes "pkcs11:" ambiguous. */
static void test_token_ambiguous(void)
{
    P11C_ERR err = {0};
    char *out = NULL;
    int st = th_sh(&out, "softhsm2-util --init-token --free --label second --so-pin 12345678 "
                         "--pin 1234");
    if (st != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CU_ASSERT_EQUAL_FATAL(st, 0);
    P11C_MODULE *m = th_module(0);
    P11C_TOKEN *t = NULL;
    ASSERT_RV(p11c_token_find(m, "pkcs11:", &t, &err), P11C_CKR_TOKEN_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(t);
    ASSERT_RV(p11c_token_find(m, "pkcs11:token=second", &t, &err), CKR_OK);
    CU_ASSERT_STRING_EQUAL(p11c_token_label(t), "second");
    p11c_module_free(m);
}

int main(void)
{
    tu_token_make("pkcs11_module", 1);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_module", NULL, NULL);
    CU_add_test(s, "rv names", test_rv_names);
    CU_add_test(s, "module by path", test_module_by_path);
    CU_add_test(s, "module by p11-kit name", test_module_by_name);
    CU_add_test(s, "module: p11-kit proxy", test_module_proxy);
    CU_add_test(s, "module: bad", test_module_bad);
    CU_add_test(s, "URI errors", test_uri_errors);
    CU_add_test(s, "token find", test_token_find);
    CU_add_test(s, "login", test_login);
    CU_add_test(s, "mechanisms", test_mechanisms);
    CU_add_test(s, "random", test_random);
    CU_add_test(s, "max sessions", test_max_sessions);
    CU_add_test(s, "token ambiguous", test_token_ambiguous);
    return tu_main();
}
