/* FINISH as the initiator reads it, after a real HELLO, REPLY, CONFIRM. */
#include "fuzz_common.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    P11C_SESSION *alice = fz_session(P11C_INITIATOR, P11C_POLICY_STRICT);
    P11C_SESSION *bob = fz_session(P11C_RESPONDER, P11C_POLICY_STRICT);
    if (fz_pump(alice, bob) != P11C_OK || fz_pump(bob, alice) != P11C_OK)
        fz_fail("handshake HELLO/REPLY");
    uint8_t *confirm;
    size_t clen;
    if (!p11c_session_pop_output(alice, &confirm, &clen))
        fz_fail("no CONFIRM");
    if (p11c_session_recv(bob, confirm, clen) != P11C_OK)
        fz_fail("CONFIRM rejected");
    OPENSSL_free(confirm);
    size_t flen = 0;
    uint8_t *finish = fz_drain_output(bob, &flen);
    if (finish == NULL)
        fz_fail("no FINISH");

    p11c_err err = p11c_session_recv(alice, data, size);
    int genuine = size == flen && memcmp(data, finish, size) == 0;
    if (genuine != (err == P11C_OK))
        fz_fail(genuine ? "the genuine FINISH was rejected" : "a forged FINISH was accepted");
    if (genuine != p11c_session_established(alice))
        fz_fail("established state does not follow FINISH");
    OPENSSL_free(finish);
    fz_drain_events(alice, 0);
    fz_drain_events(bob, 0);
    p11c_session_free(alice);
    p11c_session_free(bob);
    return 0;
}
