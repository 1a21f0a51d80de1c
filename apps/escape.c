/* Received text is shown only in a form that cannot drive the terminal. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4) and its code point, or 0
 * when the bytes are not valid UTF-8 (overlong, surrogate, beyond U+10FFFF,
 * truncated). */
static size_t utf8_next(const uint8_t *p, size_t avail, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t n;
    uint32_t v, min;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
        v = b & 0x1f;
        min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        v = b & 0x0f;
        min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        v = b & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Code points that are not shown as themselves: C1 controls, the line and
 * paragraph separators, and every format character (Unicode Cf, the same
 * table the protocol refuses identities by): bidirectional embeddings,
 * overrides and isolates, marks, zero-width characters, BOM, tags. */
static int hidden_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || p11c_char_format(cp);
}

char *app_escape(const uint8_t *data, size_t len)
{
    /* Worst case: every byte becomes "\xHH" (4), or a 2-byte sequence
     * becomes "\u{XXXX}" (8, i.e. 4 a byte). */
    if (len > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(4 * len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_next(data + i, len - i, &cp);
        if (n == 0) {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", data[i]);
            i++;
            continue;
        }
        if (n == 1) {
            if (cp == '\\') {
                memcpy(out + o, "\\\\", 2);
                o += 2;
            } else if (cp == '\t' || cp == '\r' || cp == '\n') {
                out[o++] = '\\';
                out[o++] = cp == '\t' ? 't' : cp == '\r' ? 'r' : 'n';
            } else if (cp < 0x20 || cp == 0x7f) {
                o += (size_t)snprintf(out + o, 5, "\\x%02x", (unsigned)cp);
            } else {
                out[o++] = (char)cp;
            }
        } else if (hidden_cp(cp)) {
            o += (size_t)snprintf(out + o, 4 * n + 1, "\\u{%04x}", (unsigned)cp);
        } else {
            memcpy(out + o, data + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    return out;
}
