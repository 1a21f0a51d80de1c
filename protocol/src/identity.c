/*
 * Identities and CLOSE reasons (spec sections 3 and 6): text a peer chooses
 * and a person reads, so nothing in it may hide, reorder or end the text
 * shown after it.
 */
#include <string.h>

#include "p11chat.h"

#include "format_table.h"

static int is_format(uint32_t cp)
{
    size_t lo = 0, hi = sizeof(p11c_format_ranges) / sizeof(p11c_format_ranges[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cp < p11c_format_ranges[mid][0])
            hi = mid;
        else if (cp > p11c_format_ranges[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int p11c_char_format(uint32_t cp)
{
    return is_format(cp);
}

int p11c_identity_char_ok(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        return 0; /* C0, DEL, C1 */
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0; /* surrogate, beyond Unicode */
    if (cp == 0x2028 || cp == 0x2029)
        return 0; /* line and paragraph separators */
    return !is_format(cp);
}

/* Valid UTF-8 of allowed characters; edge spaces only when `edges` says so. */
static int text_valid(const uint8_t *p, size_t len, int edges)
{
    size_t i = 0;

    if (p == NULL || len == 0)
        return 0;
    if (!edges && (p[0] == ' ' || p[len - 1] == ' '))
        return 0;
    while (i < len) {
        uint8_t b = p[i];
        uint32_t cp;
        size_t n;

        if (b < 0x80) {
            cp = b;
            n = 1;
        } else if (b >= 0xc2 && b <= 0xdf) {
            cp = b & 0x1f;
            n = 2;
        } else if (b >= 0xe0 && b <= 0xef) {
            cp = b & 0x0f;
            n = 3;
        } else if (b >= 0xf0 && b <= 0xf4) {
            cp = b & 0x07;
            n = 4;
        } else {
            return 0; /* continuation byte, overlong lead (c0, c1) or beyond U+10FFFF */
        }
        if (n > len - i)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
            return 0; /* overlong */
        if (!p11c_identity_char_ok(cp))
            return 0;
        i += n;
    }
    return 1;
}

int p11c_identity_valid(const uint8_t *id, size_t len)
{
    return len <= P11C_MAX_IDENTITY && text_valid(id, len, 0);
}

int p11c_close_reason_valid(const uint8_t *reason, size_t len)
{
    return len == 0 || (len <= P11C_MAX_CLOSE_REASON && text_valid(reason, len, 1));
}

const char *p11c_format_unicode_version(void)
{
    return P11C_FORMAT_UNICODE_VERSION;
}
