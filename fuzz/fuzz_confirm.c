/*
 * CONFIRM as the responder reads it, after the vector's HELLO. Bob's Sec,
 * EncSec and Sig_B are the recorded ones (the test hooks), so his REPLY is the
 * vector's byte for byte and no input costs a private-key operation. Only
 * Alice can sign a CONFIRM for that transcript: the vector's CONFIRM must be
 * accepted (and answered with the vector's FINISH), anything else rejected.
 * Bob is made once, waiting for the CONFIRM; each input goes to a copy of him.
 */
#include "fuzz_common.h"

#include <string.h>

static P11C_TEST_HOOKS hooks;
static P11C_SESSION *waiting; /* Bob after the vector HELLO */

static void make_waiting(const fz_vectors *v)
{
    fz_hooks_recorded(&hooks, P11C_RESPONDER);
    waiting = fz_session_hooked(P11C_RESPONDER, P11C_POLICY_STRICT, &hooks);
    if (p11c_session_recv(waiting, v->hello, v->hello_len) != P11C_OK)
        fz_fail("the vector HELLO was rejected");
    size_t rlen = 0;
    uint8_t *reply = fz_drain_output(waiting, &rlen);
    if (reply == NULL || rlen != v->reply_len || memcmp(reply, v->reply, rlen) != 0)
        fz_fail("the hooks did not reproduce the vector REPLY");
    OPENSSL_free(reply);
    fz_drain_events(waiting, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fz_vectors *v = fz_vectors_get();
    if (waiting == NULL)
        make_waiting(v);
    P11C_SESSION *bob = fz_copy(waiting);
    p11c_err err = p11c_session_recv(bob, data, size);
    size_t flen = 0;
    uint8_t *finish = fz_drain_output(bob, &flen);
    int genuine = size == v->confirm_len && memcmp(data, v->confirm, size) == 0;
    if (genuine != (err == P11C_OK))
        fz_fail(genuine ? "the genuine CONFIRM was rejected" : "a forged CONFIRM was accepted");
    if (!genuine && finish != NULL)
        fz_fail("FINISH sent for a rejected CONFIRM");
    if (genuine &&
        (finish == NULL || flen != v->finish_len || memcmp(finish, v->finish, flen) != 0))
        fz_fail("the genuine CONFIRM was not answered with the vector FINISH");
    if (genuine != p11c_session_established(bob))
        fz_fail("established state does not follow CONFIRM");
    OPENSSL_free(finish);
    fz_drain_events(bob, 0);
    p11c_session_free(bob);
    return 0;
}
