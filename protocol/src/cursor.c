/* Bounded cursors: the only way the library reads or builds wire bytes. */
#include <string.h>

#include <openssl/crypto.h>

#include "p11c_internal.h"

void p11c_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void p11c_put_u64(uint8_t *p, uint64_t v)
{
    p11c_put_u32(p, (uint32_t)(v >> 32));
    p11c_put_u32(p + 4, (uint32_t)v);
}

uint32_t p11c_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t p11c_get_u64(const uint8_t *p)
{
    return (uint64_t)p11c_get_u32(p) << 32 | p11c_get_u32(p + 4);
}

void p11c_rcur_init(P11C_RCUR *c, const uint8_t *buf, size_t len)
{
    c->p = buf;
    c->left = buf == NULL ? 0 : len;
    c->bad = 0;
}

int p11c_rcur_bytes(P11C_RCUR *c, size_t n, const uint8_t **out)
{
    if (c->bad || n > c->left) {
        c->bad = 1;
        return 0;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 1;
}

int p11c_rcur_u8(P11C_RCUR *c, uint8_t *v)
{
    const uint8_t *p;

    if (!p11c_rcur_bytes(c, 1, &p))
        return 0;
    *v = p[0];
    return 1;
}

int p11c_rcur_u32(P11C_RCUR *c, uint32_t *v)
{
    const uint8_t *p;

    if (!p11c_rcur_bytes(c, 4, &p))
        return 0;
    *v = p11c_get_u32(p);
    return 1;
}

int p11c_rcur_u64(P11C_RCUR *c, uint64_t *v)
{
    const uint8_t *p;

    if (!p11c_rcur_bytes(c, 8, &p))
        return 0;
    *v = p11c_get_u64(p);
    return 1;
}

p11c_err p11c_rcur_vec(P11C_RCUR *c, size_t max, const uint8_t **out, size_t *len)
{
    uint32_t n;

    if (!p11c_rcur_u32(c, &n))
        return P11C_ERR_DECODE;
    /* A length that runs past the message is a missing field, whatever its size. */
    if (n > c->left) {
        c->bad = 1;
        return P11C_ERR_DECODE;
    }
    if (n > max) {
        c->bad = 1;
        return P11C_ERR_FIELD_SIZE;
    }
    if (!p11c_rcur_bytes(c, n, out))
        return P11C_ERR_DECODE;
    *len = n;
    return P11C_OK;
}

void p11c_wbuf_init(P11C_WBUF *w)
{
    memset(w, 0, sizeof(*w));
}

int p11c_wbuf_reserve(P11C_WBUF *w, size_t more)
{
    size_t cap;
    uint8_t *nb;

    if (w->bad)
        return 0;
    if (more <= w->cap - w->len)
        return 1;
    if (more > SIZE_MAX / 2 - w->len) {
        w->bad = 1;
        return 0;
    }
    cap = w->cap == 0 ? 256 : w->cap;
    while (cap - w->len < more)
        cap *= 2;
    /* Not realloc: the old buffer may hold secrets and must be wiped. */
    nb = OPENSSL_malloc(cap);
    if (nb == NULL) {
        w->bad = 1;
        return 0;
    }
    if (w->len > 0)
        memcpy(nb, w->buf, w->len);
    OPENSSL_clear_free(w->buf, w->cap);
    w->buf = nb;
    w->cap = cap;
    return 1;
}

void p11c_wbuf_bytes(P11C_WBUF *w, const void *p, size_t n)
{
    if (!p11c_wbuf_reserve(w, n))
        return;
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void p11c_wbuf_u8(P11C_WBUF *w, uint8_t v)
{
    p11c_wbuf_bytes(w, &v, 1);
}

void p11c_wbuf_u32(P11C_WBUF *w, uint32_t v)
{
    uint8_t b[4];

    p11c_put_u32(b, v);
    p11c_wbuf_bytes(w, b, 4);
}

void p11c_wbuf_u64(P11C_WBUF *w, uint64_t v)
{
    uint8_t b[8];

    p11c_put_u64(b, v);
    p11c_wbuf_bytes(w, b, 8);
}

void p11c_wbuf_vec(P11C_WBUF *w, const uint8_t *p, size_t n)
{
    if (n > UINT32_MAX) {
        w->bad = 1;
        return;
    }
    p11c_wbuf_u32(w, (uint32_t)n);
    p11c_wbuf_bytes(w, p, n);
}

void p11c_wbuf_cleanup(P11C_WBUF *w)
{
    OPENSSL_clear_free(w->buf, w->cap);
    memset(w, 0, sizeof(*w));
}
