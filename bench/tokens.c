/*
 * Tokens as they are (docs/provider.md): the cost of a per-use PIN
 * (CKA_ALWAYS_AUTHENTICATE: a context-specific login per signature), and a
 * remote token (SoftHSM2 behind `p11-kit server`, reached through
 * p11-kit-client.so) against the same token used locally: signatures per
 * second and full in-memory handshake latency with both keys in the token.
 */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/provider.h>

#include "bench.h"
#include "p11c_pkcs11.h"

#ifndef P11C_CLIENT_SO
#define P11C_CLIENT_SO "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
#endif

static int raw_sign(void *arg)
{
    static const uint8_t dgst[32] = {1, 2, 3};
    uint8_t sig[512];
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {
        .type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .mgf = CKG_MGF1_SHA256, .salt_len = 32};
    return p11c_key_sign(arg, &mech, dgst, sizeof(dgst), sig, &siglen, NULL) == CKR_OK;
}

static void err_print(const char *what, const P11C_ERR *err)
{
    char buf[700];
    fprintf(stderr, "bench: %s: %s\n", what, p11c_err_string(err, buf, sizeof(buf)));
}

/* ---- Per-use PIN ------------------------------------------------------------ */

static void per_use(P11C_MODULE *m, P11C_TOKEN *t)
{
    P11C_ERR err = {0};
    P11C_KEY *plain = NULL, *peruse = NULL;

    if (p11c_key_generate(t, 2048, "tk-plain", NULL, 0, 1, &plain, &err) != CKR_OK ||
        p11c_key_generate_per_use(t, 2048, "tk-peruse", NULL, 0, 1, &peruse, &err) != CKR_OK) {
        err_print("per-use key", &err);
        goto end;
    }
    BENCH_CONTENDER c[2] = {
        {.name = "plain", .op = raw_sign, .arg = plain},
        {.name = "per-use PIN", .op = raw_sign, .arg = peruse},
    };
    unsigned long logins = p11c_module_context_logins(m);
    if (bench_interleave(c, 2, bench.rounds)) {
        double rp = bench_rate(&c[0], bench.rounds), ru = bench_rate(&c[1], bench.rounds);
        bench_row("tokens", "raw C_Sign, key without per-use PIN", rp, "sig/s", -1, -1, NULL);
        bench_row("tokens", "raw C_Sign, per-use PIN (C_Login CKU_CONTEXT_SPECIFIC each)", ru,
                  "sig/s", -1, bench_ratio(&c[1], &c[0], bench.rounds), "without");
        bench_row("tokens", "  cost of the per-use login", (1.0 / ru - 1.0 / rp) * 1e6, "us/sig",
                  -1, -1, NULL);
        bench_note("per-use PIN: %lu context-specific logins made while measuring",
                   p11c_module_context_logins(m) - logins);
    }
    bench_contender_free(c, 2);
end:
    if (plain != NULL)
        p11c_key_destroy(plain, NULL);
    if (peruse != NULL)
        p11c_key_destroy(peruse, NULL);
    p11c_key_free(plain);
    p11c_key_free(peruse);
}

/* ---- Remote token ------------------------------------------------------------ */

static pid_t server = -1;
static char sock[4300];

static int server_start(void)
{
    struct stat st;
    snprintf(sock, sizeof(sock), "%s/p11-kit.sock", bench.dir);
    unlink(sock);
    server = fork();
    if (server == 0) {
        setpgid(0, 0);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("p11-kit", "p11-kit", "server", "-f", "--provider", bench.module, "-n", sock,
               "pkcs11:token=" BENCH_TOKEN, (char *)NULL);
        _exit(127);
    }
    if (server < 0)
        return 0;
    setpgid(server, server);
    for (int i = 0; i < 100; i++) {
        if (stat(sock, &st) == 0)
            return 1;
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void server_stop(void)
{
    if (server > 0) {
        kill(-server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    server = -1;
}

/* A library context with the provider on the remote token. */
static OSSL_LIB_CTX *remote_ctx(void)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/openssl-remote.cnf", bench.dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s\npkcs11-module = %s\n"
            "pkcs11-pin = file:%s/pin\nactivate = 1\n",
            bench.provider_so, P11C_CLIENT_SO, bench.dir);
    fclose(f);
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx != NULL && !OSSL_LIB_CTX_load_config(ctx, path)) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static BENCH_PAIR_CFG local_pair, remote_pair;

/* S made before, as a key pool gives it: the latency is the token's. */
static EVP_PKEY *ready_s(void *arg)
{
    (void)arg;
    return EVP_PKEY_up_ref(bench.sw_key) ? bench.sw_key : NULL;
}

static int op_pair(void *arg)
{
    return bench_pair(arg, NULL, NULL);
}

static void remote(P11C_TOKEN *t)
{
    P11C_ERR err = {0};
    P11C_MODULE *rm = NULL;
    P11C_KEY *lk = NULL, *rk = NULL;
    OSSL_LIB_CTX *rctx = NULL;
    char addr[4400];

    if (access(P11C_CLIENT_SO, R_OK) != 0 || !server_start()) {
        bench_note("remote token: not measured (p11-kit server or %s missing)", P11C_CLIENT_SO);
        goto end;
    }
    snprintf(addr, sizeof(addr), "unix:path=%s", sock);
    setenv("P11_KIT_SERVER_ADDRESS", addr, 1);
    if (p11c_key_generate(t, 2048, "tk-remote", NULL, 0, 1, &lk, &err) != CKR_OK ||
        p11c_module_load(P11C_CLIENT_SO, &rm, &err) != CKR_OK ||
        p11c_module_set_pin(rm, "1234") != CKR_OK ||
        p11c_key_load(rm, "pkcs11:token=" BENCH_TOKEN ";object=tk-remote;type=private",
                      P11C_WANT_PRIVATE, &rk, &err) != CKR_OK) {
        err_print("remote token", &err);
        goto end;
    }
    BENCH_CONTENDER c[2] = {
        {.name = "local", .op = raw_sign, .arg = lk},
        {.name = "remote", .op = raw_sign, .arg = rk},
    };
    if (bench_interleave(c, 2, bench.rounds)) {
        bench_row("tokens", "raw C_Sign, local SoftHSM2", bench_rate(&c[0], bench.rounds), "sig/s",
                  -1, -1, NULL);
        bench_row("tokens", "raw C_Sign, the same token through p11-kit server (Unix socket)",
                  bench_rate(&c[1], bench.rounds), "sig/s", -1,
                  bench_ratio(&c[1], &c[0], bench.rounds), "local");
    }
    bench_contender_free(c, 2);

    /* Handshakes with both long-term keys in the token, through the provider. */
    rctx = bench.have_provider ? remote_ctx() : NULL;
    if (rctx != NULL) {
        local_pair.key_a =
            bench_store_load(bench.libctx, "pkcs11:token=" BENCH_TOKEN ";object=alice", 1);
        local_pair.key_b =
            bench_store_load(bench.libctx, "pkcs11:token=" BENCH_TOKEN ";object=bob", 1);
        remote_pair.key_a = bench_store_load(rctx, "pkcs11:token=" BENCH_TOKEN ";object=alice", 1);
        remote_pair.key_b = bench_store_load(rctx, "pkcs11:token=" BENCH_TOKEN ";object=bob", 1);
        local_pair.sk_fn = remote_pair.sk_fn = ready_s;
        if (local_pair.key_a != NULL && local_pair.key_b != NULL && remote_pair.key_a != NULL &&
            remote_pair.key_b != NULL) {
            BENCH_CONTENDER h[2] = {
                {.name = "local", .op = op_pair, .arg = &local_pair, .per_round = 4},
                {.name = "remote", .op = op_pair, .arg = &remote_pair, .per_round = 4},
            };
            if (bench_interleave(h, 2, bench.rounds)) {
                double lr = bench_rate(&h[0], bench.rounds), rr = bench_rate(&h[1], bench.rounds);
                bench_row("tokens", "handshake latency (S ready), both keys in the local token",
                          1e3 / lr, "ms", -1, -1, NULL);
                bench_row("tokens", "handshake latency (S ready), both keys in the remote token",
                          1e3 / rr, "ms", -1, lr / rr, "local");
            }
            bench_contender_free(h, 2);
        } else {
            bench_ossl_err("remote handshake keys");
        }
        EVP_PKEY_free(local_pair.key_a);
        EVP_PKEY_free(local_pair.key_b);
        EVP_PKEY_free(remote_pair.key_a);
        EVP_PKEY_free(remote_pair.key_b);
    }
end:
    p11c_key_free(rk);
    p11c_module_free(rm);
    OSSL_LIB_CTX_free(rctx);
    if (lk != NULL)
        p11c_key_destroy(lk, NULL);
    p11c_key_free(lk);
    server_stop();
}

/* ---- NSS softokn: the token object against its session copy ---------------- */

static P11C_KEY *nss_key(const char *args, int copies, P11C_MODULE **m)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    if (p11c_module_load_args(P11C_NSS_MODULE, args, m, &err) != CKR_OK) {
        err_print("NSS", &err);
        return NULL;
    }
    p11c_module_set_pin(*m, "1234");
    p11c_module_set_key_copies(*m, copies);
    if (p11c_key_load(*m, "pkcs11:token=" BENCH_TOKEN ";object=alice", P11C_WANT_PRIVATE, &k,
                      &err) != CKR_OK)
        err_print("NSS key", &err);
    return k;
}

static void nss(void)
{
    char dir[4400], cmd[9000], args[8192] = "";
    P11C_MODULE *m1 = NULL, *m2 = NULL, *m3 = NULL;
    P11C_KEY *copy = NULL, *obj = NULL, *hsm = NULL;

    if (access(P11C_NSS_MODULE, R_OK) != 0) {
        bench_note("NSS softokn: not measured (%s missing)", P11C_NSS_MODULE);
        return;
    }
    snprintf(dir, sizeof(dir), "%s/nss", bench.dir);
    snprintf(cmd, sizeof(cmd),
             "P11CHAT_CMD='%s/p11chat' P11CHAT_NSS_MODULE='%s' bash '%s' '%s' '%s' >/dev/null",
             bench.apps_dir, P11C_NSS_MODULE, P11C_MKNSS, dir, BENCH_TOKEN);
    snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " && cat '%s/init-args'", dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL || fgets(args, sizeof(args), p) == NULL || pclose(p) != 0) {
        bench_note("NSS softokn: not measured (%s failed)", P11C_MKNSS);
        return;
    }
    copy = nss_key(args, 1, &m1);
    obj = nss_key(args, 0, &m2);
    if (p11c_module_load(bench.module, &m3, NULL) == CKR_OK) {
        p11c_module_set_pin(m3, "1234");
        p11c_key_load(m3, "pkcs11:token=" BENCH_TOKEN ";object=alice", P11C_WANT_PRIVATE, &hsm,
                      NULL);
    }
    if (copy != NULL && obj != NULL && hsm != NULL) {
        BENCH_CONTENDER c[3] = {
            {.name = "NSS copy", .op = raw_sign, .arg = copy},
            {.name = "NSS object", .op = raw_sign, .arg = obj},
            {.name = "SoftHSM2 copy", .op = raw_sign, .arg = hsm},
        };
        if (bench_interleave(c, 3, bench.rounds)) {
            bench_row("tokens", "raw C_Sign, NSS softokn, session copy (pkcs11-copy-keys = yes)",
                      bench_rate(&c[0], bench.rounds), "sig/s", -1,
                      bench_ratio(&c[0], &c[1], bench.rounds), "object");
            bench_row("tokens", "raw C_Sign, NSS softokn, the token object",
                      bench_rate(&c[1], bench.rounds), "sig/s", -1, -1, NULL);
            bench_row("tokens", "raw C_Sign, SoftHSM2, session copy",
                      bench_rate(&c[2], bench.rounds), "sig/s", -1,
                      bench_ratio(&c[0], &c[2], bench.rounds), "NSS copy/this");
        }
        bench_contender_free(c, 3);
    }
    p11c_key_free(copy);
    p11c_key_free(obj);
    p11c_key_free(hsm);
    p11c_module_free(m1);
    p11c_module_free(m2);
    p11c_module_free(m3);
}

void bench_tokens(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = NULL;
    P11C_TOKEN *t = NULL;

    if (p11c_module_load(bench.module, &m, &err) != CKR_OK ||
        p11c_module_set_pin(m, "1234") != CKR_OK ||
        p11c_token_find(m, "pkcs11:token=" BENCH_TOKEN, &t, &err) != CKR_OK ||
        p11c_token_login(t, NULL, &err) != CKR_OK) {
        err_print("tokens", &err);
        p11c_module_free(m);
        return;
    }
    per_use(m, t);
    remote(t);
    nss();
    p11c_module_free(m);
}
