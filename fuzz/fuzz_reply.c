/*
 * REPLY as the initiator reads it (spec section 4, step 3). Alice's Sig_A and
 * Sig_C are the recorded ones of tests/vectors/protocol/handshake.json (the
 * test hooks): nobody here verifies them, and her HELLO is then the vector's
 * byte for byte, so the vector's REPLY is the one genuine answer. Only that
 * one costs a private-key operation (Alice decrypts EncSec with S). Alice is
 * made once, waiting for the REPLY; each input goes to a copy of her.
 */
#include "fuzz_common.h"

#include <string.h>

static P11C_TEST_HOOKS hooks;
static P11C_SESSION *waiting; /* Alice after her HELLO */

static void make_waiting(const fz_vectors *v)
{
    fz_hooks_recorded(&hooks, P11C_INITIATOR);
    waiting = fz_session_hooked(P11C_INITIATOR, P11C_POLICY_STRICT, &hooks);
    size_t hlen = 0;
    uint8_t *hello = fz_drain_output(waiting, &hlen);
    if (hello == NULL || hlen != v->hello_len || memcmp(hello, v->hello, hlen) != 0)
        fz_fail("the hooks did not reproduce the vector HELLO");
    OPENSSL_free(hello);
    fz_drain_events(waiting, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fz_vectors *v = fz_vectors_get();
    if (waiting == NULL)
        make_waiting(v);
    P11C_SESSION *alice = fz_copy(waiting);
    p11c_err err = p11c_session_recv(alice, data, size);
    size_t len = 0;
    uint8_t *confirm = fz_drain_output(alice, &len);
    int genuine = size == v->reply_len && memcmp(data, v->reply, size) == 0;
    /* Only Bob can sign a REPLY for this HELLO: the recorded one. */
    if (genuine != (err == P11C_OK))
        fz_fail(genuine ? "the genuine REPLY was rejected" : "a forged REPLY was accepted");
    if (err != P11C_OK && confirm != NULL)
        fz_fail("CONFIRM sent for a rejected REPLY");
    if (err == P11C_OK &&
        (confirm == NULL || len != v->confirm_len || memcmp(confirm, v->confirm, len) != 0))
        fz_fail("accepted REPLY without the vector CONFIRM");
    if (p11c_session_established(alice))
        fz_fail("established before FINISH");
    OPENSSL_free(confirm);
    fz_drain_events(alice, 0);
    p11c_session_free(alice);
    return 0;
}
