/*
 * Fault sweeps: every PKCS#11 call made during a provider sign, a provider
 * decrypt, a key load through OSSL_STORE and a whole P11C handshake with
 * token keys (RSA in suite 0x01, EC in suite 0x02) is failed in turn with each CKR below. Each run
 * must end in a clear error (the CKR's name in OpenSSL's error queue) or in a correct result where
 * recovery is possible; and once the fault is cleared, the same operation must succeed. Crashes,
 * hangs and leaks are caught by the test harness (sanitizers, ctest's timeout).
 *
 * With P11C_SWEEP=fixed-key (tests/fault/valgrind.sh sets it) the
 * handshakes share one software session key made beforehand: its generation
 * calls no PKCS#11 function, and under memcheck a fresh RSA key for each of
 * the hundred handshakes takes more than half an hour, the rest a minute.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "p11chat.h"

static const char *const ckrs[] = {
    "CKR_DEVICE_ERROR",      "CKR_DEVICE_REMOVED",
    "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID",
    "CKR_SESSION_CLOSED",    "CKR_USER_NOT_LOGGED_IN",
    "CKR_PIN_EXPIRED",       "CKR_HOST_MEMORY",
};
#define NCKR (sizeof(ckrs) / sizeof(ckrs[0]))

static int (*fault_set)(const char *);
static unsigned long (*fault_calls)(void);
static unsigned long (*fault_fired)(void);
static const char *(*fault_call_name)(unsigned long);

static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *prov_default, *prov_p11;
static EVP_PKEY *alice, *bob, *alice_pub;
static EVP_PKEY *alice_ec, *bob_ec; /* P-256 and P-384, made in the token by pkcs11-tool */
static unsigned long injected, recovered, clear_errors;
static EVP_PKEY *fixed_s; /* P11C_SWEEP=fixed-key: every handshake's session key */
static const char *current_ckr;

#define URI_ALICE "pkcs11:token=p11chat-test;object=alice"
#define URI_BOB   "pkcs11:token=p11chat-test;object=bob"

/* ---- the operations: 1 on a correct result, 0 on failure ---------------- */

static int op_load(void)
{
    EVP_PKEY *pk = tu_store_load(libctx, URI_ALICE ";type=private", 0);
    int ok = pk != NULL && EVP_PKEY_get_bits(pk) == 2048;
    EVP_PKEY_free(pk);
    return ok;
}

static int op_sign(void)
{
    static const unsigned char msg[] = "the message";
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, alice, NULL) != 1 ||
        EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) != 1)
        goto end;
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    /* Verified in software with the public half only. */
    ok = md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", libctx, "provider=default", alice_pub, NULL) ==
             1 &&
         EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
end:
    EVP_MD_CTX_free(md);
    return ok;
}

static int op_decrypt(void)
{
    static const unsigned char secret[] = "sixteen byte key";
    unsigned char ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    int ok = 0;
    EVP_PKEY_CTX *enc = EVP_PKEY_CTX_new_from_pkey(libctx, alice_pub, "provider=default");
    EVP_PKEY_CTX *dec = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
    if (enc == NULL || dec == NULL || EVP_PKEY_encrypt_init(enc) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(enc, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_encrypt(enc, ct, &ctlen, secret, sizeof(secret)) != 1)
        goto end;
    if (EVP_PKEY_decrypt_init(dec) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(dec, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_decrypt(dec, pt, &ptlen, ct, ctlen) != 1)
        goto end;
    ok = ptlen == sizeof(secret) && memcmp(pt, secret, ptlen) == 0;
end:
    EVP_PKEY_CTX_free(enc);
    EVP_PKEY_CTX_free(dec);
    return ok;
}

static p11c_err pump(P11C_SESSION *from, P11C_SESSION *to)
{
    uint8_t *m;
    size_t n;
    p11c_err e = P11C_OK;
    while (e == P11C_OK && p11c_session_pop_output(from, &m, &n)) {
        e = p11c_session_recv(to, m, n);
        OPENSSL_free(m);
    }
    return e;
}

static EVP_PKEY *fixed_session_key(void *arg)
{
    (void)arg;
    return EVP_PKEY_up_ref(fixed_s) ? fixed_s : NULL;
}

/* A whole handshake, both long-term keys (ka, kb) in the token, then one message. */
static int handshake_with(EVP_PKEY *ka, EVP_PKEY *kb, int suite, const char *sk_propq)
{
    P11C_CONFIG ca, cb;
    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    ca.role = P11C_INITIATOR;
    ca.libctx = libctx;
    ca.key = ka;
    ca.identity = "Alice";
    ca.suite = suite;
    ca.session_key_propq = sk_propq;
    if (fixed_s != NULL && suite == P11C_SUITE_1)
        ca.session_key_fn = fixed_session_key;
    cb = ca;
    cb.role = P11C_RESPONDER;
    cb.key = kb;
    cb.identity = "Bob";
    p11c_err err;
    int ok = 0;
    P11C_SESSION *a = p11c_session_new(&ca, &err), *b = p11c_session_new(&cb, &err);
    if (a == NULL || b == NULL || p11c_session_start(a) != P11C_OK || pump(a, b) != P11C_OK ||
        pump(b, a) != P11C_OK || pump(a, b) != P11C_OK || pump(b, a) != P11C_OK)
        goto end;
    if (!p11c_session_established(a) || !p11c_session_established(b) ||
        p11c_session_send_data(a, (const uint8_t *)"hi", 2) != P11C_OK || pump(a, b) != P11C_OK)
        goto end;
    P11C_EVENT ev;
    while (p11c_session_next_event(b, &ev)) {
        if (ev.type == P11C_EV_DATA && ev.len == 2 && memcmp(ev.data, "hi", 2) == 0)
            ok = 1;
        p11c_event_clear(&ev);
    }
end:
    if (!ok && a != NULL && b != NULL && p11c_session_error(a) == P11C_OK &&
        p11c_session_error(b) == P11C_OK)
        ok = -1; /* failed without saying why */
    p11c_session_free(a);
    p11c_session_free(b);
    return ok == 1;
}

static int op_handshake(void)
{
    return handshake_with(alice, bob, P11C_SUITE_1, NULL);
}

/* Suite 0x02: P-256 and P-384 token keys (ECDSA in the token; S and E in software). */
static int op_handshake_ec(void)
{
    return handshake_with(alice_ec, bob_ec, P11C_SUITE_2, NULL);
}

/* The same with Alice's S made in the token: its generation, ECDH and destruction too. */
static int op_handshake_ec_token_s(void)
{
    return handshake_with(alice_ec, bob_ec, P11C_SUITE_2, "provider=p11chat");
}

/* Everything OpenSSL's error queue holds (reasons and added text); empties it. */
static void queue_text(char *buf, size_t len)
{
    unsigned long e;
    const char *data;
    int flags;
    size_t used = 0;
    buf[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        int n = snprintf(buf + used, len - used, "%s: %s\n", reason ? reason : "?",
                         (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        if (n > 0 && (size_t)n < len - used)
            used += (size_t)n;
    }
}

/*
 * A clear error names the CKR. A token reported absent while the slots are
 * listed (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT) is also clearly "no
 * such token", and a token session key lost to a logout is "gone".
 */
static int clear_error(const char *text, const char *ckr, const char *call)
{
    if (strstr(text, ckr) != NULL)
        return 1;
    /* A token that logged us out took its session objects with it: a session
     * key S made in the token earlier in the handshake is then reported gone,
     * which is the cause the user can act on. */
    if (strcmp(ckr, "CKR_USER_NOT_LOGGED_IN") == 0 && strstr(text, "P11C_NO_KEY") != NULL &&
        strstr(text, "the session key is gone") != NULL)
        return 1;
    /* A token gone away (the module is then re-opened to recover) took them
     * too. */
    if ((strcmp(ckr, "CKR_DEVICE_ERROR") == 0 || strcmp(ckr, "CKR_TOKEN_NOT_PRESENT") == 0) &&
        strstr(text, "P11C_NO_KEY") != NULL && strstr(text, "the session key is gone") != NULL)
        return 1;
    return (strcmp(ckr, "CKR_DEVICE_REMOVED") == 0 || strcmp(ckr, "CKR_TOKEN_NOT_PRESENT") == 0) &&
           (strcmp(call, "C_GetSlotInfo") == 0 || strcmp(call, "C_GetTokenInfo") == 0) &&
           strstr(text, "P11C_NO_TOKEN") != NULL;
}

static void sweep(const char *name, int (*op)(void))
{
    char spec[128];
    /* Warm up (caches filled), then count the calls one operation makes. */
    ERR_clear_error();
    CU_ASSERT_FATAL(op() == 1);
    CU_ASSERT_EQUAL(fault_set("count"), 0);
    CU_ASSERT_FATAL(op() == 1);
    unsigned long n = fault_calls();
    const char *names[256];
    CU_ASSERT_FATAL(n > 0 && n < 256);
    fprintf(stderr, "\n  %s: %lu PKCS#11 calls:", name, n);
    for (unsigned long i = 0; i < n; i++) {
        names[i] = fault_call_name(i);
        fprintf(stderr, " %s", names[i]);
    }
    fprintf(stderr, "\n");

    for (unsigned long r = 0; r < n * NCKR; r++) {
        unsigned long i = r / NCKR + 1; /* every call with every CKR */
        size_t c = r % NCKR;
        current_ckr = ckrs[c];
        snprintf(spec, sizeof(spec), "*:%lu:%s", i, ckrs[c]);
        CU_ASSERT_EQUAL_FATAL(fault_set(spec), 0);
        ERR_clear_error();
        int ok = op();
        unsigned long fired = fault_fired();
        injected += fired;
        if (ok) {
            recovered += fired;
        } else {
            char text[4096];
            queue_text(text, sizeof(text));
            int named = clear_error(text, ckrs[c], names[i - 1]);
            if (!named)
                fprintf(stderr, "  %s: call %lu (%s) failed with %s: no clear error:\n%s", name, i,
                        names[i - 1], ckrs[c], text);
            CU_ASSERT(named);
            clear_errors += named;
        }
        ERR_clear_error();
        CU_ASSERT_EQUAL(fault_set(""), 0);
        int again = op();
        if (!again)
            fprintf(stderr, "  %s: after %s at call %lu (%s) the next operation failed\n", name,
                    ckrs[c], i, names[i - 1]);
        CU_ASSERT(again);
        ERR_clear_error();
    }
}

static void test_sign(void)
{
    sweep("provider sign", op_sign);
}

static void test_decrypt(void)
{
    sweep("provider decrypt", op_decrypt);
}

static void test_load(void)
{
    sweep("key load", op_load);
}

static void test_handshake(void)
{
    sweep("handshake", op_handshake);
}

static void test_handshake_ec(void)
{
    if (alice_ec == NULL || bob_ec == NULL) {
        fprintf(stderr, "\n  skipped: no EC keys in the token (pkcs11-tool could not make them)\n");
        CU_FAIL("EC keys missing");
        return;
    }
    sweep("suite 0x02 handshake", op_handshake_ec);
    sweep("suite 0x02 handshake, S in the token", op_handshake_ec_token_s);
}

/* An EC key pair made in the test token with pkcs11-tool (through SoftHSM2
 * itself, not the fault module), loaded through the provider. */
static EVP_PKEY *ec_key(const char *label, const char *id, const char *curve)
{
    char cmd[2048], uri[256];
    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module '%s' --token-label p11chat-test --login --pin %s --keypairgen "
             "--key-type EC:%s --label %s --id %s >/dev/null 2>&1",
             tu_softhsm_module(), TU_USER_PIN, curve, label, id);
    if (system(cmd) != 0)
        return NULL;
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test;object=%s;type=private", label);
    return tu_store_load(libctx, uri, 0);
}

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, "missing %s\n", name);
        exit(2);
    }
    return p;
}

static int suite_init(void)
{
    const char *mode = getenv("P11C_SWEEP");
    tu_token_make("fault_sweep", 1);
    setenv("P11CHAT_PKCS11_MODULE", P11C_FAULT_SO, 1);
    setenv("P11CHAT_PKCS11_PIN", TU_USER_PIN, 1);
    void *lib = dlopen(P11C_FAULT_SO, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return 1;
    *(void **)&fault_set = sym(lib, "p11c_fault_set");
    *(void **)&fault_calls = sym(lib, "p11c_fault_calls");
    *(void **)&fault_fired = sym(lib, "p11c_fault_fired");
    *(void **)&fault_call_name = sym(lib, "p11c_fault_call_name");

    libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER_set_default_search_path(libctx, tu_provider_dir());
    prov_default = OSSL_PROVIDER_load(libctx, "default");
    prov_p11 = OSSL_PROVIDER_load(libctx, "p11chat");
    if (prov_default == NULL || prov_p11 == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    alice = tu_store_load(libctx, URI_ALICE ";type=private", 0);
    bob = tu_store_load(libctx, URI_BOB ";type=private", 0);
    if (alice == NULL || bob == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    alice_ec = ec_key("alice-ec", "21", "prime256v1");
    bob_ec = ec_key("bob-ec", "22", "secp384r1");
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(alice, &der);
    const unsigned char *p = der;
    alice_pub = len > 0 ? d2i_PUBKEY_ex(NULL, &p, len, libctx, "provider=default") : NULL;
    OPENSSL_free(der);
    if (mode != NULL && strcmp(mode, "fixed-key") == 0 &&
        (fixed_s = EVP_PKEY_Q_keygen(libctx, "provider=default", "RSA", (size_t)2048)) == NULL)
        return 1;
    return alice_pub == NULL;
}

static int suite_clean(void)
{
    printf("\nfaults injected: %lu; ended in a clear error: %lu; recovered with a correct "
           "result: %lu\n",
           injected, clear_errors, recovered);
    EVP_PKEY_free(alice);
    EVP_PKEY_free(bob);
    EVP_PKEY_free(alice_pub);
    EVP_PKEY_free(alice_ec);
    EVP_PKEY_free(bob_ec);
    EVP_PKEY_free(fixed_s);
    OSSL_PROVIDER_unload(prov_p11);
    OSSL_PROVIDER_unload(prov_default);
    OSSL_LIB_CTX_free(libctx);
    return 0;
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("fault_sweep", suite_init, suite_clean);
    CU_add_test(s, "every call of a provider sign", test_sign);
    CU_add_test(s, "every call of a provider decrypt", test_decrypt);
    CU_add_test(s, "every call of a handshake with token keys", test_handshake);
    CU_add_test(s, "every call of a suite 0x02 handshake with EC token keys", test_handshake_ec);
    CU_add_test(s, "every call of a key load", test_load);
    return tu_main();
}
