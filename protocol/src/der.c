/*
 * Strict DER reading shared by the key decoders and the ECDSA signature
 * check: only the canonical form of a length or a positive INTEGER passes.
 */
#include "p11c_internal.h"

int p11c_der_read_len(P11C_RCUR *c, size_t *n)
{
    uint8_t b0, b1, b2;

    if (!p11c_rcur_u8(c, &b0))
        return 0;
    if (b0 < 0x80) {
        *n = b0;
        return 1;
    }
    if (b0 == 0x81) {
        if (!p11c_rcur_u8(c, &b1) || b1 < 0x80)
            return 0;
        *n = b1;
        return 1;
    }
    if (b0 == 0x82) {
        if (!p11c_rcur_u8(c, &b1) || !p11c_rcur_u8(c, &b2) || b1 == 0)
            return 0;
        *n = (size_t)b1 << 8 | b2;
        return 1;
    }
    return 0;
}

int p11c_der_read_uint(P11C_RCUR *c, const uint8_t **out, size_t *n)
{
    uint8_t tag;
    size_t len;
    const uint8_t *p;

    if (!p11c_rcur_u8(c, &tag) || tag != 0x02 || !p11c_der_read_len(c, &len) || len == 0 ||
        !p11c_rcur_bytes(c, len, &p))
        return 0;
    if (p[0] & 0x80)
        return 0; /* negative */
    if (p[0] == 0x00) {
        if (len == 1 || !(p[1] & 0x80))
            return 0; /* zero, or not minimal */
        p++;
        len--;
    }
    *out = p;
    *n = len;
    return 1;
}
