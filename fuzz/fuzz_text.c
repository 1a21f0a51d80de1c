/*
 * Text framing (spec section 9): lines from a chat program (armored
 * messages, fragments, anything else) read one by one; and a round trip of
 * the input as a message through p11c_text_encode at a line length the
 * input picks.
 */
#include "fuzz_common.h"

#include <string.h>

typedef struct {
    P11C_TEXT *tx;
    const uint8_t *want;
    size_t want_len;
    int got;
} roundtrip;

static p11c_err line_cb(const char *text, size_t len, void *arg)
{
    roundtrip *rt = arg;
    uint8_t *msg = NULL;
    size_t mlen = 0;
    p11c_text_kind k = p11c_text_read(rt->tx, text, len, &msg, &mlen);
    if (k == P11C_TEXT_MESSAGE) {
        if (rt->got || mlen != rt->want_len || (mlen > 0 && memcmp(msg, rt->want, mlen) != 0))
            fz_fail("text round trip gave other bytes");
        rt->got = 1;
        OPENSSL_free(msg);
    } else if (k != P11C_TEXT_NONE) {
        fz_fail("an encoded line did not read back as P11C");
    }
    return P11C_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_line = data[0] < 16 ? 0 : (size_t)data[0] * 4;
    data++;
    size--;

    P11C_TEXT *tx = p11c_text_new();
    if (tx == NULL)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            uint8_t *msg = NULL;
            size_t len = 0;
            p11c_text_kind k =
                p11c_text_read(tx, (const char *)data + start, i - start, &msg, &len);
            if (k == P11C_TEXT_MESSAGE) {
                if (len > i - start && len > 64 * (size_t)(i - start))
                    fz_fail("message bigger than its text could hold");
                OPENSSL_free(msg);
            } else if (msg != NULL) {
                fz_fail("a message pointer set without a message");
            }
            start = i + 1;
        }
    }
    p11c_text_free(tx);

    /* Messages are never empty; an empty one may be refused. */
    if (size > 0 && size <= P11C_MAX_FRAME) {
        roundtrip rt = {p11c_text_new(), data, size, 0};
        if (rt.tx == NULL)
            return 0;
        p11c_err err = p11c_text_encode(data, size, max_line, line_cb, &rt);
        if (err == P11C_OK && !rt.got)
            fz_fail("encoded message never read back");
        if (err != P11C_OK && err != P11C_ERR_LIMIT)
            fz_fail("text encoding failed other than by its limits");
        p11c_text_free(rt.tx);
    }
    return 0;
}
