/* CONFIRM as the responder reads it, after a valid HELLO (the vector's). */
#include "fuzz_common.h"

#include <stdlib.h>

#include <jansson.h>

static uint8_t *hello;
static size_t hello_len;

static void load_hello(void)
{
    json_t *root = json_load_file(P11C_VECTORS_DIR "/protocol/handshake.json", 0, NULL);
    const char *hex = json_string_value(json_object_get(root, "hello"));
    long n = 0;
    if (hex == NULL || (hello = OPENSSL_hexstr2buf(hex, &n)) == NULL)
        fz_fail("handshake.json hello");
    hello_len = (size_t)n;
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (hello == NULL)
        load_hello();
    P11C_SESSION *bob = fz_session(P11C_RESPONDER, P11C_POLICY_STRICT);
    if (p11c_session_recv(bob, hello, hello_len) != P11C_OK)
        fz_fail("the vector HELLO was rejected");
    OPENSSL_free(fz_drain_output(bob, NULL)); /* REPLY */
    fz_drain_events(bob, 0);
    p11c_err err = p11c_session_recv(bob, data, size);
    uint8_t *finish = fz_drain_output(bob, NULL);
    /* Nobody but Alice could make a CONFIRM for Bob's fresh Sec. */
    if (err == P11C_OK || finish != NULL || p11c_session_established(bob))
        fz_fail("a forged CONFIRM was accepted");
    fz_drain_events(bob, 0);
    p11c_session_free(bob);
    return 0;
}
