/*
 * p11chat-bench: measured speed against the physical limits (docs/benchmarks.md).
 *
 *   p11chat-bench [--quick] [--json FILE] [--only SECTION]
 *
 * Makes its own SoftHSM2 token under the build tree (tests/token/mktoken.sh),
 * loads the p11chat provider from the build tree, prints a table and, with
 * --json, writes the same figures with a ratio and its target for each
 * target. Exits 0 when every figure could be measured, 1 otherwise; missed
 * targets are reported, not an error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "bench.h"

BENCH_ENV bench;

static const char usage[] =
    "usage: p11chat-bench [--quick] [--json FILE] [--only SECTION] [--keep]\n"
    "  --quick         a short smoke run (about 20 s): fewer, shorter rounds\n"
    "  --json FILE     also write the figures, ratios and targets as JSON\n"
    "  --only SECTION  run the sections whose name contains SECTION:\n"
    "                  records, sign, decrypt, derive, load, handshake, handshake2, tcp,\n"
    "                  tokens\n";

int bench_section_wanted(const char *name)
{
    return bench.only == NULL || strstr(name, bench.only) != NULL;
}

/* What is being measured, on standard error (the table goes to standard output). */
static void progress(const char *what)
{
    fprintf(stderr, "p11chat-bench: %s...\n", what);
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static void trim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

static void machine(void)
{
    char cpu[256] = "unknown", line[512], softhsm[64] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p != NULL) {
                snprintf(cpu, sizeof(cpu), "%s", p + 2);
                trim(cpu);
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    f = popen("softhsm2-util --version 2>/dev/null", "r");
    if (f != NULL) {
        if (fgets(softhsm, sizeof(softhsm), f) != NULL)
            trim(softhsm);
        pclose(f);
    }
    snprintf(bench.machine, sizeof(bench.machine), "%ld CPUs (nproc), %s; %s; SoftHSM %s",
             sysconf(_SC_NPROCESSORS_ONLN), cpu, OpenSSL_version(OPENSSL_VERSION), softhsm);
}

static int write_conf(const char *path, const char *pkcs11_module)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return 0;
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\n"
            "providers = provider_sect\n"
            "[provider_sect]\n"
            "default = default_sect\n"
            "p11chat = p11chat_sect\n"
            "[default_sect]\n"
            "activate = 1\n"
            "[p11chat_sect]\n"
            "module = %s\n"
            "pkcs11-module = %s\n"
            "pkcs11-pin = file:%s/pin\n"
            "pkcs11-token = pkcs11:token=%s\n"
            "oaep-fallback = yes\n"
            "activate = 1\n",
            bench.provider_so, pkcs11_module, bench.dir, BENCH_TOKEN);
    return fclose(f) == 0;
}

static int setup(void)
{
    char cmd[8192], path[4300];

    bench.module = P11C_SOFTHSM_MODULE;
    bench.apps_dir = P11C_APPS_DIR;
    bench.provider_so = file_exists(P11C_PROVIDER_SO) ? P11C_PROVIDER_SO : NULL;
#ifdef P11C_FAULT_SO
    bench.fault_so = file_exists(P11C_FAULT_SO) ? P11C_FAULT_SO : NULL;
#endif
    snprintf(bench.dir, sizeof(bench.dir), "%s/token.%ld", P11C_BENCH_DIR, (long)getpid());
    snprintf(cmd, sizeof(cmd), "P11CHAT_SOFTHSM_MODULE='%s' bash '%s' '%s' '%s' >/dev/null",
             bench.module, P11C_MKTOKEN, bench.dir, BENCH_TOKEN);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: cannot make the token (%s)\n", P11C_MKTOKEN);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", bench.dir);
    setenv("SOFTHSM2_CONF", path, 1);
    /* The counting module forwards to SoftHSM2 and only counts. */
    setenv("P11C_FAULT", "count", 1);
    setenv("P11C_FAULT_MODULE", bench.module, 1);

    bench.libctx = OSSL_LIB_CTX_new();
    if (bench.libctx == NULL)
        return 0;
    if (bench.provider_so != NULL) {
        snprintf(bench.conf, sizeof(bench.conf), "%s/openssl.cnf", bench.dir);
        snprintf(bench.conf_count, sizeof(bench.conf_count), "%s/openssl-count.cnf", bench.dir);
        if (!write_conf(bench.conf, bench.module) ||
            (bench.fault_so != NULL && !write_conf(bench.conf_count, bench.fault_so)) ||
            !OSSL_LIB_CTX_load_config(bench.libctx, bench.conf)) {
            fprintf(stderr, "bench: cannot load the provider (%s)\n", bench.provider_so);
            bench_ossl_err("setup");
            return 0;
        }
        bench.have_provider = OSSL_PROVIDER_available(bench.libctx, "p11chat");
    } else {
        bench_note("the provider is not built (%s): its figures are missing", P11C_PROVIDER_SO);
        if (OSSL_PROVIDER_load(bench.libctx, "default") == NULL)
            return 0;
    }
    bench.sw_key = EVP_PKEY_Q_keygen(bench.libctx, "provider=default", "RSA", (size_t)2048);
    return bench.sw_key != NULL;
}

static void teardown(void)
{
    char cmd[4200];

    bench_engine_free();
    EVP_PKEY_free(bench.sw_key);
    OSSL_LIB_CTX_free(bench.libctx);
    if (bench.keep)
        fprintf(stderr, "p11chat-bench: kept %s\n", bench.dir);
    else if (bench.dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bench.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: cannot remove %s\n", bench.dir);
    }
}

int main(int argc, char **argv)
{
    const char *json = NULL;
    double t0 = bench_now();
    int ret = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            bench.quick = 1;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--keep") == 0) {
            bench.keep = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            bench.only = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "p11chat-bench: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    /* A child that dies early must not take the benchmark with it. */
    signal(SIGPIPE, SIG_IGN);
    bench.round_s = bench.quick ? 0.02 : 0.06;
    bench.rounds = bench.quick ? 3 : 9;

    bench.clock_s = bench_clock_cost();
    machine();
    printf("p11chat-bench%s: %s\n", bench.quick ? " --quick" : "", bench.machine);
    fflush(stdout);
    if (!setup())
        goto end;
    if (bench_section_wanted("records")) {
        progress("records");
        bench_records();
    }
    if (bench_section_wanted("sign") || bench_section_wanted("decrypt") ||
        bench_section_wanted("load")) {
        progress("signatures, decryption, key load");
        bench_rsa();
    }
    if (bench_section_wanted("sign") || bench_section_wanted("derive") ||
        bench_section_wanted("load")) {
        progress("EC and Ed25519: signatures, ECDH, key load");
        bench_ec();
    }
    if (bench_section_wanted("handshake")) {
        progress("handshakes");
        bench_handshake();
    }
    if (bench_section_wanted("handshake2")) {
        progress("suite 0x02 handshakes");
        bench_handshake2();
    }
    if (bench_section_wanted("tcp")) {
        progress("two processes over TCP");
        bench_tcp();
    }
    if (bench_section_wanted("tokens")) {
        progress("per-use PIN, remote token");
        bench_tokens();
    }
    {
        /* Mostly one busy thread: far below 1, the machine was shared while measuring. */
        struct rusage ru;
        double wall = bench_now() - t0, cpu = 0;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
        bench_note("run time %.0f s; CPU time of the benchmark process / run time = %.2f%s", wall,
                   cpu / wall,
                   cpu / wall < 0.8 ? " (well below 1: other work shared the machine)" : "");
    }
    bench_print();
    if (json != NULL && !bench_write_json(json))
        goto end;
    ret = 0;
end:
    teardown();
    return ret;
}
