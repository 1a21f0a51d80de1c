/* Complete handshakes in memory and the attacks from the spec's origin. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "p11c_internal.h"
#include "ptest.h"
#include "session.h"

static const uint8_t known_sec[P11C_SEC_LEN] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64};

/* ---- complete handshakes ---------------------------------------------------- */

static void exchange_and_close(PT_PAIR *p)
{
    static const uint8_t hi[] = "hello Bob";
    static const uint8_t yo[] = "hello Alice";
    uint8_t *big = OPENSSL_malloc(P11C_MAX_DATA);
    int i;

    memset(big, 'x', P11C_MAX_DATA);
    CU_ASSERT_EQUAL(p11c_session_send_data(p->a, hi, sizeof(hi)), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p->a, big, P11C_MAX_DATA), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p->a, p->b), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p->b, yo, sizeof(yo)), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_ack(p->b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p->b, p->a), P11C_OK);
    pt_events_clear(&p->ea);
    pt_events_clear(&p->eb);
    pt_drain(p->a, &p->ea);
    pt_drain(p->b, &p->eb);
    CU_ASSERT_FATAL(p->eb.n == 2 && p->ea.n == 2);
    CU_ASSERT(p->eb.ev[0].type == P11C_EV_DATA && p->eb.ev[0].seq == 0 &&
              p->eb.ev[0].len == sizeof(hi) && memcmp(p->eb.ev[0].data, hi, sizeof(hi)) == 0);
    CU_ASSERT(p->eb.ev[1].type == P11C_EV_DATA && p->eb.ev[1].seq == 1 &&
              p->eb.ev[1].len == P11C_MAX_DATA &&
              memcmp(p->eb.ev[1].data, big, P11C_MAX_DATA) == 0);
    CU_ASSERT(p->ea.ev[0].type == P11C_EV_DATA && p->ea.ev[0].len == sizeof(yo));
    CU_ASSERT(p->ea.ev[1].type == P11C_EV_ACK && p->ea.ev[1].count == 2);
    CU_ASSERT_EQUAL(p11c_session_acked(p->a), 2);
    /* Alice closes, Bob answers, both end cleanly. */
    CU_ASSERT_EQUAL(p11c_session_send_close(p->a, "done"), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p->a, hi, sizeof(hi)), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(pt_deliver(p->a, p->b), P11C_OK);
    CU_ASSERT(p11c_session_closed(p->b));
    CU_ASSERT_EQUAL(pt_deliver(p->b, p->a), P11C_OK);
    CU_ASSERT(p11c_session_closed(p->a));
    pt_events_clear(&p->ea);
    pt_events_clear(&p->eb);
    pt_drain(p->a, &p->ea);
    pt_drain(p->b, &p->eb);
    CU_ASSERT(p->eb.n == 1 && p->eb.ev[0].type == P11C_EV_CLOSE && p->eb.ev[0].count == 2 &&
              p->eb.ev[0].len == 4 && memcmp(p->eb.ev[0].data, "done", 4) == 0);
    CU_ASSERT(p->ea.n == 1 && p->ea.ev[0].type == P11C_EV_CLOSE && p->ea.ev[0].count == 3 &&
              p->ea.ev[0].len == 0);
    for (i = 0; i < 2; i++) {
        P11C_SESSION *s = i ? p->a : p->b;
        CU_ASSERT_EQUAL(p11c_session_transport_end(s), P11C_OK);
        CU_ASSERT_EQUAL(p11c_session_error(s), P11C_OK);
        CU_ASSERT_EQUAL(p11c_session_send_ack(s), P11C_ERR_STATE);
    }
    pt_events_clear(&p->ea);
    pt_drain(p->a, &p->ea);
    CU_ASSERT_EQUAL(p->ea.n, 0); /* no TRUNCATED after a CLOSE */
    OPENSSL_free(big);
}

static void test_handshake_software(void)
{
    PT_PAIR p;
    uint8_t fa[32], fb[32];
    char sa[20], sb[20];

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    p11c_fingerprint(NULL, NULL, p.ka, fa);
    p11c_fingerprint(NULL, NULL, p.kb, fb);
    p11c_fingerprint_short(fa, sa);
    p11c_fingerprint_short(fb, sb);
    CU_ASSERT_FATAL(p.ea.n == 1 && p.eb.n == 1);
    CU_ASSERT(p.ea.ev[0].type == P11C_EV_ESTABLISHED && p.ea.ev[0].trust == P11C_TRUSTED);
    CU_ASSERT_STRING_EQUAL(p.ea.ev[0].peer_id, "Bob");
    CU_ASSERT_STRING_EQUAL(p.ea.ev[0].short_fp, sb);
    CU_ASSERT(memcmp(p.ea.ev[0].fp, fb, 32) == 0);
    CU_ASSERT(p.eb.ev[0].type == P11C_EV_ESTABLISHED && p.eb.ev[0].trust == P11C_TRUSTED);
    CU_ASSERT_STRING_EQUAL(p.eb.ev[0].peer_id, "Alice");
    CU_ASSERT_STRING_EQUAL(p.eb.ev[0].short_fp, sa);
    exchange_and_close(&p);
    pt_pair_free(&p);
}

static void test_handshake_3072(void)
{
    PT_PAIR p;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, pt_key(NULL, "carol3072"));
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    exchange_and_close(&p);
    pt_pair_free(&p);
}

/* No session_key_fn: S is generated in software for the handshake. */
static void test_handshake_keygen(void)
{
    PT_PAIR p;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    pt_pair_new_alice(&p, NULL, NULL, 1);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    exchange_and_close(&p);
    pt_pair_free(&p);
}

static EVP_PKEY *no_key(void *arg)
{
    (void)arg;
    return NULL;
}

static void test_session_key_fn_fails(void)
{
    PT_PAIR p;
    size_t ol;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    pt_pair_new_alice(&p, no_key, NULL, 0);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_CRYPTO);
    CU_ASSERT_PTR_NULL(pt_pop(p.a, &ol));
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_FAILED);
    CU_ASSERT_EQUAL(p11c_session_error(p.a), P11C_ERR_CRYPTO);
    pt_pair_free(&p);
}

/* Threads of this process whose nice value is `nice` (Linux /proc). */
static int threads_at_nice(int nice)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int count = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        buf[n] = '\0';
        /* after "(comm)": state is field 3, nice field 19 */
        char *p = strrchr(buf, ')');
        int field = 2, value = 0;
        for (; p != NULL && *p != '\0' && field < 19; p++) {
            if (*p == ' ')
                field++;
        }
        if (p != NULL && sscanf(p, "%d", &value) == 1 && value == nice)
            count++;
    }
    closedir(d);
    return count;
}

static void test_keypool(void)
{
    P11C_KEYPOOL *pool;
    p11c_err err;
    PT_PAIR p;
    uint8_t *h1 = NULL, *h2 = NULL;
    size_t l1 = 0, l2 = 0;

    CU_ASSERT_PTR_NULL(p11c_keypool_new(NULL, NULL, 0, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    CU_ASSERT_EQUAL(threads_at_nice(19), 0);
    pool = p11c_keypool_new(NULL, NULL, 2, &err);
    CU_ASSERT_FATAL(pool != NULL && err == P11C_OK);
    /* the refilling thread runs at the lowest priority */
    struct timespec ms = {0, 1000000};
    while (p11c_keypool_ready(pool) < 2)
        nanosleep(&ms, NULL);
    CU_ASSERT_EQUAL(threads_at_nice(19), 1);
    for (int round = 0; round < 2; round++) {
        pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
        pt_pair_new_alice(&p, p11c_keypool_take, pool, 1);
        CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
        if (round == 0)
            h1 = pt_pop(p.a, &l1);
        else
            h2 = pt_pop(p.a, &l2);
        CU_ASSERT_EQUAL(p11c_session_recv(p.b, round ? h2 : h1, round ? l2 : l1), P11C_OK);
        CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
        CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
        CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
        CU_ASSERT(p11c_session_established(p.a) && p11c_session_established(p.b));
        pt_pair_free(&p);
    }
    /* Each handshake got its own session key: pub(S) differs. */
    CU_ASSERT_FATAL(h1 != NULL && h2 != NULL && l1 > 300 && l2 > 300);
    CU_ASSERT(memcmp(h1 + 3 + 4 + 270 + 4, h2 + 3 + 4 + 270 + 4, 270) != 0);
    OPENSSL_free(h1);
    OPENSSL_free(h2);
    /* an empty pool: the taker makes its own key at once, a fresh one each time */
    p11c_keypool_free(pool);
    pool = p11c_keypool_new(NULL, NULL, 1, &err);
    CU_ASSERT_FATAL(pool != NULL);
    EVP_PKEY *k[3];
    for (int i = 0; i < 3; i++) {
        k[i] = p11c_keypool_take(pool);
        CU_ASSERT_FATAL(k[i] != NULL);
        CU_ASSERT_EQUAL(EVP_PKEY_get_bits(k[i]), 2048);
    }
    CU_ASSERT(EVP_PKEY_eq(k[0], k[1]) != 1 && EVP_PKEY_eq(k[1], k[2]) != 1 &&
              EVP_PKEY_eq(k[0], k[2]) != 1);
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(k[i]);
    p11c_keypool_free(pool);
    CU_ASSERT_EQUAL(threads_at_nice(19), 0);
    p11c_keypool_free(NULL);
    CU_ASSERT_PTR_NULL(p11c_keypool_take(NULL));
}

/* After fork(), the child never takes a key its parent's pool made: it
 * discards them and makes its own; the parent still has both of its keys. */
static void test_keypool_fork(void)
{
    P11C_KEYPOOL *pool = p11c_keypool_new(NULL, NULL, 2, NULL);
    struct timespec ms = {0, 1000000};
    uint8_t *der = NULL, child_der[2048];
    size_t dlen = 0;
    ssize_t got = 0;
    int fds[2], st = 0;
    pid_t pid;

    CU_ASSERT_FATAL(pool != NULL);
    while (p11c_keypool_ready(pool) < 2)
        nanosleep(&ms, NULL); /* full: the pool's thread is idle */
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        EVP_PKEY *k;
        size_t ready = p11c_keypool_ready(pool);

        close(fds[0]);
        k = p11c_keypool_take(pool);
        if (ready == 0 && k != NULL && p11c_pub_der(k, &der, &dlen) == P11C_OK &&
            write(fds[1], der, dlen) == (ssize_t)dlen)
            st = 0;
        else
            st = 1;
        EVP_PKEY_free(k);
        OPENSSL_free(der);
        p11c_keypool_free(pool);
        _exit(st);
    }
    close(fds[1]);
    while (got < (ssize_t)sizeof(child_der)) {
        ssize_t n = read(fds[0], child_der + got, sizeof(child_der) - (size_t)got);
        if (n <= 0)
            break;
        got += n;
    }
    close(fds[0]);
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(got > 256);
    /* The parent's two keys are still there, and neither is the child's. */
    CU_ASSERT_EQUAL(p11c_keypool_ready(pool), 2);
    for (int i = 0; i < 2; i++) {
        EVP_PKEY *k = p11c_keypool_take(pool);
        CU_ASSERT_FATAL(k != NULL);
        CU_ASSERT_FATAL(p11c_pub_der(k, &der, &dlen) == P11C_OK);
        CU_ASSERT(dlen != (size_t)got || memcmp(der, child_der, dlen) != 0);
        OPENSSL_free(der);
        EVP_PKEY_free(k);
    }
    p11c_keypool_free(pool);
}

/* A pool whose generation fails hands out NULL rather than blocking, with the
 * worker's reason in the taker's error queue, and tries again after each. */
static void test_keypool_failure(void)
{
    p11c_err err;
    P11C_KEYPOOL *pool = p11c_keypool_new(NULL, "provider=nonexistent", 1, &err);
    PT_PAIR p;

    CU_ASSERT_FATAL(pool != NULL);
    for (int attempt = 0; attempt < 3; attempt++) {
        ERR_clear_error();
        CU_ASSERT_PTR_NULL(p11c_keypool_take(pool));
        CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
        CU_ASSERT_EQUAL(p11c_keypool_ready(pool), 0);
    }
    /* Through a session: P11C_ERR_CRYPTO, and the queue says why. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    pt_pair_new_alice(&p, p11c_keypool_take, pool, 0);
    ERR_clear_error();
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_CRYPTO);
    CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
    ERR_clear_error();
    pt_pair_free(&p);
    p11c_keypool_free(pool);
}

/* The fuzz harnesses' session copy (p11c_session_test_dup): a copy acts as
 * its original would, on its own state; queues must be empty. */
static void test_session_dup(void)
{
    PT_PAIR p;
    uint8_t *rec, *again;
    size_t len, alen;
    PT_EVENTS e = {0};

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_PTR_NULL(p11c_session_test_dup(NULL));
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    pt_drain(p.a, &p.ea);
    pt_drain(p.b, &p.eb);

    /* an established Bob, copied: both open Alice's next record alike */
    P11C_SESSION *b2 = p11c_session_test_dup(p.b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"twice", 5), P11C_OK);
    CU_ASSERT_PTR_NULL(p11c_session_test_dup(p.a)); /* the record still queued */
    rec = pt_pop(p.a, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
    CU_ASSERT_EQUAL(p11c_session_recv(b2, rec, len), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, rec, len), P11C_OK);
    for (int i = 0; i < 2; i++) {
        pt_events_clear(&e);
        pt_drain(i == 0 ? b2 : p.b, &e);
        int d = pt_find(&e, P11C_EV_DATA);
        CU_ASSERT_FATAL(d >= 0);
        CU_ASSERT_EQUAL(e.ev[d].len, 5);
        CU_ASSERT_EQUAL(memcmp(e.ev[d].data, "twice", 5), 0);
    }
    pt_events_clear(&e);
    /* the copy's own sequence: a replay to it fails it, not the original */
    CU_ASSERT_NOT_EQUAL(p11c_session_recv(b2, rec, len), P11C_OK);
    OPENSSL_free(rec);
    /* the copy freed, the original goes on, and sends with IVs of its own */
    CU_ASSERT_EQUAL(p11c_session_send_data(b2, (const uint8_t *)"x", 1), P11C_ERR_FAILED);
    p11c_session_free(b2);
    b2 = p11c_session_test_dup(p.b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b2);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.b, (const uint8_t *)"back", 4), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(b2, (const uint8_t *)"back", 4), P11C_OK);
    rec = pt_pop(p.b, &len);
    again = pt_pop(b2, &alen);
    CU_ASSERT_FATAL(rec != NULL && again != NULL && len == alen);
    /* same header, different IV */
    CU_ASSERT_EQUAL(memcmp(rec, again, 24), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(rec + 24, again + 24, 16), 0);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, rec, len), P11C_OK);
    OPENSSL_free(rec);
    OPENSSL_free(again);
    p11c_session_free(b2);
    pt_pair_free(&p);
}

static void test_config_errors(void)
{
    EVP_PKEY *k = pt_key(NULL, "alice"), *small = NULL;
    P11C_CONFIG c = {0};
    p11c_err err = P11C_OK;
    EVP_PKEY_CTX *kc;

    CU_ASSERT_PTR_NULL(p11c_session_new(NULL, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.identity = "Alice";
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err)); /* no key */
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.key = k;
    c.identity = "Al\x1bice";
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_IDENTITY);
    c.identity = "Alice";
    c.policy = (p11c_policy)7;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.policy = P11C_POLICY_STRICT;
    c.role = (p11c_role)5;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.role = P11C_RESPONDER;
    kc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY_keygen_init(kc);
    EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 1024);
    EVP_PKEY_keygen(kc, &small);
    EVP_PKEY_CTX_free(kc);
    c.key = small;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_KEY);
    EVP_PKEY_free(small);
    EVP_PKEY_free(k);
    CU_ASSERT_STRING_EQUAL(p11c_strerror(P11C_ERR_MAC), "record MAC does not verify");
    CU_ASSERT_STRING_EQUAL(p11c_strerror((p11c_err)999), "unknown error");
    CU_ASSERT_STRING_EQUAL(p11c_trust_result_name(P11C_UNKNOWN), "NOT IN TRUST STORE");
}

/* ---- bit flips of the handshake messages ------------------------------------- */

/* Alice up to WAIT_REPLY / WAIT_FINISH with recorded values, Bob likewise. */
typedef struct rec_hs {
    uint8_t *hello, *reply, *confirm, *finish;
    size_t hl, rl, cl, fl;
    P11C_TEST_HOOKS ha, hb;
    EVP_PKEY *ka, *kb;
    P11C_TRUST *ta, *tb;
    json_t *j;
    uint8_t *sig_a, *sig_b, *sig_c, *sec, *enc_sec;
} REC_HS;

static uint8_t *field(const uint8_t *msg, size_t len, size_t skip, int idx, size_t *flen)
{
    P11C_RCUR c;
    const uint8_t *f = NULL;

    p11c_rcur_init(&c, msg + skip, len - skip);
    for (int i = 0; i <= idx; i++)
        CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &f, flen) == P11C_OK);
    return OPENSSL_memdup(f, *flen);
}

static void rec_hs_load(REC_HS *r)
{
    uint8_t fa[32], fb[32];
    size_t n;

    memset(r, 0, sizeof(*r));
    r->j = tu_vector_load("protocol/handshake.json");
    r->hello = tu_json_hex(r->j, "hello", &r->hl);
    r->reply = tu_json_hex(r->j, "reply", &r->rl);
    r->confirm = tu_json_hex(r->j, "confirm", &r->cl);
    r->finish = tu_json_hex(r->j, "finish", &r->fl);
    r->sec = tu_json_hex(r->j, "sec", &n);
    r->sig_a = field(r->hello, r->hl, 3, 3, &r->ha.sig_a_len);
    r->sig_c = field(r->confirm, r->cl, 2, 0, &r->ha.sig_c_len);
    r->sig_b = field(r->reply, r->rl, 2, 3, &r->hb.sig_b_len);
    r->enc_sec = field(r->reply, r->rl, 2, 1, &r->hb.enc_sec_len);
    r->ha.sig_a = r->sig_a;
    r->ha.sig_c = r->sig_c;
    r->hb.sig_b = r->sig_b;
    r->hb.enc_sec = r->enc_sec;
    r->hb.sec = r->sec;
    r->ka = pt_key(NULL, "alice");
    r->kb = pt_key(NULL, "bob");
    r->ta = p11c_trust_new();
    r->tb = p11c_trust_new();
    p11c_fingerprint(NULL, NULL, r->ka, fa);
    p11c_fingerprint(NULL, NULL, r->kb, fb);
    p11c_trust_add(r->ta, "Bob", fb);
    p11c_trust_add(r->tb, "Alice", fa);
}

static void rec_hs_free(REC_HS *r)
{
    free(r->hello);
    free(r->reply);
    free(r->confirm);
    free(r->finish);
    free(r->sec);
    OPENSSL_free(r->sig_a);
    OPENSSL_free(r->sig_b);
    OPENSSL_free(r->sig_c);
    OPENSSL_free(r->enc_sec);
    EVP_PKEY_free(r->ka);
    EVP_PKEY_free(r->kb);
    p11c_trust_free(r->ta);
    p11c_trust_free(r->tb);
    json_decref(r->j);
}

/* keys.json's session key, parsed once; each session takes its own reference. */
static EVP_PKEY *cached_session_key(void *arg)
{
    static EVP_PKEY *k;

    (void)arg;
    if (k == NULL)
        k = pt_key(NULL, "session"); /* kept for the life of the program */
    return EVP_PKEY_up_ref(k) ? k : NULL;
}

static P11C_SESSION *rec_session(REC_HS *r, p11c_role role, int upto)
{
    P11C_CONFIG c = {0};
    P11C_SESSION *s;
    size_t ol;
    uint8_t *o;

    c.role = role;
    c.key = role == P11C_INITIATOR ? r->ka : r->kb;
    c.identity = role == P11C_INITIATOR ? "Alice" : "Bob";
    c.trust = role == P11C_INITIATOR ? r->ta : r->tb;
    c.session_key_fn = cached_session_key;
    s = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(s != NULL);
    p11c_session_set_test_hooks(s, role == P11C_INITIATOR ? &r->ha : &r->hb);
    CU_ASSERT_FATAL(p11c_session_start(s) == P11C_OK);
    if (role == P11C_INITIATOR && upto >= 1)
        CU_ASSERT_FATAL(p11c_session_recv(s, r->reply, r->rl) == P11C_OK);
    if (role == P11C_RESPONDER && upto >= 1)
        CU_ASSERT_FATAL(p11c_session_recv(s, r->hello, r->hl) == P11C_OK);
    while ((o = pt_pop(s, &ol)) != NULL)
        OPENSSL_free(o);
    return s;
}

#if defined(__SANITIZE_ADDRESS__)
#define FLIP_SAMPLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLIP_SAMPLED 1
#endif
#endif

/*
 * Under the sanitizers (ten times slower) every bit of the message header, of
 * every length prefix and of the last 32 bytes is flipped, and every bit of
 * every 16th byte elsewhere; the normal build flips every bit.
 */
static int flip_byte(const uint8_t *msg, size_t len, size_t i)
{
#ifdef FLIP_SAMPLED
    size_t off = msg[1] == P11C_MSG_HELLO ? 3 : 2;

    if (i < off || i + 32 >= len || i % 16 == 0)
        return 1;
    while (off + 4 <= len) {
        if (i >= off && i < off + 4)
            return 1;
        off += 4 + p11c_get_u32(msg + off);
    }
    return 0;
#else
    (void)msg;
    (void)len;
    (void)i;
    return 1;
#endif
}

/*
 * Flips every bit of `msg` and feeds each copy to a fresh session in the state
 * that expects it: every one must fail the session, send nothing and report an
 * error event. The unflipped message must pass.
 */
static void flip_all(REC_HS *r, p11c_role role, int upto, const uint8_t *msg, size_t len)
{
    uint8_t *m = OPENSSL_memdup(msg, len);
    size_t rejected = 0, flipped = 0, ol;
    P11C_SESSION *s;

    s = rec_session(r, role, upto);
    CU_ASSERT_EQUAL(p11c_session_recv(s, m, len), P11C_OK);
    p11c_session_free(s);
    for (size_t bit = 0; bit < len * 8; bit++) {
        p11c_err e;
        uint8_t *o;

        if (!flip_byte(msg, len, bit / 8))
            continue;
        flipped++;
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        s = rec_session(r, role, upto);
        e = p11c_session_recv(s, m, len);
        o = pt_pop(s, &ol);
        if (e != P11C_OK && e != P11C_ERR_CRYPTO && o == NULL && p11c_session_error(s) == e)
            rejected++;
        else
            fprintf(stderr, "bit %zu of a %zu-byte message: %s\n", bit, len, p11c_strerror(e));
        OPENSSL_free(o);
        p11c_session_free(s);
        m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(rejected, flipped);
#ifndef FLIP_SAMPLED
    CU_ASSERT_EQUAL(flipped, len * 8);
#endif
    OPENSSL_free(m);
}

static void test_flip_hello(void)
{
    REC_HS r;
    rec_hs_load(&r);
    flip_all(&r, P11C_RESPONDER, 0, r.hello, r.hl);
    rec_hs_free(&r);
}

static void test_flip_reply(void)
{
    REC_HS r;
    rec_hs_load(&r);
    flip_all(&r, P11C_INITIATOR, 0, r.reply, r.rl);
    rec_hs_free(&r);
}

static void test_flip_confirm(void)
{
    REC_HS r;
    rec_hs_load(&r);
    flip_all(&r, P11C_RESPONDER, 1, r.confirm, r.cl);
    rec_hs_free(&r);
}

static void test_flip_finish(void)
{
    REC_HS r;
    rec_hs_load(&r);
    flip_all(&r, P11C_INITIATOR, 1, r.finish, r.fl);
    rec_hs_free(&r);
}

/* Every bit flip of a record in a live session is rejected; the session goes on. */
static void test_flip_records_in_session(void)
{
    PT_PAIR p;
    uint8_t *rec, msg[40];
    size_t rl, rejected = 0;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    memset(msg, 'm', sizeof(msg));
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, msg, sizeof(msg)), P11C_OK);
    rec = pt_pop(p.a, &rl);
    CU_ASSERT_FATAL(rec != NULL);
    for (size_t bit = 0; bit < rl * 8; bit++) {
        PT_EVENTS ev = {0};

        rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CU_ASSERT_EQUAL(p11c_session_recv(p.b, rec, rl), P11C_OK);
        pt_drain(p.b, &ev);
        if (ev.n == 1 && ev.ev[0].type == P11C_EV_REJECTED)
            rejected++;
        pt_events_clear(&ev);
        rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CU_ASSERT_EQUAL(rejected, rl * 8);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, rec, rl), P11C_OK);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(pt_find(&p.eb, P11C_EV_DATA) >= 0);
    OPENSSL_free(rec);
    pt_pair_free(&p);
}

/* ---- record attacks ---------------------------------------------------------- */

static uint8_t *send_one(P11C_SESSION *s, const char *text, size_t *len)
{
    CU_ASSERT_FATAL(p11c_session_send_data(s, (const uint8_t *)text, strlen(text)) == P11C_OK);
    return pt_pop(s, len);
}

static void expect_single(P11C_SESSION *s, p11c_event_type type, p11c_err err)
{
    PT_EVENTS ev = {0};

    pt_drain(s, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == type && ev.ev[0].error == err);
    if (!(ev.n == 1 && ev.ev[0].type == type && ev.ev[0].error == err))
        fprintf(stderr, "expected event %d/%d, got %zu events, first %d/%d\n", type, err, ev.n,
                ev.n ? (int)ev.ev[0].type : -1, ev.n ? (int)ev.ev[0].error : -1);
    pt_events_clear(&ev);
}

/* A record that fails a check: under the window policy reported and the
 * session goes on; under the strict policy the session ends. Either way
 * OpenSSL's error queue stays empty. */
static void expect_refused(P11C_SESSION *s, int window, const uint8_t *rec, size_t len,
                           p11c_err why)
{
    ERR_clear_error();
    CU_ASSERT_EQUAL(p11c_session_recv(s, rec, len), window ? P11C_OK : why);
    /* A protocol rejection, not an OpenSSL failure: nothing in the queue. */
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    expect_single(s, window ? P11C_EV_REJECTED : P11C_EV_ERROR, why);
    CU_ASSERT_EQUAL(p11c_session_established(s), window);
    CU_ASSERT_EQUAL(p11c_session_send_ack(s), window ? P11C_OK : P11C_ERR_FAILED);
}

static void test_replay(void)
{
    for (int w = 0; w < 2; w++) {
        PT_PAIR p;
        uint8_t *r0;
        size_t l0;

        pt_pair_init(&p, NULL, w ? P11C_POLICY_WINDOW : P11C_POLICY_STRICT, NULL, NULL);
        CU_ASSERT_FATAL(pt_pair_handshake(&p));
        r0 = send_one(p.a, "once", &l0);
        CU_ASSERT_EQUAL(p11c_session_recv(p.b, r0, l0), P11C_OK);
        expect_single(p.b, P11C_EV_DATA, P11C_OK);
        expect_refused(p.b, w, r0, l0, P11C_ERR_REPLAY);
        OPENSSL_free(r0);
        pt_pair_free(&p);
    }
}

/* A record sent back to its sender: the direction byte gives it away. */
static void test_reflection(void)
{
    for (int w = 0; w < 2; w++) {
        PT_PAIR p;
        uint8_t *r0;
        size_t l0;

        pt_pair_init(&p, NULL, w ? P11C_POLICY_WINDOW : P11C_POLICY_STRICT, NULL, NULL);
        CU_ASSERT_FATAL(pt_pair_handshake(&p));
        r0 = send_one(p.a, "mirror", &l0);
        expect_refused(p.a, w, r0, l0, P11C_ERR_DIRECTION);
        OPENSSL_free(r0);
        pt_pair_free(&p);
    }
}

static void test_drop_strict(void)
{
    PT_PAIR p;
    uint8_t *r0, *r1;
    size_t l0, l1;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    r0 = send_one(p.a, "zero", &l0);
    r1 = send_one(p.a, "one", &l1);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r1, l1), P11C_ERR_SEQ);
    expect_single(p.b, P11C_EV_ERROR, P11C_ERR_SEQ);
    OPENSSL_free(r0);
    OPENSSL_free(r1);
    pt_pair_free(&p);
}

static void test_reorder_strict(void)
{
    PT_PAIR p;
    uint8_t *r0, *r1, *r2;
    size_t l0, l1, l2;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    r0 = send_one(p.a, "zero", &l0);
    r1 = send_one(p.a, "one", &l1);
    r2 = send_one(p.a, "two", &l2);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r0, l0), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r2, l2), P11C_ERR_SEQ);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r1, l1), P11C_ERR_FAILED);
    OPENSSL_free(r0);
    OPENSSL_free(r1);
    OPENSSL_free(r2);
    pt_pair_free(&p);
}

/* Genuine records arriving 2, 0, 1 (spec section 9.1): 0 and 1 reported
 * missing when 2 arrives, then each delivered marked late with its number;
 * nothing is late under the strict policy or in order. */
static void test_late_records(void)
{
    PT_PAIR p;
    uint8_t *r[3];
    size_t l[3];
    PT_EVENTS ev = {0};
    static const int order[] = {2, 0, 1};

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    r[0] = send_one(p.a, "m0", &l[0]);
    r[1] = send_one(p.a, "m1", &l[1]);
    r[2] = send_one(p.a, "m2", &l[2]);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[order[i]], l[order[i]]), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT_FATAL(ev.n == 4);
    CU_ASSERT(ev.ev[0].type == P11C_EV_MISSING && ev.ev[0].seq == 0 && ev.ev[0].count == 2);
    CU_ASSERT(ev.ev[1].type == P11C_EV_DATA && ev.ev[1].seq == 2 && !ev.ev[1].late);
    CU_ASSERT(ev.ev[2].type == P11C_EV_DATA && ev.ev[2].seq == 0 && ev.ev[2].late &&
              memcmp(ev.ev[2].data, "m0", 2) == 0);
    CU_ASSERT(ev.ev[3].type == P11C_EV_DATA && ev.ev[3].seq == 1 && ev.ev[3].late &&
              memcmp(ev.ev[3].data, "m1", 2) == 0);
    pt_events_clear(&ev);
    /* An ACK overtaken by a DATA is late too. */
    CU_ASSERT_EQUAL(p11c_session_send_ack(p.a), P11C_OK);
    OPENSSL_free(r[0]);
    r[0] = pt_pop(p.a, &l[0]);
    OPENSSL_free(r[1]);
    r[1] = send_one(p.a, "m4", &l[1]);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[1], l[1]), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[0], l[0]), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT_FATAL(ev.n == 3);
    CU_ASSERT(ev.ev[0].type == P11C_EV_MISSING && ev.ev[0].seq == 3 && ev.ev[0].count == 1);
    CU_ASSERT(ev.ev[1].type == P11C_EV_DATA && ev.ev[1].seq == 4 && !ev.ev[1].late);
    CU_ASSERT(ev.ev[2].type == P11C_EV_ACK && ev.ev[2].seq == 3 && ev.ev[2].late);
    pt_events_clear(&ev);
    for (int i = 0; i < 3; i++)
        OPENSSL_free(r[i]);
    pt_pair_free(&p);

    /* In order, and under strict: never late. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    r[0] = send_one(p.a, "m0", &l[0]);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[0], l[0]), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_DATA && !ev.ev[0].late);
    pt_events_clear(&ev);
    OPENSSL_free(r[0]);
    pt_pair_free(&p);
}

static void test_drop_reorder_window(void)
{
    PT_PAIR p;
    uint8_t *r[70];
    size_t l[70];
    PT_EVENTS ev = {0};
    char text[16];

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    for (int i = 0; i < 70; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        r[i] = send_one(p.a, text, &l[i]);
    }
    /* 0, then 3: 1 and 2 reported missing, 3 delivered. */
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[0], l[0]), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[3], l[3]), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT_FATAL(ev.n == 3);
    CU_ASSERT(ev.ev[0].type == P11C_EV_DATA && ev.ev[0].seq == 0);
    CU_ASSERT(ev.ev[1].type == P11C_EV_MISSING && ev.ev[1].seq == 1 && ev.ev[1].count == 2);
    CU_ASSERT(ev.ev[2].type == P11C_EV_DATA && ev.ev[2].seq == 3 && ev.ev[2].len == 2 &&
              memcmp(ev.ev[2].data, "m3", 2) == 0);
    pt_events_clear(&ev);
    /* 2 arrives late: accepted once; again: replay. */
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[2], l[2]), P11C_OK);
    expect_single(p.b, P11C_EV_DATA, P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[2], l[2]), P11C_OK);
    expect_single(p.b, P11C_EV_REJECTED, P11C_ERR_REPLAY);
    /* Bob's ack counts records received without a gap: 1 is still missing. */
    CU_ASSERT_EQUAL(p11c_session_send_ack(p.b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    pt_drain(p.a, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ACK && ev.ev[0].count == 1);
    pt_events_clear(&ev);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[1], l[1]), P11C_OK);
    expect_single(p.b, P11C_EV_DATA, P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_ack(p.b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    pt_drain(p.a, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ACK && ev.ev[0].count == 4);
    pt_events_clear(&ev);
    /* Newest 69: 5 is 64 behind (accepted), 4 is 65 behind (too old). */
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[69], l[69]), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT(ev.n == 2 && ev.ev[0].type == P11C_EV_MISSING && ev.ev[0].seq == 4 &&
              ev.ev[0].count == 65 && ev.ev[1].type == P11C_EV_DATA && ev.ev[1].seq == 69);
    pt_events_clear(&ev);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[5], l[5]), P11C_OK);
    expect_single(p.b, P11C_EV_DATA, P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r[4], l[4]), P11C_OK);
    expect_single(p.b, P11C_EV_REJECTED, P11C_ERR_REPLAY);
    CU_ASSERT(p11c_session_established(p.b));
    for (int i = 0; i < 70; i++)
        OPENSSL_free(r[i]);
    pt_pair_free(&p);
}

static void test_truncation(void)
{
    PT_PAIR p;
    uint8_t *r0;
    size_t l0;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    r0 = send_one(p.a, "last words", &l0);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r0, l0), P11C_OK);
    expect_single(p.b, P11C_EV_DATA, P11C_OK);
    /* The transport ends without a CLOSE: reported as truncated, never as a clean end. */
    CU_ASSERT_EQUAL(p11c_session_transport_end(p.b), P11C_OK);
    expect_single(p.b, P11C_EV_TRUNCATED, P11C_OK);
    CU_ASSERT(p11c_session_closed(p.b));
    CU_ASSERT_EQUAL(p11c_session_send_data(p.b, (const uint8_t *)"x", 1), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, r0, l0), P11C_ERR_STATE);
    /* Alice sent CLOSE but never got Bob's: still truncated. */
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, NULL), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_transport_end(p.a), P11C_OK);
    pt_events_clear(&p.ea);
    pt_drain(p.a, &p.ea);
    CU_ASSERT(p.ea.n == 1 && p.ea.ev[0].type == P11C_EV_TRUNCATED);
    OPENSSL_free(r0);
    pt_pair_free(&p);
}

static void test_truncation_in_handshake(void)
{
    PT_PAIR p;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_transport_end(p.b), P11C_OK);
    expect_single(p.b, P11C_EV_TRUNCATED, P11C_OK);
    CU_ASSERT(!p11c_session_established(p.b));
    pt_pair_free(&p);
}

/*
 * Identity misbinding: Carol takes Alice's HELLO and re-signs Alice's session
 * key as her own. Bob, who knows Carol, answers; Alice rejects the REPLY because
 * Bob signed Carol's key and identity, not hers. Carol cannot go on either: she
 * does not hold S.
 */
/* A session with `key` as `id`, trusting `trust`, expecting the peer
 * `expect` (NULL: any). */
static P11C_SESSION *expect_session(p11c_role role, EVP_PKEY *key, const char *id,
                                    P11C_TRUST *trust, const char *expect)
{
    P11C_CONFIG c = {0};
    p11c_err err;
    P11C_SESSION *s;

    c.role = role;
    c.key = key;
    c.identity = id;
    c.trust = trust;
    c.expected_peer = expect;
    c.session_key_fn = pt_session_key_fn;
    s = p11c_session_new(&c, &err);
    CU_ASSERT_FATAL(s != NULL);
    return s;
}

/* Spec section 7: with an expected peer, a trusted Carol who answers where
 * Alice wanted Bob, or who calls Bob wanting Alice, is refused as if unknown,
 * and nothing is sent to her. */
static void test_expected_peer(void)
{
    EVP_PKEY *ka = pt_key(NULL, "alice"), *kb = pt_key(NULL, "bob"),
             *kc = pt_key(NULL, "carol3072");
    uint8_t fa[P11C_FP_LEN], fb[P11C_FP_LEN], fc[P11C_FP_LEN];
    P11C_TRUST *t = p11c_trust_new();
    P11C_SESSION *a, *b;
    PT_EVENTS ev = {0};
    uint8_t *m;
    size_t ml;
    P11C_CONFIG bad = {0};
    p11c_err err;

    CU_ASSERT_FATAL(p11c_fingerprint(NULL, NULL, ka, fa) == P11C_OK);
    CU_ASSERT_FATAL(p11c_fingerprint(NULL, NULL, kb, fb) == P11C_OK);
    CU_ASSERT_FATAL(p11c_fingerprint(NULL, NULL, kc, fc) == P11C_OK);
    /* One store that trusts all three, so that only the expectation refuses. */
    CU_ASSERT_FATAL(p11c_trust_add(t, "Alice", fa) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(t, "Bob", fb) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(t, "Carol", fc) == P11C_OK);

    /* Alice wants Bob; Carol answers. */
    a = expect_session(P11C_INITIATOR, ka, "Alice", t, "Bob");
    b = expect_session(P11C_RESPONDER, kc, "Carol", t, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(a), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(a, b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(b, a), P11C_ERR_UNKNOWN_PEER);
    CU_ASSERT_PTR_NULL(m = pt_pop(a, &ml)); /* no CONFIRM: Carol gets nothing */
    OPENSSL_free(m);
    pt_drain(a, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ERROR &&
              ev.ev[0].error == P11C_ERR_UNKNOWN_PEER && strcmp(ev.ev[0].peer_id, "Carol") == 0 &&
              ev.ev[0].trust == P11C_TRUSTED && memcmp(ev.ev[0].fp, fc, P11C_FP_LEN) == 0);
    pt_events_clear(&ev);
    CU_ASSERT_EQUAL(p11c_session_send_data(a, (const uint8_t *)"x", 1), P11C_ERR_FAILED);
    p11c_session_free(a);
    p11c_session_free(b);

    /* Bob wants Alice; Carol calls. */
    a = expect_session(P11C_INITIATOR, kc, "Carol", t, NULL);
    b = expect_session(P11C_RESPONDER, kb, "Bob", t, "Alice");
    CU_ASSERT_EQUAL(p11c_session_start(a), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(a, b), P11C_ERR_UNKNOWN_PEER);
    CU_ASSERT_PTR_NULL(m = pt_pop(b, &ml)); /* no REPLY */
    OPENSSL_free(m);
    pt_drain(b, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].error == P11C_ERR_UNKNOWN_PEER &&
              strcmp(ev.ev[0].peer_id, "Carol") == 0);
    pt_events_clear(&ev);
    p11c_session_free(a);
    p11c_session_free(b);

    /* The peer expected is accepted. */
    a = expect_session(P11C_INITIATOR, ka, "Alice", t, "Bob");
    b = expect_session(P11C_RESPONDER, kb, "Bob", t, "Alice");
    CU_ASSERT_EQUAL(p11c_session_start(a), P11C_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(pt_deliver(i % 2 ? b : a, i % 2 ? a : b), P11C_OK);
    CU_ASSERT(p11c_session_established(a) && p11c_session_established(b));
    p11c_session_free(a);
    p11c_session_free(b);

    /* An expected name that is no identity: refused at once. */
    bad.role = P11C_INITIATOR;
    bad.key = ka;
    bad.identity = "Alice";
    bad.expected_peer = "Bob ";
    CU_ASSERT_PTR_NULL(p11c_session_new(&bad, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_IDENTITY);

    p11c_trust_free(t);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(kc);
}

static void test_misbinding(void)
{
    PT_PAIR p;
    EVP_PKEY *kc = pt_key(NULL, "carol3072");
    uint8_t fc[32], *hello, *pub_c = NULL, *sig = NULL, *reply;
    size_t hl, pclen = 0, siglen = 0, rl, pub_s_len;
    const uint8_t *pub_a, *pub_s;
    size_t pub_a_len;
    P11C_RCUR c;
    P11C_WBUF tbs, msg;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    p11c_fingerprint(NULL, NULL, kc, fc);
    CU_ASSERT_FATAL(p11c_trust_add(p.tb, "Carol", fc) == P11C_OK);
    CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
    hello = pt_pop(p.a, &hl);
    p11c_rcur_init(&c, hello + 3, hl - 3);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &pub_a, &pub_a_len) == P11C_OK);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &pub_s, &pub_s_len) == P11C_OK);
    CU_ASSERT_FATAL(p11c_pub_der(kc, &pub_c, &pclen) == P11C_OK);
    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    p11c_tbs_a(&tbs, pub_c, pclen, pub_s, pub_s_len, (const uint8_t *)"Carol", 5);
    CU_ASSERT_FATAL(p11c_pss_sign(NULL, NULL, kc, tbs.buf, tbs.len, &sig, &siglen) == P11C_OK);
    p11c_wbuf_u8(&msg, 1);
    p11c_wbuf_u8(&msg, 1);
    p11c_wbuf_u8(&msg, 1);
    p11c_wbuf_vec(&msg, pub_c, pclen);
    p11c_wbuf_vec(&msg, pub_s, pub_s_len);
    p11c_wbuf_vec(&msg, (const uint8_t *)"Carol", 5);
    p11c_wbuf_vec(&msg, sig, siglen);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, msg.buf, msg.len), P11C_OK);
    pt_drain(p.b, &p.eb);
    CU_ASSERT_EQUAL(p.eb.n, 0);
    reply = pt_pop(p.b, &rl);
    CU_ASSERT_FATAL(reply != NULL);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_ERR_SIGNATURE);
    CU_ASSERT_EQUAL(p11c_session_error(p.a), P11C_ERR_SIGNATURE);
    CU_ASSERT(!p11c_session_established(p.a));
    OPENSSL_free(reply);
    OPENSSL_free(hello);
    OPENSSL_free(sig);
    OPENSSL_free(pub_c);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    EVP_PKEY_free(kc);
    pt_pair_free(&p);
}

static void test_trust_mismatch(void)
{
    uint8_t fc[32], fa[32];
    EVP_PKEY *kc = pt_key(NULL, "carol3072");

    p11c_fingerprint(NULL, NULL, kc, fc);
    /* Bob knows "Alice" with another key. */
    for (int side = 0; side < 3; side++) {
        PT_PAIR p;
        p11c_err e;

        pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
        p11c_fingerprint(NULL, NULL, p.ka, fa);
        if (side == 0)
            p11c_trust_add(p.tb, "Alice", fc);
        else if (side == 1) /* Alice's key known under another name */
            p11c_trust_remove(p.tb, "Alice"), p11c_trust_add(p.tb, "Alicia", fa);
        else
            p11c_trust_add(p.ta, "Bob", fc);
        CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
        e = pt_deliver(p.a, p.b);
        if (side < 2) {
            CU_ASSERT_EQUAL(e, P11C_ERR_TRUST_MISMATCH);
            CU_ASSERT_EQUAL(p11c_session_error(p.b), P11C_ERR_TRUST_MISMATCH);
        } else {
            CU_ASSERT_EQUAL(e, P11C_OK);
            CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_ERR_TRUST_MISMATCH);
            CU_ASSERT_EQUAL(p11c_session_error(p.a), P11C_ERR_TRUST_MISMATCH);
            CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK); /* nothing was sent */
        }
        pt_pair_free(&p);
    }
    EVP_PKEY_free(kc);
}

static void test_unknown_peer(void)
{
    for (int known_only = 0; known_only < 2; known_only++) {
        PT_PAIR p;
        P11C_CONFIG c = {0};

        pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
        p11c_session_free(p.b);
        c.role = P11C_RESPONDER;
        c.key = p.kb;
        c.identity = "Bob";
        c.trust = NULL; /* empty store */
        c.known_only = known_only;
        p.b = p11c_session_new(&c, NULL);
        if (known_only) {
            CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
            CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_ERR_UNKNOWN_PEER);
            CU_ASSERT_PTR_NULL(pt_pop(p.b, &(size_t){0}));
        } else {
            CU_ASSERT_FATAL(pt_pair_handshake(&p));
            CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].trust == P11C_UNKNOWN);
            CU_ASSERT(p.ea.n == 1 && p.ea.ev[0].trust == P11C_TRUSTED);
        }
        pt_pair_free(&p);
    }
}

/* Records before the handshake has completed, on either side. */
static void test_early_records(void)
{
    PT_PAIR p;
    uint8_t *hello, *reply, *confirm, *finish, *rec;
    size_t hl, rl, cl, fl, l;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"x", 1), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, NULL), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(p11c_session_send_ack(p.b), P11C_ERR_STATE);
    hello = pt_pop(p.a, &hl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_OK);
    reply = pt_pop(p.b, &rl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_OK);
    confirm = pt_pop(p.a, &cl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, confirm, cl), P11C_OK);
    finish = pt_pop(p.b, &fl);
    /* Bob may send now; Alice has not checked FINISH yet. */
    rec = send_one(p.b, "too early", &l);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, rec, l), P11C_ERR_EARLY_RECORD);
    expect_single(p.a, P11C_EV_ERROR, P11C_ERR_EARLY_RECORD);
    OPENSSL_free(rec);
    pt_pair_free(&p);

    /* Bob, waiting for CONFIRM, gets a record-typed message. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_OK);
    rec = OPENSSL_zalloc(P11C_REC_OVERHEAD);
    rec[0] = 1;
    rec[1] = P11C_REC_DATA;
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, rec, P11C_REC_OVERHEAD), P11C_ERR_EARLY_RECORD);
    OPENSSL_free(rec);
    pt_pair_free(&p);
    OPENSSL_free(hello);
    OPENSSL_free(reply);
    OPENSSL_free(confirm);
    OPENSSL_free(finish);
}

/* Handshake messages out of order, twice, or after the handshake. */
static void test_unexpected_messages(void)
{
    PT_PAIR p;
    uint8_t *hello;
    size_t hl;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, (const uint8_t *)"\x01\x01", 2), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_STATE);
    hello = pt_pop(p.a, &hl);
    /* Alice gets her own HELLO back. */
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, hello, hl), P11C_ERR_TYPE);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, 1), P11C_ERR_DECODE);
    pt_pair_free(&p);

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    /* A HELLO replayed into an established session is not a record: its length,
     * checked first, does not add up. */
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_ERR_RECORD_LENGTH);
    pt_pair_free(&p);

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_OK);
    expect_single(p.b, P11C_EV_REJECTED, P11C_ERR_RECORD_LENGTH);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, NULL, 0), P11C_OK);
    expect_single(p.b, P11C_EV_REJECTED, P11C_ERR_RECORD_LENGTH);
    pt_pair_free(&p);
    OPENSSL_free(hello);
}

/* A HELLO with one field of 8193 bytes that is really there. */
static void test_oversized_fields(void)
{
    EVP_PKEY *kb = pt_key(NULL, "bob");
    uint8_t *big = OPENSSL_zalloc(8193);

    for (int which = 0; which < 4; which++) {
        P11C_CONFIG c = {0};
        P11C_SESSION *s;
        P11C_WBUF w;

        c.role = P11C_RESPONDER;
        c.key = kb;
        c.identity = "Bob";
        s = p11c_session_new(&c, NULL);
        p11c_wbuf_init(&w);
        p11c_wbuf_u8(&w, 1);
        p11c_wbuf_u8(&w, 1);
        p11c_wbuf_u8(&w, 1);
        for (int f = 0; f < 4; f++)
            p11c_wbuf_vec(&w, big, f == which ? 8193 : 8);
        CU_ASSERT_EQUAL(p11c_session_recv(s, w.buf, w.len), P11C_ERR_FIELD_SIZE);
        p11c_wbuf_cleanup(&w);
        p11c_session_free(s);
    }
    OPENSSL_free(big);
    EVP_PKEY_free(kb);
}

/* A pair whose Sec the test knows, so that it can forge correctly-MACed records. */
static void known_pair(PT_PAIR *p, p11c_policy policy, P11C_REC *forge)
{
    P11C_TEST_HOOKS h = {0};
    uint8_t ek[32], mk[32];

    pt_pair_init(p, NULL, policy, NULL, NULL);
    h.sec = known_sec;
    p11c_session_set_test_hooks(p->b, &h);
    CU_ASSERT_FATAL(pt_pair_handshake(p));
    CU_ASSERT_FATAL(p11c_kdf(NULL, NULL, known_sec, ek, mk) == P11C_OK);
    CU_ASSERT_FATAL(p11c_rec_init(forge, NULL, NULL, ek, mk) == P11C_OK);
}

static p11c_err feed_forged(P11C_REC *f, P11C_SESSION *to, uint8_t type, uint8_t dir, uint64_t seq,
                            uint64_t ack, const char *m)
{
    P11C_REC_HDR h = {type, dir, m ? (uint32_t)strlen(m) : 0, seq, ack};
    uint8_t iv[16] = {0}, *rec = NULL;
    size_t rl = 0;
    p11c_err e;

    CU_ASSERT_FATAL(p11c_rec_seal(f, &h, iv, (const uint8_t *)m, &rec, &rl) == P11C_OK);
    e = p11c_session_recv(to, rec, rl);
    OPENSSL_free(rec);
    return e;
}

/* Authentic records that break the rules: bad acks, seq beyond 2^32, bad CLOSE text. */
static void test_authentic_violations(void)
{
    PT_PAIR p;
    P11C_REC f;

    /* ack beyond what Alice sent (nothing yet) */
    known_pair(&p, P11C_POLICY_WINDOW, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_DATA, 1, 0, 1, "hi"), P11C_ERR_ACK);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    /* decreasing ack */
    known_pair(&p, P11C_POLICY_STRICT, &f);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"a", 1), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"b", 1), P11C_OK);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_ACK, 1, 0, 2, NULL), P11C_OK);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_ACK, 1, 1, 1, NULL), P11C_ERR_ACK);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    /* seq at 2^32 */
    known_pair(&p, P11C_POLICY_WINDOW, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_DATA, 1, P11C_SEQ_LIMIT, 0, "x"), P11C_ERR_LIMIT);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    /* CLOSE whose reason has a control character */
    known_pair(&p, P11C_POLICY_STRICT, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_CLOSE, 1, 0, 0, "b\x07ye"), P11C_ERR_DECODE);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    /* CLOSE reasons under the rules of identities (spec section 6): a format
     * character or a line separator ends the session as malformed; edge
     * spaces are allowed. */
    known_pair(&p, P11C_POLICY_STRICT, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_CLOSE, 1, 0, 0, "bye\xe2\x80\xae"),
                    P11C_ERR_DECODE);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    known_pair(&p, P11C_POLICY_STRICT, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_CLOSE, 1, 0, 0, "bye\xe2\x80\xa8ok"),
                    P11C_ERR_DECODE);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    known_pair(&p, P11C_POLICY_STRICT, &f);
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_CLOSE, 1, 0, 0, " bye "), P11C_OK);
    expect_single(p.a, P11C_EV_CLOSE, P11C_OK);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
    /* An ACK record with a body, a CLOSE longer than 255, a DATA longer than 65536:
     * rejected on length before the MAC. */
    known_pair(&p, P11C_POLICY_WINDOW, &f);
    {
        uint8_t *rec = OPENSSL_zalloc(P11C_REC_OVERHEAD + P11C_MAX_DATA + 1);
        rec[0] = 1;
        rec[1] = P11C_REC_DATA;
        rec[2] = 1;
        p11c_put_u32(rec + 4, P11C_MAX_DATA + 1);
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD + P11C_MAX_DATA + 1, P11C_ERR_RECORD_LENGTH);
        rec[1] = P11C_REC_CLOSE;
        p11c_put_u32(rec + 4, 256);
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD + 256, P11C_ERR_RECORD_LENGTH);
        rec[1] = P11C_REC_ACK;
        p11c_put_u32(rec + 4, 1);
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD + 1, P11C_ERR_RECORD_LENGTH);
        rec[1] = 0x13; /* unknown type */
        p11c_put_u32(rec + 4, 0);
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD, P11C_ERR_RECORD_HEADER);
        rec[1] = P11C_REC_ACK;
        rec[3] = 1; /* reserved byte */
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD, P11C_ERR_RECORD_HEADER);
        rec[3] = 0;
        expect_refused(p.a, 1, rec, P11C_REC_OVERHEAD, P11C_ERR_MAC);
        OPENSSL_free(rec);
    }
    /* Forged records that are right are accepted: the forging key is the real one. */
    CU_ASSERT_EQUAL(feed_forged(&f, p.a, P11C_REC_DATA, 1, 0, 0, "ok"), P11C_OK);
    expect_single(p.a, P11C_EV_DATA, P11C_OK);
    p11c_rec_cleanup(&f);
    pt_pair_free(&p);
}

/* Sends refused before the handshake, after close, past the limits; the session stays usable. */
static void test_send_limits(void)
{
    PT_PAIR p;
    uint8_t *big = OPENSSL_zalloc(P11C_MAX_DATA + 1);
    char reason[300];
    PT_EVENTS ev = {0};

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, big, 1), P11C_ERR_STATE);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, big, P11C_MAX_DATA + 1), P11C_ERR_LIMIT);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, NULL, 5), P11C_ERR_ARG);
    memset(reason, 'r', sizeof(reason));
    reason[256] = '\0';
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, reason), P11C_ERR_LIMIT);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, "bad\nreason"), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, "bad\xe2\x80\x8breason"), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, "bad\xe2\x80\xa9reason"), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, big, 0), P11C_OK); /* empty DATA is fine */
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    /* Record numbers: the last one below 2^32 is kept for CLOSE. */
    p11c_session_test_set_send_seq(p.a, P11C_SEQ_LIMIT - 1);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, big, 1), P11C_ERR_LIMIT);
    CU_ASSERT_EQUAL(p11c_session_send_ack(p.a), P11C_ERR_LIMIT);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, "numbers exhausted"), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, NULL), P11C_ERR_STATE);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    pt_drain(p.b, &ev);
    CU_ASSERT_FATAL(ev.n == 3);
    CU_ASSERT(ev.ev[0].type == P11C_EV_DATA && ev.ev[0].len == 0);
    CU_ASSERT(ev.ev[1].type == P11C_EV_MISSING && ev.ev[1].seq == 1 &&
              ev.ev[1].count == P11C_SEQ_LIMIT - 2);
    CU_ASSERT(ev.ev[2].type == P11C_EV_CLOSE && ev.ev[2].len == 17);
    pt_events_clear(&ev);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT(p11c_session_closed(p.a) && p11c_session_closed(p.b));
    OPENSSL_free(big);
    pt_pair_free(&p);
}

/* Random bytes, and random corruptions of real messages, never crash or hang a
 * session in any state; every outcome is a clear error or a report. */
static void test_garbage(void)
{
    uint32_t x = 12345;
    uint8_t buf[600];

    for (int round = 0; round < 300; round++) {
        PT_PAIR p;
        size_t len;
        p11c_err e;
        int state = round % 3;

        pt_pair_init(&p, NULL, round % 2 ? P11C_POLICY_WINDOW : P11C_POLICY_STRICT, NULL, NULL);
        if (state == 2)
            CU_ASSERT_FATAL(pt_pair_handshake(&p));
        for (size_t i = 0; i < sizeof(buf); i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        len = (x >> 8) % sizeof(buf);
        if (round % 5 == 0 && len > 2) {
            buf[0] = 1; /* plausible version and type */
            buf[1] = (uint8_t)(state == 2 ? 0x10 + round % 3 : 1 + round % 4);
        }
        e = p11c_session_recv(state == 1 ? p.a : p.b, buf, len);
        if (state == 1) {
            CU_ASSERT_EQUAL(e, P11C_ERR_STATE); /* Alice not started */
        } else if (state == 0) {
            CU_ASSERT(e != P11C_OK && e != P11C_ERR_CRYPTO && e != P11C_ERR_MEMORY);
        } else {
            CU_ASSERT(round % 2 ? e == P11C_OK : (e != P11C_OK && e != P11C_ERR_CRYPTO));
        }
        pt_pair_free(&p);
    }
    CU_ASSERT_EQUAL(p11c_session_recv(NULL, buf, 1), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_start(NULL), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_send_data(NULL, buf, 1), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_transport_end(NULL), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_session_error(NULL), P11C_ERR_ARG);
    p11c_session_free(NULL);
}

/* S lives until Sec is decrypted; the transcript until the handshake ends; the
 * record keys until the session ends or fails. */
static void test_secret_lifetimes(void)
{
    PT_PAIR p;
    uint8_t *hello, *reply, *confirm;
    size_t hl, rl, cl;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_PTR_NOT_NULL(p.a->S);
    hello = pt_pop(p.a, &hl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_OK);
    CU_ASSERT_PTR_NULL(p.b->S); /* Bob's copy of pub(S) goes after OAEP */
    CU_ASSERT(p.b->rec_ready);
    reply = pt_pop(p.b, &rl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_OK);
    CU_ASSERT_PTR_NULL(p.a->S); /* destroyed as soon as Sec is out */
    CU_ASSERT_PTR_NOT_NULL(p.a->transcript);
    confirm = pt_pop(p.a, &cl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, confirm, cl), P11C_OK);
    CU_ASSERT_PTR_NULL(p.b->transcript);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT_PTR_NULL(p.a->transcript);
    CU_ASSERT(p.a->rec_ready && p.b->rec_ready);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.a, NULL), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT(!p.b->rec_ready && p.b->rec.mac == NULL); /* keys wiped at the end */
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT(!p.a->rec_ready);
    OPENSSL_free(hello);
    OPENSSL_free(reply);
    OPENSSL_free(confirm);
    pt_pair_free(&p);

    /* A failure wipes at once. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, (const uint8_t *)"\x02", 1), P11C_ERR_RECORD_LENGTH);
    CU_ASSERT(!p.a->rec_ready && p.a->S == NULL && p.a->transcript == NULL);
    pt_pair_free(&p);
}

/* ---- OpenSSL's error queue -------------------------------------------------- */

/* The public half of a keys.json key: a long-term key that cannot sign. */
static EVP_PKEY *public_only(const char *name)
{
    EVP_PKEY *k = pt_key(NULL, name), *pub = NULL;
    uint8_t *der = NULL;
    size_t len = 0;

    CU_ASSERT_FATAL(p11c_pub_der(k, &der, &len) == P11C_OK);
    CU_ASSERT_FATAL(p11c_key_from_der(NULL, NULL, der, len, &pub) == P11C_OK);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return pub;
}

/* 1 when the session's last event is ERROR with `err`. */
static int failed_with(P11C_SESSION *s, PT_EVENTS *e, p11c_err err)
{
    pt_events_clear(e);
    pt_drain(s, e);
    return e->n > 0 && e->ev[e->n - 1].type == P11C_EV_ERROR && e->ev[e->n - 1].error == err &&
           p11c_session_error(s) == err;
}

/*
 * A failed signature leaves the entries its provider raised (with a token:
 * the CKR) in OpenSSL's queue, in both roles, after the session has failed.
 */
static void test_sign_failure_keeps_error_queue(void)
{
    PT_PAIR p;
    EVP_PKEY *pub = public_only("alice");
    uint8_t *sig = NULL;
    size_t siglen = 0;

    ERR_clear_error();
    CU_ASSERT_EQUAL(p11c_pss_sign(NULL, NULL, pub, (const uint8_t *)"x", 1, &sig, &siglen),
                    P11C_ERR_CRYPTO);
    CU_ASSERT_PTR_NULL(sig);
    CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
    ERR_clear_error();

    /* Alice cannot sign HELLO. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, pub, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_CRYPTO);
    CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
    CU_ASSERT(failed_with(p.a, &p.ea, P11C_ERR_CRYPTO));
    CU_ASSERT_PTR_NULL(pt_pop(p.a, &siglen));
    pt_pair_free(&p);
    ERR_clear_error();

    /* Bob cannot sign REPLY. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, public_only("bob"));
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_ERR_CRYPTO);
    CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
    CU_ASSERT(failed_with(p.b, &p.eb, P11C_ERR_CRYPTO));
    CU_ASSERT_PTR_NULL(pt_pop(p.b, &siglen));
    pt_pair_free(&p);
    ERR_clear_error();
}

/*
 * Expected failures that are answers (a signature that does not verify, a
 * record rejected under the window policy) drop only what their own call
 * raised: an entry already in the queue stays, and nothing is added.
 */
static void test_expected_failures_keep_older_errors(void)
{
    PT_PAIR p;
    uint8_t *hello, *rec;
    size_t hl, rl;
    unsigned long sentinel;
    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    hello = pt_pop(p.a, &hl);
    CU_ASSERT_FATAL(hello != NULL);
    hello[hl - 1] ^= 1; /* last byte of Sig_A */
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_USER, 42, "older entry");
    sentinel = ERR_peek_last_error();
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_ERR_SIGNATURE);
    CU_ASSERT_EQUAL(ERR_get_error(), sentinel);
    CU_ASSERT_EQUAL(ERR_get_error(), 0);
    OPENSSL_free(hello);
    pt_pair_free(&p);

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"hi", 2), P11C_OK);
    rec = pt_pop(p.a, &rl);
    CU_ASSERT_FATAL(rec != NULL);
    rec[rl - 1] ^= 0x80;
    ERR_raise_data(ERR_LIB_USER, 42, "older entry");
    sentinel = ERR_peek_last_error();
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, rec, rl), P11C_OK); /* rejected, goes on */
    CU_ASSERT_EQUAL(ERR_get_error(), sentinel);
    CU_ASSERT_EQUAL(ERR_get_error(), 0);
    OPENSSL_free(rec);
    pt_pair_free(&p);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_session", NULL, NULL);
    CU_add_test(s, "handshake, software keys, data, ack, close", test_handshake_software);
    CU_add_test(s, "handshake with a 3072-bit key, window policy", test_handshake_3072);
    CU_add_test(s, "handshake with S generated in software", test_handshake_keygen);
    CU_add_test(s, "session_key_fn returning NULL", test_session_key_fn_fails);
    CU_add_test(s, "session-key pool", test_keypool);
    CU_add_test(s, "session-key pool whose generation fails", test_keypool_failure);
    CU_add_test(s, "session copies for the fuzz harnesses", test_session_dup);
    CU_add_test(s, "configuration errors", test_config_errors);
    CU_add_test(s, "every bit flip of HELLO rejected", test_flip_hello);
    CU_add_test(s, "every bit flip of REPLY rejected", test_flip_reply);
    CU_add_test(s, "every bit flip of CONFIRM rejected", test_flip_confirm);
    CU_add_test(s, "every bit flip of FINISH rejected", test_flip_finish);
    CU_add_test(s, "every bit flip of a record rejected in session", test_flip_records_in_session);
    CU_add_test(s, "replay (strict fatal, window reported)", test_replay);
    CU_add_test(s, "reflection", test_reflection);
    CU_add_test(s, "drop under strict", test_drop_strict);
    CU_add_test(s, "reorder under strict", test_reorder_strict);
    CU_add_test(s, "drop and reorder under window", test_drop_reorder_window);
    CU_add_test(s, "records arriving 2, 0, 1 delivered late", test_late_records);
    CU_add_test(s, "truncation", test_truncation);
    CU_add_test(s, "truncation during the handshake", test_truncation_in_handshake);
    CU_add_test(s, "identity misbinding", test_misbinding);
    CU_add_test(s, "session-key pool after fork", test_keypool_fork);
    CU_add_test(s, "expected peer: anyone else refused", test_expected_peer);
    CU_add_test(s, "trust mismatch", test_trust_mismatch);
    CU_add_test(s, "unknown peer, known-only and not", test_unknown_peer);
    CU_add_test(s, "records before the handshake ends", test_early_records);
    CU_add_test(s, "unexpected handshake messages", test_unexpected_messages);
    CU_add_test(s, "oversized handshake fields", test_oversized_fields);
    CU_add_test(s, "authentic records breaking the rules", test_authentic_violations);
    CU_add_test(s, "sends refused and limits", test_send_limits);
    CU_add_test(s, "random input in every state", test_garbage);
    CU_add_test(s, "S, transcript and record keys wiped when done", test_secret_lifetimes);
    CU_add_test(s, "a failed signature leaves its errors in the queue",
                test_sign_failure_keeps_error_queue);
    CU_add_test(s, "rejections drop only their own errors",
                test_expected_failures_keep_older_errors);
    return tu_main();
}
