/*
 * A remote token: SoftHSM2 behind a real `p11-kit server` on a Unix socket in
 * the test's own directory, reached through p11-kit-client.so. The server is
 * killed (its whole process group, with SIGKILL) and started again, also
 * while a thread signs: the library re-opens the module and carries on, says
 * plainly when the token is gone, and never reports a signature that the
 * token did not make (every one reported is verified by OpenSSL).
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ALICE TH_TOKEN_URI ";object=alice;type=private"

static char sock[4200], logpath[4200];
static int server = -1;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int server_start(void)
{
    server = tu_p11kit_server_start(tu_softhsm_module(), sock, TH_TOKEN_URI, logpath);
    return server > 0 ? 0 : -1;
}

static void server_kill(void)
{
    tu_p11kit_server_kill(server);
    server = -1;
}

static P11C_MODULE *client(void)
{
    P11C_MODULE *m = NULL;
    P11C_ERR err = {0};
    if (p11c_module_load(tu_p11kit_client(), &m, &err) != CKR_OK) {
        char buf[512];
        fprintf(stderr, "client: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
        return NULL;
    }
    p11c_module_set_pin(m, TU_USER_PIN);
    return m;
}

static int have_rpc(void)
{
    if (tu_p11kit_client() == NULL) {
        CU_PASS("skipped");
        return 0;
    }
    return 1;
}

/* Gone, back: the next signature after a restart works; while the server is
 * down, the error says the token is gone, after a bounded time. */
static void test_restart(void)
{
    P11C_ERR err = {0};
    char buf[512];
    if (!have_rpc())
        return;
    CU_ASSERT_EQUAL_FATAL(server_start(), 0);
    P11C_MODULE *m = client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    P11C_KEY *k = NULL;
    CU_ASSERT_EQUAL_FATAL(p11c_key_load(m, ALICE, P11C_WANT_PRIVATE, &k, &err), CKR_OK);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));

    server_kill();
    time_t t0 = time(NULL);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(time(NULL) - t0 < 10);
    p11c_err_string(&err, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "the token is gone"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "re-opened 3 times"));
    if (strstr(buf, "the token is gone") == NULL)
        fprintf(stderr, "down: %s\n", buf);

    CU_ASSERT_EQUAL_FATAL(server_start(), 0);
    unsigned long before = p11c_module_recoveries(m);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(p11c_module_recoveries(m) > before);
    if (!th_sign_ok(k, &err))
        fprintf(stderr, "after restart: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
    p11c_key_free(k);
    p11c_module_free(m);
    server_kill();
}

struct signer {
    P11C_KEY *k;
    atomic_int stop;
    atomic_int ok, failed, bad;
};

static void *sign_loop(void *arg)
{
    struct signer *sg = arg;
    while (!atomic_load(&sg->stop)) {
        uint8_t dgst[32], sig[512];
        size_t siglen = sizeof(sig);
        unsigned int dl = 0;
        P11C_ERR err = {0};
        P11C_MECH mech = {
            .type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .mgf = CKG_MGF1_SHA256, .salt_len = 32};
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "m%d", atomic_load(&sg->ok) + atomic_load(&sg->failed));
        EVP_Digest(msg, (size_t)n, dgst, &dl, EVP_sha256(), NULL);
        if (p11c_key_sign(sg->k, &mech, dgst, sizeof(dgst), sig, &siglen, &err) == CKR_OK) {
            /* reported done: it must be a signature the token made */
            if (th_verify(sg->k, EVP_sha256(), 1, 32, dgst, sizeof(dgst), sig, siglen))
                atomic_fetch_add(&sg->ok, 1);
            else
                atomic_fetch_add(&sg->bad, 1);
        } else {
            atomic_fetch_add(&sg->failed, 1);
        }
    }
    return NULL;
}

/* Killed while a thread signs, then started again: the thread goes on. */
static void test_killed_mid_run(void)
{
    P11C_ERR err = {0};
    if (!have_rpc())
        return;
    CU_ASSERT_EQUAL_FATAL(server_start(), 0);
    P11C_MODULE *m = client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct signer sg = {0};
    CU_ASSERT_EQUAL_FATAL(p11c_key_load(m, ALICE, P11C_WANT_PRIVATE, &sg.k, &err), CKR_OK);
    pthread_t th;
    pthread_create(&th, NULL, sign_loop, &sg);
    while (atomic_load(&sg.ok) < 20)
        sleep_ms(5);
    server_kill();
    sleep_ms(100);
    CU_ASSERT_EQUAL(server_start(), 0);
    int at_restart = atomic_load(&sg.ok);
    for (int i = 0; i < 400 && atomic_load(&sg.ok) < at_restart + 20; i++)
        sleep_ms(10);
    atomic_store(&sg.stop, 1);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(atomic_load(&sg.bad), 0);
    CU_ASSERT_TRUE(atomic_load(&sg.ok) >= at_restart + 20);
    CU_ASSERT_TRUE(p11c_module_recoveries(m) >= 1);
    fprintf(stderr, "[%d signed, %d failed while the server was away, %lu re-openings] ",
            atomic_load(&sg.ok), atomic_load(&sg.failed), p11c_module_recoveries(m));
    p11c_key_free(sg.k);
    p11c_module_free(m);
    server_kill();
}

int main(void)
{
    /* p11-kit-client writes to the socket of a server that may be dead:
     * as any program using a remote token must, SIGPIPE is ignored. */
    signal(SIGPIPE, SIG_IGN);
    const char *dir = tu_token_make("pkcs11_remote", 1);
    snprintf(sock, sizeof(sock), "%s/p11-kit.sock", dir);
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    char addr[4300];
    snprintf(addr, sizeof(addr), "unix:path=%s", sock);
    setenv("P11_KIT_SERVER_ADDRESS", addr, 1);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_remote", NULL, NULL);
    CU_add_test(s, "server killed and restarted", test_restart);
    CU_add_test(s, "killed while a thread signs", test_killed_mid_run);
    int rc = tu_main();
    server_kill();
    return rc;
}
