/*
 * Allocation failures in the record channel: every OpenSSL allocation made
 * while an established window-policy session sends, receives, rejects and
 * closes is made to fail in turn. Each call must then either do its work or
 * fail the session with P11C_ERR_MEMORY (or P11C_ERR_CRYPTO when OpenSSL
 * itself ran out); never crash, leak, or swallow a record without a word.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "p11c_internal.h"
#include "ptest.h"

static long fail_at = -1; /* the allocation (counted from 1) that fails; -1: none */
static long count;

static void *t_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (fail_at >= 0 && ++count == fail_at)
        return NULL;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (fail_at >= 0 && ++count == fail_at)
        return NULL;
    return realloc(p, n);
}

static void t_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

static int acceptable(p11c_err e)
{
    return e == P11C_OK || e == P11C_ERR_MEMORY || e == P11C_ERR_CRYPTO;
}

/* The events of s: how many REJECTED, and whether an ERROR says `err`. */
static void tally(P11C_SESSION *s, size_t *rejected, int *error_seen)
{
    P11C_EVENT ev;

    while (p11c_session_next_event(s, &ev)) {
        if (ev.type == P11C_EV_REJECTED)
            (*rejected)++;
        if (ev.type == P11C_EV_ERROR)
            *error_seen = 1;
        p11c_event_clear(&ev);
    }
}

/* One run with allocation `at` failing; returns 1 when that allocation was reached. */
static int run(long at)
{
    PT_PAIR p;
    uint8_t *rec;
    size_t rl, rejected = 0;
    int error_seen = 0;
    p11c_err e;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_FATAL(p11c_session_send_data(p.a, (const uint8_t *)"tampered", 8) == P11C_OK);
    rec = pt_pop(p.a, &rl);
    CU_ASSERT_FATAL(rec != NULL);
    rec[rl - 1] ^= 1;
    pt_events_clear(&p.eb);

    count = 0;
    fail_at = at;
    /* A tampered record: reported, or the session fails; never silence. */
    e = p11c_session_recv(p.b, rec, rl);
    CU_ASSERT(acceptable(e));
    tally(p.b, &rejected, &error_seen);
    if (e == P11C_OK) {
        CU_ASSERT_EQUAL(rejected, 1);
    } else { /* one allocation fails, so the ERROR event after it can be made */
        CU_ASSERT(p11c_session_error(p.b) == e && p11c_session_closed(p.b) && error_seen);
    }
    /* Data both ways and a close: each step works or fails the session for good. */
    e = p11c_session_send_data(p.a, (const uint8_t *)"hello", 5);
    CU_ASSERT(acceptable(e) || e == P11C_ERR_FAILED);
    e = pt_deliver(p.a, p.b);
    CU_ASSERT(acceptable(e) || e == P11C_ERR_FAILED || e == P11C_ERR_STATE);
    e = p11c_session_send_close(p.b, "bye");
    CU_ASSERT(acceptable(e) || e == P11C_ERR_FAILED);
    e = pt_deliver(p.b, p.a);
    CU_ASSERT(acceptable(e) || e == P11C_ERR_FAILED || e == P11C_ERR_STATE);
    fail_at = -1;

    for (int side = 0; side < 2; side++) {
        P11C_SESSION *s = side ? p.b : p.a;
        p11c_err err = p11c_session_error(s);
        CU_ASSERT(err == P11C_OK || err == P11C_ERR_MEMORY || err == P11C_ERR_CRYPTO);
        if (err != P11C_OK)
            CU_ASSERT_EQUAL(p11c_session_send_ack(s), P11C_ERR_FAILED); /* sticky */
    }
    ERR_clear_error();
    OPENSSL_free(rec);
    pt_pair_free(&p);
    return count >= at;
}

static void test_record_channel_allocations(void)
{
    long at;

    for (at = 1; at < 400 && run(at); at++)
        ;
    fprintf(stderr, "(%ld allocations) ", at - 1);
    CU_ASSERT(at > 5);   /* the channel does allocate */
    CU_ASSERT(at < 400); /* and a run with no failure was reached */
}

/* keys.json's session key, loaded once: loading it cannot fail mid-sweep. */
static EVP_PKEY *session_key;

static EVP_PKEY *shared_session_key(void *arg)
{
    (void)arg;
    return EVP_PKEY_up_ref(session_key) ? session_key : NULL;
}

/*
 * A handshake fails closed when memory runs out. OpenSSL does not always say
 * that an RSA operation failed for want of memory (often it raises nothing),
 * so such a failure may read as a signature that does not verify, a secret
 * that does not decrypt or an unreadable key: still a failed handshake.
 */
static int fails_closed(p11c_err e)
{
    return acceptable(e) || e == P11C_ERR_SIGNATURE || e == P11C_ERR_SECRET || e == P11C_ERR_KEY;
}

/* The keys of the sweep: NULL for keys.json's alice and bob (suite 0x01), or
 * handshake_suite2.json's names (suite 0x02, S its session_p256). */
static const char *sweep_a, *sweep_b;

/* One handshake with allocation `at` failing: both end established, or the
 * failing side has failed for good; returns 1 when that allocation was reached. */
static int run_handshake(long at)
{
    PT_PAIR p;
    int established;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, sweep_a ? pt_key(NULL, sweep_a) : NULL,
                 sweep_b ? pt_key(NULL, sweep_b) : NULL);
    pt_pair_new_alice(&p, shared_session_key, NULL, 1);
    count = 0;
    fail_at = at;
    established = pt_pair_handshake(&p);
    fail_at = -1;
    if (!established) {
        p11c_err ea = p11c_session_error(p.a), eb = p11c_session_error(p.b);
        if (!(fails_closed(ea) && fails_closed(eb) && (ea != P11C_OK || eb != P11C_OK)))
            fprintf(stderr, "\n  allocation %ld: Alice %s, Bob %s", at, p11c_strerror(ea),
                    p11c_strerror(eb));
        /* Someone failed with a reason; a peer left waiting has not failed. */
        CU_ASSERT(fails_closed(ea) && fails_closed(eb) && (ea != P11C_OK || eb != P11C_OK));
        if (ea != P11C_OK)
            CU_ASSERT_EQUAL(p11c_session_send_ack(p.a), P11C_ERR_FAILED);
        if (eb != P11C_OK)
            CU_ASSERT_EQUAL(p11c_session_send_ack(p.b), P11C_ERR_FAILED);
    }
    ERR_clear_error();
    pt_pair_free(&p);
    return count >= at;
}

static void handshake_sweep(void)
{
    long at;

    for (at = 1; at < 5000 && run_handshake(at); at++)
        ;
    EVP_PKEY_free(session_key);
    fprintf(stderr, "(%ld allocations) ", at - 1);
    CU_ASSERT(at > 50);
    CU_ASSERT(at < 5000);
}

static void test_handshake_allocations(void)
{
    sweep_a = sweep_b = NULL;
    session_key = pt_key(NULL, "session");
    handshake_sweep();
}

/* The same in suite 0x02: EC keys, a P-256 S, Bob's fresh E, the ECDH and Sec. */
static void test_handshake_allocations_suite2(void)
{
    sweep_a = "alice_p256";
    sweep_b = "bob_p384";
    session_key = pt_key(NULL, "session_p256");
    handshake_sweep();
}

int main(void)
{
    CU_pSuite s;

    /* Before anything allocates through OpenSSL. */
    if (!CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free))
        return 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_alloc", NULL, NULL);
    CU_add_test(s, "every allocation of the record channel fails in turn",
                test_record_channel_allocations);
    CU_add_test(s, "every allocation of a handshake fails in turn", test_handshake_allocations);
    CU_add_test(s, "every allocation of a suite 0x02 handshake fails in turn",
                test_handshake_allocations_suite2);
    return tu_main();
}
