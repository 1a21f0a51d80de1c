/*
 * Tokens missing mechanisms, shaped by tests/fault's module in front of
 * SoftHSM2 (P11C_FAULT_HIDE_MECHS), with the real openssl command:
 *  - no RSA-PSS mechanism but raw RSA: PSS signatures encoded on the host,
 *    said once, verified by OpenSSL's default provider; refused when
 *    pkcs11-pss-on-host = no;
 *  - PKCS#1 v1.5 only: PSS is impossible, said plainly with the token's
 *    name and the missing mechanism, while PKCS#1 v1.5 still signs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptu.h"

#define ALL_PSS                                                                                    \
    "CKM_RSA_PKCS_PSS,CKM_SHA1_RSA_PKCS_PSS,CKM_SHA224_RSA_PKCS_PSS,CKM_SHA256_RSA_PKCS_PSS,"      \
    "CKM_SHA384_RSA_PKCS_PSS,CKM_SHA512_RSA_PKCS_PSS"

static void write_conf(const char *name, const char *extra)
{
    FILE *f = fopen(ptu_path(name), "w");
    if (f == NULL) {
        perror(name);
        exit(2);
    }
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n"
            "[p11chat_sect]\nmodule = %s/p11chat.so\npkcs11-module = %s\n"
            "pkcs11-pin = file:%s\n%sactivate = 1\n",
            tu_provider_dir(), P11C_FAULT_SO, ptu_path("pin"), extra);
    fclose(f);
}

/* Runs cmd with configuration conf and the mechanisms hidden. */
static int run_hidden(char **out, const char *conf, const char *hide, const char *cmd)
{
    return tu_run(out,
                  "cd '%s' && P11C_FAULT_MODULE='%s' P11C_FAULT_HIDE_MECHS='%s' "
                  "OPENSSL_CONF='%s' %s",
                  ptu_dir(), tu_softhsm_module(), hide, ptu_path(conf), cmd);
}

static int count_in(const char *out, const char *what)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static int verified(const char *sig, int pss)
{
    return tu_run(NULL,
                  "cd '%s' && OPENSSL_CONF=/dev/null openssl dgst -sha256 -verify alice.pub.pem "
                  "%s -signature %s msg.txt",
                  ptu_dir(), pss ? "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-2" : "",
                  sig) == 0;
}

static int setup(void)
{
    FILE *f = fopen(ptu_path("msg.txt"), "w");
    if (f == NULL)
        return 1;
    fputs("signed by a token that lacks mechanisms\n", f);
    fclose(f);
    write_conf("fault.cnf", "");
    write_conf("fault-nohost.cnf", "pkcs11-pss-on-host = no\n");
    return run_hidden(NULL, "fault.cnf", "",
                      "openssl pkey -in '" PTU_ALICE "' -pubout -out alice.pub.pem") != 0;
}

#define PSS_SIGN(out) "openssl dgst -sha256 -sign '" PTU_ALICE "' -sigopt rsa_padding_mode:pss " out
#define TOLD          "has no CKM_RSA_PKCS_PSS: PSS signatures are encoded on the host"

static void test_pss_on_host(void)
{
    char *out = NULL;
    /* every PSS mechanism hidden: encoded on the host, said once */
    int rc = run_hidden(&out, "fault.cnf", ALL_PSS, PSS_SIGN("-out s1.bin msg.txt"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_in(out, TOLD), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'" TU_TOKEN_LABEL "'"));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CU_ASSERT_TRUE(verified("s1.bin", 1));
    /* a self-signed certificate with PSS, verified by the default provider */
    rc = run_hidden(&out, "fault.cnf", ALL_PSS,
                    "openssl req -new -x509 -key '" PTU_ALICE
                    "' -sigopt rsa_padding_mode:pss -subj /CN=pss -days 2 -out pss.crt");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    CU_ASSERT_EQUAL(tu_run(&out,
                           "cd '%s' && OPENSSL_CONF=/dev/null openssl verify -CAfile pss.crt "
                           "pss.crt && openssl x509 -in pss.crt -noout -text",
                           ptu_dir()),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rsassaPss"));
    free(out);
    /* the token's own PSS when it has it: nothing said */
    rc = run_hidden(&out, "fault.cnf", "", PSS_SIGN("-out s2.bin msg.txt"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_in(out, TOLD), 0);
    free(out);
    CU_ASSERT_TRUE(verified("s2.bin", 1));
    /* switched off: refused, and says what forbids it */
    rc = run_hidden(&out, "fault-nohost.cnf", ALL_PSS, PSS_SIGN("-out s3.bin msg.txt"));
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pkcs11-pss-on-host = no"));
    free(out);
}

static void test_pkcs1_only(void)
{
    char *out = NULL;
    int rc =
        run_hidden(&out, "fault.cnf", ALL_PSS ",CKM_RSA_X_509", PSS_SIGN("-out s4.bin msg.txt"));
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(rc < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "token '" TU_TOKEN_LABEL "' has neither CKM_RSA_PKCS_PSS "
                                       "nor raw RSA (CKM_RSA_X_509)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot make RSA-PSS signatures"));
    if (strstr(out, "cannot make RSA-PSS") == NULL)
        fprintf(stderr, "%s\n", out);
    free(out);
    /* PKCS#1 v1.5 still signs */
    rc = run_hidden(&out, "fault.cnf", ALL_PSS ",CKM_RSA_X_509",
                    "openssl dgst -sha256 -sign '" PTU_ALICE "' -out s5.bin msg.txt");
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    CU_ASSERT_TRUE(verified("s5.bin", 0));
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_mechs", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_mechs", setup, NULL);
    CU_add_test(s, "no PSS, raw RSA: PSS on the host", test_pss_on_host);
    CU_add_test(s, "PKCS#1 v1.5 only: PSS impossible", test_pkcs1_only);
    return tu_main();
}
