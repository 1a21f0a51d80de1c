#include "ptu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>

static char dir[4096];

static void write_conf(const char *file, int p11chat_first, int with_pin, int fallback)
{
    FILE *f = fopen(ptu_path(file), "w");
    char pin[4200] = "";

    if (f == NULL) {
        perror(file);
        exit(2);
    }
    if (with_pin)
        snprintf(pin, sizeof(pin), "pkcs11-pin = file:%s/pin\n", dir);
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\n%s\n%s\n"
            "[default_sect]\nactivate = 1\n"
            "[p11chat_sect]\nmodule = %s/p11chat.so\npkcs11-module = %s\n%s%s%s%s"
            "oaep-fallback = %s\nactivate = 1\n",
            p11chat_first ? "p11chat = p11chat_sect" : "default = default_sect",
            p11chat_first ? "default = default_sect" : "p11chat = p11chat_sect", tu_provider_dir(),
            tu_token_module(), pin,
            tu_token_init_args() != NULL ? "pkcs11-module-init-args = " : "",
            tu_token_init_args() != NULL ? tu_token_init_args() : "",
            tu_token_init_args() != NULL ? "\n" : "", fallback ? "yes" : "no");
    fclose(f);
}

const char *ptu_setup(const char *name, int with_keys)
{
    snprintf(dir, sizeof(dir), "%s", tu_token_make(name, with_keys));
    write_conf("openssl-default-first.cnf", 0, 1, 1);
    write_conf("openssl-p11chat-first.cnf", 1, 1, 1);
    write_conf("openssl-nopin.cnf", 0, 0, 1);
    write_conf("openssl-nofallback.cnf", 0, 1, 0);
    return dir;
}

void ptu_use_dir(const char *d)
{
    snprintf(dir, sizeof(dir), "%s", d);
    setenv("SOFTHSM2_CONF", ptu_path("softhsm2.conf"), 1);
}

const char *ptu_dir(void)
{
    return dir;
}

const char *ptu_path(const char *file)
{
    static char bufs[4][4400];
    static int next;
    char *b = bufs[next++ % 4];

    snprintf(b, sizeof(bufs[0]), "%s/%s", dir, file);
    return b;
}

const char *ptu_conf(int which)
{
    static const char *names[] = {"openssl-default-first.cnf", "openssl-p11chat-first.cnf",
                                  "openssl-nopin.cnf", "openssl-nofallback.cnf"};
    return ptu_path(names[which]);
}

OSSL_LIB_CTX *ptu_libctx(int which)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();

    if (libctx != NULL && !OSSL_LIB_CTX_load_config(libctx, ptu_conf(which))) {
        ERR_print_errors_fp(stderr);
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    return libctx;
}

/* Providers loaded by ptu_libctx_env, unloaded by ptu_libctx_free. */
static struct {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov[2];
} loaded[8];

OSSL_LIB_CTX *ptu_libctx_env(void)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *d = NULL, *p = NULL;
    char pin[4200];

    snprintf(pin, sizeof(pin), "file:%s/pin", dir);
    setenv("P11CHAT_PKCS11_MODULE", tu_token_module(), 1);
    if (tu_token_init_args() != NULL)
        setenv("P11CHAT_PKCS11_MODULE_INIT_ARGS", tu_token_init_args(), 1);
    setenv("P11CHAT_PKCS11_PIN", pin, 1);
    setenv("P11CHAT_OAEP_FALLBACK", "yes", 1);
    if (libctx == NULL || !OSSL_PROVIDER_set_default_search_path(libctx, tu_provider_dir()) ||
        (d = OSSL_PROVIDER_load(libctx, "default")) == NULL ||
        (p = OSSL_PROVIDER_load(libctx, "p11chat")) == NULL) {
        ERR_print_errors_fp(stderr);
        OSSL_PROVIDER_unload(d);
        OSSL_LIB_CTX_free(libctx);
        libctx = NULL;
    }
    for (size_t i = 0; libctx != NULL && i < 8; i++) {
        if (loaded[i].libctx == NULL) {
            loaded[i].libctx = libctx;
            loaded[i].prov[0] = d;
            loaded[i].prov[1] = p;
            break;
        }
    }
    /* An NSS token's module stays in the environment for the programs the
     * test runs (tu_token_make). */
    if (tu_token_init_args() == NULL)
        unsetenv("P11CHAT_PKCS11_MODULE");
    unsetenv("P11CHAT_PKCS11_PIN");
    unsetenv("P11CHAT_OAEP_FALLBACK");
    return libctx;
}

void ptu_libctx_free(OSSL_LIB_CTX *libctx)
{
    for (size_t i = 0; libctx != NULL && i < 8; i++) {
        if (loaded[i].libctx == libctx) {
            OSSL_PROVIDER_unload(loaded[i].prov[1]);
            OSSL_PROVIDER_unload(loaded[i].prov[0]);
            loaded[i].libctx = NULL;
        }
    }
    OSSL_LIB_CTX_free(libctx);
}

int ptu_error_has(const char *text)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0, found = 0;
    char buf[512];

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        if (strstr(buf, text) != NULL || (data != NULL && strstr(data, text) != NULL))
            found = 1;
    }
    return found;
}

int ptu_run_conf(char **out, int which, const char *cmd)
{
    return tu_run(out, "cd '%s' && OPENSSL_CONF='%s' %s", ptu_dir(), ptu_conf(which), cmd);
}

int ptu_run_default(char **out, const char *cmd)
{
    return tu_run(out, "cd '%s' && OPENSSL_CONF=/dev/null %s", ptu_dir(), cmd);
}

int ptu_clean(const char *out)
{
    return strstr(out, "rror") == NULL && strstr(out, "egmentation") == NULL &&
           strstr(out, "bort") == NULL && strstr(out, "ore dumped") == NULL;
}

int ptu_count_in(const char *out, const char *what)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

int ptu_same_files(const char *a, const char *b)
{
    return tu_run(NULL, "cmp '%s' '%s'", ptu_path(a), ptu_path(b)) == 0;
}

void ptu_write_msg(void)
{
    FILE *f = fopen(ptu_path("msg.txt"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("The quick brown fox jumps over the lazy dog.\n", f);
    fclose(f);
}

void ptu_count(PTU_COUNTS *c, const json_t *t, int ok, const char *file)
{
    const char *result = tu_json_str(t, "result");
    int tcid = (int)json_integer_value(json_object_get(t, "tcId"));

    if (strcmp(result, "valid") == 0) {
        ok ? c->valid_pass++ : c->valid_fail++;
        if (!ok)
            fprintf(stderr, "%s: valid tcId %d failed\n", file, tcid);
    } else if (strcmp(result, "invalid") == 0) {
        ok ? c->invalid_pass++ : c->invalid_fail++;
        if (ok)
            fprintf(stderr, "%s: invalid tcId %d passed\n", file, tcid);
    } else {
        ok ? c->acceptable_pass++ : c->acceptable_fail++;
    }
}

void ptu_print_counts(const char *file, const PTU_COUNTS *c)
{
    printf("\n%s: valid %d passed %d failed; invalid %d failed %d passed; acceptable %d passed "
           "%d failed; %d skipped\n",
           file, c->valid_pass, c->valid_fail, c->invalid_fail, c->invalid_pass, c->acceptable_pass,
           c->acceptable_fail, c->skipped);
}

void ptu_check_counts(const char *file, const PTU_COUNTS *c, const int expect[5])
{
    ptu_print_counts(file, c);
    CU_ASSERT_EQUAL(c->valid_pass, expect[0]);
    CU_ASSERT_EQUAL(c->valid_fail, 0);
    CU_ASSERT_EQUAL(c->invalid_fail, expect[1]);
    CU_ASSERT_EQUAL(c->invalid_pass, 0);
    CU_ASSERT_EQUAL(c->acceptable_pass, expect[2]);
    CU_ASSERT_EQUAL(c->acceptable_fail, expect[3]);
    CU_ASSERT_EQUAL(c->skipped, expect[4]);
}

size_t ptu_counts_total(const PTU_COUNTS *c)
{
    return (size_t)(c->valid_pass + c->valid_fail + c->invalid_pass + c->invalid_fail +
                    c->acceptable_pass + c->acceptable_fail + c->skipped);
}
