/* REPLY as the initiator reads it (spec section 4, step 3). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    P11C_SESSION *alice = fz_session(P11C_INITIATOR, P11C_POLICY_STRICT);
    OPENSSL_free(fz_drain_output(alice, NULL)); /* HELLO */
    p11c_err err = p11c_session_recv(alice, data, size);
    size_t len = 0;
    uint8_t *confirm = fz_drain_output(alice, &len);
    if (err != P11C_OK && confirm != NULL)
        fz_fail("CONFIRM sent for a rejected REPLY");
    if (err == P11C_OK && (confirm == NULL || len < 2 || confirm[1] != 0x03))
        fz_fail("accepted REPLY without a CONFIRM");
    if (p11c_session_established(alice))
        fz_fail("established before FINISH");
    OPENSSL_free(confirm);
    fz_drain_events(alice, 0);
    p11c_session_free(alice);
    return 0;
}
