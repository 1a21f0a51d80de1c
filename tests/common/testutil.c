#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <openssl/crypto.h>
#include <openssl/store.h>

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "test setup: %s: %s\n", what, detail);
    exit(2);
}

const char *tu_vector_path(const char *rel)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", P11C_VECTORS_DIR, rel);
    return path;
}

json_t *tu_vector_load(const char *rel)
{
    json_error_t err;
    json_t *j = json_load_file(tu_vector_path(rel), 0, &err);
    if (j == NULL)
        die(rel, err.text);
    return j;
}

uint8_t *tu_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        die("odd-length hex", hex);
    uint8_t *buf = malloc(n / 2 + 1);
    if (buf == NULL)
        die("malloc", "out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            die("bad hex", hex);
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return buf;
}

const char *tu_json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        die("missing JSON string member", key);
    return s;
}

uint8_t *tu_json_hex(const json_t *obj, const char *key, size_t *len)
{
    return tu_unhex(tu_json_str(obj, key), len);
}

/* The init arguments of an NSS token made here (read from DIR/init-args). */
static char nss_init_args[8192];

const char *tu_token_kind(void)
{
    const char *k = getenv("P11C_TEST_TOKEN");
    return k != NULL && strcmp(k, "nss") == 0 ? "nss" : "softhsm";
}

int tu_token_is_nss(void)
{
    return strcmp(tu_token_kind(), "nss") == 0;
}

const char *tu_token_make(const char *name, int with_keys)
{
    static char dir[4096];
    static char conf[4200];
    char cmd[8192];

    mkdir(P11C_TOKENS_DIR, 0700);
    snprintf(dir, sizeof(dir), "%s/%s.%ld", P11C_TOKENS_DIR, name, (long)getpid());
    if (tu_token_is_nss()) {
        snprintf(cmd, sizeof(cmd),
                 "%sP11CHAT_CMD='%s/p11chat' P11CHAT_NSS_MODULE='%s' bash '%s' '%s' >/dev/null",
                 with_keys ? "" : "P11CHAT_TOKEN_NOKEYS=1 ", P11C_APPS_DIR, P11C_NSS_MODULE,
                 P11C_MKNSS, dir);
        if (system(cmd) != 0)
            die("could not make the NSS test token", cmd);
        snprintf(conf, sizeof(conf), "%s/init-args", dir);
        FILE *f = fopen(conf, "r");
        if (f == NULL || fgets(nss_init_args, sizeof(nss_init_args), f) == NULL)
            die("cannot read", conf);
        fclose(f);
        /* Programs that take the module from the environment (the p11chat
         * command, the provider loaded by name) open the same token. */
        setenv("P11CHAT_PKCS11_MODULE", P11C_NSS_MODULE, 1);
        setenv("P11CHAT_PKCS11_MODULE_INIT_ARGS", nss_init_args, 1);
        /* NSS shows a second token (its generic crypto services): keys made
         * in "the token" without a URI need it named. */
        setenv("P11CHAT_PKCS11_TOKEN", "pkcs11:token=" TU_TOKEN_LABEL, 1);
        return dir;
    }
    snprintf(cmd, sizeof(cmd), "%sP11CHAT_SOFTHSM_MODULE='%s' bash '%s' '%s' >/dev/null",
             with_keys ? "" : "P11CHAT_TOKEN_NOKEYS=1 ", P11C_SOFTHSM_MODULE, P11C_MKTOKEN, dir);
    if (system(cmd) != 0)
        die("could not make the test token", cmd);
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0)
        die("setenv", strerror(errno));
    return dir;
}

int tu_p11kit_server_start(const char *module, const char *sock, const char *token_uri,
                           const char *log)
{
    unlink(sock);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("p11-kit", "p11-kit", "server", "-f", "--provider", module, "-n", sock, token_uri,
               (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    for (int i = 0; i < 100; i++) {
        struct stat st;
        if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            return (int)pid;
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    tu_p11kit_server_kill((int)pid);
    return -1;
}

void tu_p11kit_server_kill(int pid)
{
    if (pid <= 0)
        return;
    kill(-(pid_t)pid, SIGKILL);
    waitpid((pid_t)pid, NULL, 0);
}

const char *tu_p11kit_client(void)
{
    if (access(P11C_P11KIT_CLIENT, R_OK) != 0 ||
        system("command -v p11-kit >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skipped: p11-kit-client.so or p11-kit missing (packages p11-kit, "
                        "p11-kit-modules)\n");
        return NULL;
    }
    return P11C_P11KIT_CLIENT;
}

const char *tu_token_module(void)
{
    return tu_token_is_nss() ? P11C_NSS_MODULE : P11C_SOFTHSM_MODULE;
}

const char *tu_token_init_args(void)
{
    return tu_token_is_nss() && nss_init_args[0] != '\0' ? nss_init_args : NULL;
}

EVP_PKEY *tu_store_load(OSSL_LIB_CTX *libctx, const char *uri, int expect)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;

    if (st == NULL)
        return NULL;
    if (expect != 0)
        OSSL_STORE_expect(st, expect);
    while (pkey == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            pkey = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pkey;
}

const char *tu_softhsm_module(void)
{
    return P11C_SOFTHSM_MODULE;
}

const char *tu_provider_dir(void)
{
    return P11C_PROVIDER_DIR;
}

const char *tu_apps_dir(void)
{
    return P11C_APPS_DIR;
}

int tu_run(char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd) - 8)
        die("command too long", fmt);
    strcat(cmd, " 2>&1");

    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        die("malloc", "out of memory");
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                die("realloc", "out of memory");
            buf = nb;
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int tu_main(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned int failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned int ran = CU_get_number_of_tests_run();
    int rc = (failed == 0 && ran > 0 && CU_get_error() == CUE_SUCCESS) ? 0 : 1;
    CU_cleanup_registry();
    return rc;
}
