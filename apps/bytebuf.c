/*
 * The growable byte queue behind the listen/connect and wrap loops.
 */
#include "app.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int app_buf_add(APP_BUF *b, const void *p, size_t n)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *nb = realloc(b->b, cap);
        if (nb == NULL)
            return -1;
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->len, p, n);
    b->len += n;
    return 0;
}

void app_buf_free(APP_BUF *b)
{
    if (b->b != NULL)
        OPENSSL_cleanse(b->b, b->cap);
    free(b->b);
    memset(b, 0, sizeof(*b));
}
