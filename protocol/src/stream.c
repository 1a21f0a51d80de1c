/* Stream framing (spec section 9): u32(len) || message, len <= 131072. */
#include <string.h>

#include <openssl/crypto.h>

#include "p11c_internal.h"

typedef struct frame {
    struct frame *next;
    uint8_t *buf;
    size_t len;
} FRAME;

struct p11c_stream {
    uint8_t hdr[4];
    size_t hdr_have;
    uint8_t *body; /* the frame being read, once its length is known */
    size_t body_len;
    size_t body_have;
    FRAME *head, *tail;
    p11c_err err; /* sticky */
};

p11c_err p11c_frame_stream(const uint8_t *msg, size_t len, uint8_t **out, size_t *outlen)
{
    uint8_t *buf;

    if ((msg == NULL && len > 0) || out == NULL || outlen == NULL)
        return P11C_ERR_ARG;
    if (len > P11C_MAX_FRAME)
        return P11C_ERR_LIMIT;
    buf = OPENSSL_malloc(4 + len);
    if (buf == NULL)
        return P11C_ERR_MEMORY;
    p11c_put_u32(buf, (uint32_t)len);
    if (len > 0)
        memcpy(buf + 4, msg, len);
    *out = buf;
    *outlen = 4 + len;
    return P11C_OK;
}

P11C_STREAM *p11c_stream_new(void)
{
    return OPENSSL_zalloc(sizeof(P11C_STREAM));
}

void p11c_stream_free(P11C_STREAM *st)
{
    if (st == NULL)
        return;
    while (st->head != NULL) {
        FRAME *f = st->head;
        st->head = f->next;
        OPENSSL_free(f->buf);
        OPENSSL_free(f);
    }
    OPENSSL_free(st->body);
    OPENSSL_free(st);
}

static p11c_err complete(P11C_STREAM *st)
{
    FRAME *f = OPENSSL_zalloc(sizeof(*f));

    if (f == NULL)
        return P11C_ERR_MEMORY;
    f->buf = st->body;
    f->len = st->body_len;
    st->body = NULL;
    st->body_len = st->body_have = st->hdr_have = 0;
    if (st->tail != NULL)
        st->tail->next = f;
    else
        st->head = f;
    st->tail = f;
    return P11C_OK;
}

p11c_err p11c_stream_feed(P11C_STREAM *st, const uint8_t *buf, size_t len)
{
    if (st == NULL || (buf == NULL && len > 0))
        return P11C_ERR_ARG;
    if (st->err != P11C_OK)
        return st->err;
    while (len > 0) {
        size_t n;

        if (st->hdr_have < 4) {
            n = 4 - st->hdr_have < len ? 4 - st->hdr_have : len;
            memcpy(st->hdr + st->hdr_have, buf, n);
            st->hdr_have += n;
            buf += n;
            len -= n;
            if (st->hdr_have < 4)
                break;
            st->body_len = p11c_get_u32(st->hdr);
            if (st->body_len > P11C_MAX_FRAME)
                return st->err = P11C_ERR_FRAME;
            /* At least one byte so that an empty frame is still a message. */
            st->body = OPENSSL_malloc(st->body_len > 0 ? st->body_len : 1);
            if (st->body == NULL)
                return st->err = P11C_ERR_MEMORY;
            st->body_have = 0;
        }
        n = st->body_len - st->body_have < len ? st->body_len - st->body_have : len;
        if (n > 0)
            memcpy(st->body + st->body_have, buf, n);
        st->body_have += n;
        buf += n;
        len -= n;
        if (st->body_have == st->body_len) {
            p11c_err ret = complete(st);
            if (ret != P11C_OK)
                return st->err = ret;
        }
    }
    return P11C_OK;
}

int p11c_stream_next(P11C_STREAM *st, uint8_t **msg, size_t *len)
{
    FRAME *f;

    if (st == NULL || msg == NULL || len == NULL || st->head == NULL)
        return 0;
    f = st->head;
    st->head = f->next;
    if (st->head == NULL)
        st->tail = NULL;
    *msg = f->buf;
    *len = f->len;
    OPENSSL_free(f);
    return 1;
}

size_t p11c_stream_pending(const P11C_STREAM *st)
{
    if (st == NULL)
        return 0;
    return st->hdr_have + (st->hdr_have == 4 ? st->body_have : 0);
}
