/* p11chat with EC keys (suite 0x02) over real TCP on loopback, with software
 * (PEM) keys: fingerprints and trust of EC keys, chats between an EC and an
 * RSA key in both directions, --suite, and a peer that speaks only suite 0x01. */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include "apps_util.h"
#include "p11chat.h"
#include "testutil.h"

#define W 20000 /* ms: the wait for any one thing to happen */

#define FP_ALICE_P256 "c078d5692418df146dfd0c4bbcdaabc10f5379efc4405223bbdf871534c86bdc"
#define FP_BOB_P384   "d3995b4093673a34f0de117e8ee600c17b5e25833cb3210b13330fe2a8fd63ab"

static const char *alice_ec, *bob_ec, *alice_rsa, *bob_rsa;
static const char *trust_a, *trust_b;

/* Both trust stores made with 'p11chat trust add --key', from the public PEMs. */
static int setup(void)
{
    static const struct {
        const char **store, *file, *name, *key;
    } adds[] = {
        {&trust_a, "trust-alice", "bob", "bob_p384"},
        {&trust_b, "trust-bob", "alice", "alice_p256"},
    };
    alice_ec = ta_key_pem("alice_p256");
    bob_ec = ta_key_pem("bob_p384");
    alice_rsa = ta_key_pem("alice");
    bob_rsa = ta_key_pem("bob");
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
        *adds[i].store = ta_path(adds[i].file);
        if (ta_run(NULL, NULL, NULL, W, "trust", "add", adds[i].name, "--key",
                   ta_pub_pem(adds[i].key), "--trust", *adds[i].store, NULL) != 0)
            return 1;
    }
    return 0;
}

static void test_fingerprint_and_trust(void)
{
    char *out = NULL, *err = NULL;

    CU_ASSERT_EQUAL(ta_run(NULL, &out, &err, W, "fingerprint", "--key", alice_ec, NULL), 0);
    CU_ASSERT_STRING_EQUAL(out, "short: c078:d569:2418:df14\nfull:  " FP_ALICE_P256 "\n");
    free(out);
    free(err);
    CU_ASSERT_EQUAL(
        ta_run(NULL, &out, &err, W, "fingerprint", "--key", ta_pub_pem("bob_p384"), NULL), 0);
    CU_ASSERT_STRING_EQUAL(out, "short: d399:5b40:9367:3a34\nfull:  " FP_BOB_P384 "\n");
    free(out);
    free(err);
    /* The stores setup made hold the EC fingerprints. */
    CU_ASSERT_EQUAL(ta_run(NULL, &out, &err, W, "trust", "list", "--trust", trust_b, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "alice"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, FP_ALICE_P256));
    free(out);
    free(err);
}

/* Bob listens with lkey, Alice connects with ckey; a line each way, then a clean close. */
static void chat(const char *lkey, const char *ltrust, const char *ckey, const char *ctrust,
                 const char *suite_opt, const char *want_suite)
{
    TPROC l, c;
    char port[32];
    int p = tp_listen(&l, "--key", lkey, "--id", "bob", "--trust", ltrust, NULL);

    CU_ASSERT(p > 0);
    snprintf(port, sizeof(port), "127.0.0.1:%d", p);
    if (suite_opt != NULL)
        tp_p11chat(&c, "connect", port, "--key", ckey, "--id", "alice", "--trust", ctrust,
                   "--suite", suite_opt, NULL);
    else
        tp_p11chat(&c, "connect", port, "--key", ckey, "--id", "alice", "--trust", ctrust, NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "trusted: 'alice' ", W));
    CU_ASSERT(tp_wait_for(&c, 2, "trusted: 'bob' ", W));
    CU_ASSERT(tp_wait_for(&l, 2, want_suite, W));
    CU_ASSERT(tp_wait_for(&c, 2, want_suite, W));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, ": secure session\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, ": secure session\n"));
    tp_puts(&c, "hello from alice\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> hello from alice\n", W));
    tp_puts(&l, "hello from bob\n");
    CU_ASSERT(tp_wait_for(&c, 1, "bob> hello from bob\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> hello from alice\n");
    CU_ASSERT_STRING_EQUAL(c.obuf, "bob> hello from bob\n");
    tp_free(&l);
    tp_free(&c);
}

static void test_ec_to_ec(void)
{
    chat(bob_ec, trust_b, alice_ec, trust_a, NULL, "protocol suite 0x02");
}

static void test_ec_to_rsa(void)
{
    const char *ta = ta_trust_store("trust-alice-rsa", "bob", ta_fp_hex("bob"));
    chat(bob_rsa, trust_b, alice_ec, ta, NULL, "protocol suite 0x02");
}

static void test_rsa_to_ec_suite2(void)
{
    const char *tb = ta_trust_store("trust-bob-rsa", "alice", ta_fp_hex("alice"));
    chat(bob_ec, tb, alice_rsa, trust_a, "2", "protocol suite 0x02");
}

static void test_rsa_keys_either_suite(void)
{
    const char *ta = ta_trust_store("trust-alice-rsa2", "bob", ta_fp_hex("bob"));
    const char *tb = ta_trust_store("trust-bob-rsa2", "alice", ta_fp_hex("alice"));
    chat(bob_rsa, tb, alice_rsa, ta, NULL, "protocol suite 0x01");
    chat(bob_rsa, tb, alice_rsa, ta, "2", "protocol suite 0x02");
}

/* A listener of suite 0x01 only refuses an EC key's HELLO; the initiator is
 * told to try --suite 1, and an EC key cannot. */
static void test_suite1_only_peer(void)
{
    TPROC l, c;
    char port[32], *out = NULL, *err = NULL;
    const char *ta = ta_trust_store("trust-alice-rsa3", "bob", ta_fp_hex("bob"));
    int p =
        tp_listen(&l, "--key", bob_rsa, "--id", "bob", "--trust", trust_b, "--suite", "1", NULL);

    CU_ASSERT(p > 0);
    snprintf(port, sizeof(port), "127.0.0.1:%d", p);
    tp_p11chat(&c, "connect", port, "--key", alice_ec, "--id", "alice", "--trust", ta, NULL);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "try again with --suite 1"));
    /* The listener refuses that peer and goes on listening for the next. */
    CU_ASSERT(tp_wait_for(&l, 2, p11c_strerror(P11C_ERR_SUITE), W));
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    tp_free(&l);
    tp_free(&c);
    /* An EC key with --suite 1 is refused before anything is sent. */
    CU_ASSERT_EQUAL(ta_run(NULL, &out, &err, W, "connect", "127.0.0.1:1", "--key", alice_ec, "--id",
                           "alice", "--trust", ta, "--suite", "1", NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot start the session"));
    free(out);
    free(err);
    CU_ASSERT_EQUAL(ta_run(NULL, &out, &err, W, "connect", "127.0.0.1:1", "--key", alice_ec, "--id",
                           "alice", "--suite", "3", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--suite must be 1 or 2, not '3'"));
    free(out);
    free(err);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("apps_suite2", setup, NULL);
    CU_add_test(s, "fingerprint and trust of EC keys", test_fingerprint_and_trust);
    CU_add_test(s, "P-256 to P-384 over TCP", test_ec_to_ec);
    CU_add_test(s, "EC to RSA over TCP", test_ec_to_rsa);
    CU_add_test(s, "RSA to EC with --suite 2", test_rsa_to_ec_suite2);
    CU_add_test(s, "RSA keys: suite 0x01 by default, 0x02 asked", test_rsa_keys_either_suite);
    CU_add_test(s, "a suite-0x01-only peer", test_suite1_only_peer);
    return tu_main();
}
