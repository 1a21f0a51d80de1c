/* HELLO as the responder reads it (spec section 4, step 2). Bob is made once,
 * waiting for a HELLO; each input goes to a copy of him. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static P11C_SESSION *waiting;
    if (waiting == NULL)
        waiting = fz_session(P11C_RESPONDER, P11C_POLICY_STRICT);
    P11C_SESSION *bob = fz_copy(waiting);
    p11c_err err = p11c_session_recv(bob, data, size);
    size_t len = 0;
    uint8_t *reply = fz_drain_output(bob, &len);
    /* A rejected HELLO gets no answer; an accepted one gets exactly a REPLY. */
    if (err != P11C_OK && reply != NULL)
        fz_fail("REPLY sent for a rejected HELLO");
    if (err == P11C_OK && (reply == NULL || len < 2 || reply[1] != 0x02))
        fz_fail("accepted HELLO without a REPLY");
    if (err != P11C_OK && p11c_session_recv(bob, data, size) == P11C_OK)
        fz_fail("a failed session accepted a message");
    OPENSSL_free(reply);
    fz_drain_events(bob, 0);
    p11c_session_free(bob);
    return 0;
}
