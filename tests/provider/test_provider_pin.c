/*
 * The PIN the way OpenSSL programs give it, with the real openssl command and
 * a configuration that gives no PIN: -passin pass: and file:, s_server's
 * -pass, the command's own prompt on a terminal (a pseudo-terminal made by
 * script(1)); a wrong, a blank and a missing PIN each fail with what to do.
 * Commands that must not prompt run in a session of their own (setsid) with
 * stdin from /dev/null, so that they never find a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "ptu.h"

#define NOPIN 2 /* ptu_conf: no PIN configured */

/* Runs `cmd` (no terminal) with the PIN-less configuration. */
static int run_nopin(char **out, const char *cmd)
{
    return tu_run(out, "cd '%s' && OPENSSL_CONF='%s' setsid -w sh -c '%s' </dev/null", ptu_dir(),
                  ptu_conf(NOPIN), cmd);
}

/* Verifies sig over msg.txt with the default provider and alice's public key. */
static int verified(const char *sig)
{
    return tu_run(NULL,
                  "cd '%s' && OPENSSL_CONF=/dev/null openssl dgst -sha256 -verify alice.pub.pem "
                  "-signature %s msg.txt",
                  ptu_dir(), sig) == 0;
}

static void setup_files(void)
{
    FILE *f = fopen(ptu_path("msg.txt"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("a message to sign\n", f);
    fclose(f);
    f = fopen(ptu_path("pin.txt"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(TU_USER_PIN "\n", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(run_nopin(NULL, "openssl pkey -pubin -in \"" PTU_ALICE
                                          ";type=public\" -pubout -out alice.pub.pem"),
                          0);
}

static void test_passin(void)
{
    char *out = NULL;

    setup_files();
    int rc = run_nopin(&out, "openssl dgst -sha256 -sign \"" PTU_ALICE
                             "\" -passin pass:" TU_USER_PIN " -out s1.bin msg.txt");
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CU_ASSERT_TRUE(verified("s1.bin"));
    rc = run_nopin(&out, "openssl dgst -sha256 -sign \"" PTU_ALICE
                         "\" -passin file:pin.txt -out s2.bin msg.txt");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    CU_ASSERT_TRUE(verified("s2.bin"));
    /* pkeyutl and req take -passin the same way */
    rc = run_nopin(&out, "openssl req -new -x509 -key \"" PTU_ALICE "\" -passin pass:" TU_USER_PIN
                         " -subj /CN=alice -days 2 -out alice.crt");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
}

static void test_wrong_blank_missing(void)
{
    char *out = NULL;

    int rc = run_nopin(&out, "openssl dgst -sha256 -sign \"" PTU_ALICE
                             "\" -passin pass:9999 -out bad.bin msg.txt");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CKR_PIN_INCORRECT"));
    free(out);
    /* a stray space is refused before the token counts a try */
    rc = run_nopin(&out, "openssl dgst -sha256 -sign \"" PTU_ALICE "\" -passin \"pass: " TU_USER_PIN
                         "\" -out bad.bin msg.txt");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no PIN try was spent"));
    free(out);
    /* no PIN from anywhere: the message names every way to give one */
    rc = run_nopin(&out, "openssl dgst -sha256 -sign \"" PTU_ALICE "\" -out bad.bin msg.txt");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_NO_PIN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pin-source"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "-passin"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pkcs11-pin"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11CHAT_PKCS11_PIN"));
    if (strstr(out, "-passin") == NULL)
        fprintf(stderr, "%s\n", out);
    free(out);
}

/* The openssl command prompts on its terminal; the PIN typed there is used. */
static void test_terminal_prompt(void)
{
    char *out = NULL;

    if (tu_run(NULL, "command -v script") != 0) {
        fprintf(stderr, "skipped: script(1) not installed (package bsdutils)\n");
        CU_PASS("skipped: no script(1)");
        return;
    }
    int rc =
        tu_run(&out,
               "cd '%s' && printf '" TU_USER_PIN "\\n' | OPENSSL_CONF='%s' timeout 30 script "
               "-qec 'openssl dgst -sha256 -sign \"" PTU_ALICE "\" -out s3.bin msg.txt' /dev/null",
               ptu_dir(), ptu_conf(NOPIN));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pass phrase"));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CU_ASSERT_TRUE(verified("s3.bin"));
}

/* s_server -pass: the PIN given once serves every handshake. */
static void test_s_server_pass(void)
{
    char *out = NULL;

    int rc = tu_run(
        &out,
        "exec 2>&1; cd '%s' && rm -f tls.sock && "
        "(OPENSSL_CONF='%s' setsid -w timeout 30 openssl s_server -www -unix tls.sock -naccept 2 "
        "-key \"" PTU_ALICE "\" -pass pass:" TU_USER_PIN " -cert alice.crt </dev/null >srv.log "
        "2>&1 & echo $! >srv.pid) && "
        "for i in $(seq 100); do [ -S tls.sock ] && break; sleep 0.1; done && "
        "for n in 1 2; do echo Q | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -unix "
        "tls.sock -CAfile alice.crt -verify_return_error -brief || exit 1; done; "
        "rc=$?; kill $(cat srv.pid) 2>/dev/null; wait; cat srv.log; exit $rc",
        ptu_dir(), ptu_conf(NOPIN));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CONNECTION ESTABLISHED"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verification: OK"));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
}

/* The configuration keys of tokens as they are: a bad value keeps the
 * provider from starting; initialisation arguments need a module path. */
static void test_config_keys(void)
{
    static const char *const keys[] = {"pkcs11-pin-cache", "pkcs11-pin-final-try",
                                       "pkcs11-pss-on-host"};
    for (size_t i = 0; i < 3; i++) {
        FILE *f = fopen(ptu_path("bad.cnf"), "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fprintf(f,
                "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
                "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
                "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s/p11chat.so\n"
                "pkcs11-module = %s\n%s = maybe\nactivate = 1\n",
                tu_provider_dir(), tu_token_module(), keys[i]);
        fclose(f);
        OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
        OSSL_LIB_CTX_load_config(libctx, ptu_path("bad.cnf"));
        CU_ASSERT_FALSE(OSSL_PROVIDER_available(libctx, "p11chat"));
        OSSL_LIB_CTX_free(libctx);
        ERR_clear_error();
    }
    /* arguments for a module named by p11-kit: refused when it is loaded */
    char *out = NULL;
    int rc = tu_run(&out,
                    "cd '%s' && OPENSSL_CONF=/dev/null P11CHAT_PKCS11_MODULE=softhsm2 "
                    "P11CHAT_PKCS11_MODULE_INIT_ARGS=configdir=x openssl pkey -provider-path '%s' "
                    "-provider p11chat -provider default -pubin -in '" PTU_ALICE
                    ";type=public' -pubout </dev/null",
                    ptu_dir(), tu_provider_dir());
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "loading PKCS#11 module 'softhsm2'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_MODULE_LOAD"));
    free(out);
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_pin", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_pin", NULL, NULL);
    CU_add_test(s, "-passin pass: and file:", test_passin);
    CU_add_test(s, "wrong, blank and missing PIN", test_wrong_blank_missing);
    CU_add_test(s, "prompt on the terminal", test_terminal_prompt);
    CU_add_test(s, "s_server -pass", test_s_server_pass);
    CU_add_test(s, "configuration keys", test_config_keys);
    return tu_main();
}
