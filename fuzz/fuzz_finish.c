/*
 * FINISH as the initiator reads it, after HELLO, REPLY and CONFIRM. Alice's
 * Sig_A and Sig_C are the recorded ones and she takes the vector's Sec instead
 * of decrypting EncSec (the test hooks), so she reaches WAIT_FINISH with the
 * vector's transcript and keys and no private-key operation per input. Once
 * per process a real exchange shows that this is the state the genuine
 * handshake reaches: Bob (his Sec, EncSec and Sig_B recorded) answers the
 * vector HELLO and CONFIRM with the vector REPLY and FINISH, and an Alice who
 * really decrypts EncSec answers the vector REPLY with the vector CONFIRM.
 * Alice is made once, waiting for the FINISH; each input goes to a copy of her.
 */
#include "fuzz_common.h"

#include <string.h>

static P11C_TEST_HOOKS hooks;
static P11C_SESSION *waiting; /* Alice after the vector REPLY */

static void expect_output(P11C_SESSION *s, const uint8_t *msg, size_t len, const char *what)
{
    size_t n = 0;
    uint8_t *out = fz_drain_output(s, &n);
    if (out == NULL || n != len || memcmp(out, msg, n) != 0)
        fz_fail(what);
    OPENSSL_free(out);
}

static void check_once(const fz_vectors *v)
{
    P11C_TEST_HOOKS hb;
    fz_hooks_recorded(&hb, P11C_RESPONDER);
    P11C_SESSION *bob = fz_session_hooked(P11C_RESPONDER, P11C_POLICY_STRICT, &hb);
    if (p11c_session_recv(bob, v->hello, v->hello_len) != P11C_OK)
        fz_fail("Bob rejected the vector HELLO");
    expect_output(bob, v->reply, v->reply_len, "Bob's REPLY is not the vector's");
    if (p11c_session_recv(bob, v->confirm, v->confirm_len) != P11C_OK)
        fz_fail("Bob rejected the vector CONFIRM");
    expect_output(bob, v->finish, v->finish_len, "Bob's FINISH is not the vector's");
    fz_drain_events(bob, 0);
    p11c_session_free(bob);

    P11C_TEST_HOOKS ha = hooks;
    ha.sec = NULL; /* decrypts EncSec with S */
    P11C_SESSION *alice = fz_session_hooked(P11C_INITIATOR, P11C_POLICY_STRICT, &ha);
    expect_output(alice, v->hello, v->hello_len, "Alice's HELLO is not the vector's");
    if (p11c_session_recv(alice, v->reply, v->reply_len) != P11C_OK)
        fz_fail("Alice rejected the vector REPLY");
    expect_output(alice, v->confirm, v->confirm_len, "Alice's CONFIRM is not the vector's");
    if (p11c_session_recv(alice, v->finish, v->finish_len) != P11C_OK ||
        !p11c_session_established(alice))
        fz_fail("Alice rejected the vector FINISH");
    fz_drain_events(alice, 0);
    p11c_session_free(alice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fz_vectors *v = fz_vectors_get();
    if (waiting == NULL) {
        fz_hooks_recorded(&hooks, P11C_INITIATOR);
        hooks.sec = v->sec;
        check_once(v);
        waiting = fz_session_hooked(P11C_INITIATOR, P11C_POLICY_STRICT, &hooks);
        expect_output(waiting, v->hello, v->hello_len,
                      "the hooks did not reproduce the vector HELLO");
        if (p11c_session_recv(waiting, v->reply, v->reply_len) != P11C_OK)
            fz_fail("the vector REPLY was rejected");
        expect_output(waiting, v->confirm, v->confirm_len,
                      "the hooks did not reproduce the vector CONFIRM");
        fz_drain_events(waiting, 0);
    }
    P11C_SESSION *alice = fz_copy(waiting);
    p11c_err err = p11c_session_recv(alice, data, size);
    int genuine = size == v->finish_len && memcmp(data, v->finish, size) == 0;
    if (genuine != (err == P11C_OK))
        fz_fail(genuine ? "the genuine FINISH was rejected" : "a forged FINISH was accepted");
    if (genuine != p11c_session_established(alice))
        fz_fail("established state does not follow FINISH");
    if (fz_drain_output(alice, NULL) != NULL)
        fz_fail("Alice answered a FINISH");
    fz_drain_events(alice, 0);
    p11c_session_free(alice);
    return 0;
}
