/*
 * Stream framing (spec section 9): the decoder fed in pieces whose sizes the
 * input picks, and a round trip through p11c_frame_stream.
 */
#include "fuzz_common.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;

    P11C_STREAM *st = p11c_stream_new();
    if (st == NULL)
        return 0;
    size_t framed_bytes = 0;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (p11c_stream_feed(st, data + off, n) != P11C_OK)
            break;
        uint8_t *msg;
        size_t len;
        while (p11c_stream_next(st, &msg, &len)) {
            if (len > P11C_MAX_FRAME)
                fz_fail("frame longer than the limit");
            framed_bytes += 4 + len;
            OPENSSL_free(msg);
        }
    }
    if (framed_bytes > size)
        fz_fail("more bytes out than in");
    p11c_stream_free(st);

    /* Round trip: framing the input and decoding it gives it back. */
    if (size <= P11C_MAX_FRAME) {
        uint8_t *framed = NULL, *msg = NULL;
        size_t flen = 0, len = 0;
        if (p11c_frame_stream(data, size, &framed, &flen) != P11C_OK)
            fz_fail("framing a valid message failed");
        st = p11c_stream_new();
        if (st == NULL || p11c_stream_feed(st, framed, flen) != P11C_OK ||
            !p11c_stream_next(st, &msg, &len) || len != size ||
            (size > 0 && memcmp(msg, data, size) != 0) || p11c_stream_pending(st) != 0)
            fz_fail("stream round trip");
        OPENSSL_free(msg);
        OPENSSL_free(framed);
        p11c_stream_free(st);
    }
    return 0;
}
