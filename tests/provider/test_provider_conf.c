/*
 * The configuration as the openssl command meets it: the example file of
 * conf/ (which includes the system's), and what a configuration that keeps
 * the provider from starting, or names a module that is not there, says on
 * stderr instead of a later "unregistered scheme".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptu.h"

static char example[4200];

/* A configuration with both providers and `lines` in p11chat's section. */
static const char *conf_with(const char *file, const char *lines)
{
    const char *path = ptu_path(file);
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s/p11chat.so\n%s"
            "activate = 1\n",
            tu_provider_dir(), lines);
    fclose(f);
    return path;
}

static void test_not_started(void)
{
    static const struct {
        const char *lines, *said;
    } bad[] = {
        {"oaep-fallback = perhaps\n", "p11chat: the provider did not start: oaep-fallback = "
                                      "perhaps is not yes or no. pkcs11: URIs will not work until "
                                      "the configuration is fixed (OpenSSL reports them as an "
                                      "\"unregistered scheme\").\n"},
        {"pkcs11-copy-keys = sometimes\n", "p11chat: the provider did not start: pkcs11-copy-keys "
                                           "= sometimes is not yes or no."},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL;
        int rc = tu_run(&out, "OPENSSL_CONF='%s' openssl list -providers",
                        conf_with("bad.cnf", bad[i].lines));
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[i].said));
        CU_ASSERT_PTR_NULL(strstr(out, "p11chat PKCS#11 provider"));
        free(out);
    }
}

/* A module path that is not there: said at once; the provider starts, and
 * the key then fails with the module's reason. */
static void test_missing_module(void)
{
    char *out = NULL;
    const char *conf = conf_with("nomodule.cnf", "pkcs11-module = /nonexistent/module.so\n");
    int rc = tu_run(&out, "OPENSSL_CONF='%s' openssl list -providers", conf);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "p11chat: warning: pkcs11-module = /nonexistent/module.so: "
                                       "no such readable file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "p11chat PKCS#11 provider"));
    free(out);
    rc = tu_run(&out, "OPENSSL_CONF='%s' openssl pkey -in '%s' -pubout", conf, PTU_ALICE);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_MODULE_LOAD"));
    CU_ASSERT_PTR_NULL(strstr(out, "unregistered scheme"));
    free(out);
}

/* conf/openssl-p11chat.cnf, with its commented paths filled in: both
 * providers active, the system's settings kept, a token key usable. */
static void test_example(void)
{
    char *out = NULL;
    int rc;

    rc = tu_run(&out,
                "sed -e 's|^# module = .*|module = %s/p11chat.so|' "
                "-e 's|^# pkcs11-module = .*|pkcs11-module = %s|' "
                "-e 's|^# pkcs11-pin = .*|pkcs11-pin = file:%s|' '%s' > '%s'",
                tu_provider_dir(), tu_softhsm_module(), ptu_path("pin"), example,
                ptu_path("example.cnf"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    free(out);
    rc = tu_run(&out, "grep -c '^\\.include /etc/ssl/openssl.cnf$' '%s'", ptu_path("example.cnf"));
    CU_ASSERT_EQUAL(rc, 0);
    free(out);
    rc = tu_run(&out, "OPENSSL_CONF='%s' openssl list -providers", ptu_path("example.cnf"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "OpenSSL Default Provider"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "p11chat PKCS#11 provider"));
    CU_ASSERT_PTR_NULL(strstr(out, "p11chat:"));
    free(out);
    rc = tu_run(&out, "OPENSSL_CONF='%s' openssl pkey -in '%s' -pubout", ptu_path("example.cnf"),
                PTU_ALICE);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(out, "-----BEGIN PUBLIC KEY-----", 26), 0);
    free(out);
    /* the key signs: the PIN of the configuration, hashing from default */
    rc = tu_run(&out, "echo hi | OPENSSL_CONF='%s' openssl dgst -sha256 -sign '%s' -out /dev/null",
                ptu_path("example.cnf"), PTU_ALICE);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
}

int main(void)
{
    CU_pSuite s;

    snprintf(example, sizeof(example), "%s", P11C_EXAMPLE_CONF);
    ptu_setup("provider_conf", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_conf", NULL, NULL);
    CU_add_test(s, "a value that stops the provider is said", test_not_started);
    CU_add_test(s, "a module path that is not there is said", test_missing_module);
    CU_add_test(s, "conf/openssl-p11chat.cnf works as documented", test_example);
    return tu_main();
}
