/*
 * Text framing (spec section 9): "?P11C:" base64 "." on one line, or
 * "?P11C,id,k,n,piece," fragments reassembled with bounded memory.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "p11c_internal.h"

#define MAX_PIECES  64
#define MAX_PENDING 64                               /* see aging in p11c_text_read */
#define MAX_B64     (4 * ((P11C_MAX_FRAME + 2) / 3)) /* base64 of the longest frame */
#define ONE_PREFIX  "?P11C:"
#define FRAG_PREFIX "?P11C,"
#define PREFIX_LEN  6

typedef struct pending {
    char id[9];
    unsigned n, have, age;
    size_t total;
    char *piece[MAX_PIECES];
    size_t plen[MAX_PIECES];
} PENDING;

struct p11c_text {
    PENDING *p[MAX_PENDING];
    size_t count;
};

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/*
 * Strict base64: standard alphabet, length a multiple of 4, padding only at
 * the end, and canonical (encoding the result gives the same text back).
 */
static p11c_err b64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
    size_t pad = 0, n;
    uint8_t *buf = NULL, *re = NULL;
    p11c_err ret = P11C_ERR_FRAME;

    if (len == 0 || len % 4 != 0 || len > MAX_B64)
        return P11C_ERR_FRAME;
    while (pad < 2 && in[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char(in[i]))
            return P11C_ERR_FRAME;
    n = len / 4 * 3;
    buf = OPENSSL_malloc(n + 1);
    re = OPENSSL_malloc(len + 1);
    if (buf == NULL || re == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    /* EVP_DecodeBlock counts padding as zero bytes: take them off again. */
    if (EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len) != (int)n)
        goto end;
    n -= pad;
    if (EVP_EncodeBlock(re, buf, (int)n) != (int)len || memcmp(re, in, len) != 0)
        goto end;
    *out = buf;
    *outlen = n;
    buf = NULL;
    ret = P11C_OK;
end:
    OPENSSL_free(buf);
    OPENSSL_free(re);
    return ret;
}

static unsigned digits(unsigned v)
{
    return v >= 10 ? 2 : 1;
}

p11c_err p11c_text_encode(const uint8_t *msg, size_t len, size_t max_line,
                          p11c_err (*line)(const char *text, size_t textlen, void *arg), void *arg)
{
    p11c_err ret = P11C_ERR_LIMIT;
    char *b64 = NULL, *out = NULL;
    size_t b64len, piece = 0, n = 0;
    uint8_t idb[4];
    char id[9];

    if ((msg == NULL && len > 0) || line == NULL)
        return P11C_ERR_ARG;
    if (len == 0 || len > P11C_MAX_FRAME)
        return len == 0 ? P11C_ERR_ARG : P11C_ERR_LIMIT;
    b64len = 4 * ((len + 2) / 3);
    b64 = OPENSSL_malloc(b64len + 1);
    out = OPENSSL_malloc(b64len + 64);
    if (b64 == NULL || out == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (EVP_EncodeBlock((unsigned char *)b64, msg, (int)len) != (int)b64len) {
        ret = P11C_ERR_CRYPTO;
        goto end;
    }
    if (max_line == 0 || b64len + PREFIX_LEN + 1 <= max_line) {
        memcpy(out, ONE_PREFIX, PREFIX_LEN);
        memcpy(out + PREFIX_LEN, b64, b64len);
        out[PREFIX_LEN + b64len] = '.';
        ret = line(out, PREFIX_LEN + b64len + 1, arg);
        goto end;
    }
    /* "?P11C," id "," k "," n "," piece ",": 18 bytes, the digits of k and n, the piece. */
    for (unsigned d = 1; d <= 2 && n == 0; d++) {
        if (max_line <= 18 + 2 * d)
            break;
        piece = max_line - 18 - 2 * d;
        size_t need = (b64len + piece - 1) / piece;
        if (need <= MAX_PIECES && digits((unsigned)need) <= d)
            n = need;
    }
    if (n == 0)
        goto end; /* P11C_ERR_LIMIT: more than 64 pieces, or no room for any */
    if (RAND_bytes(idb, sizeof(idb)) != 1) {
        ret = P11C_ERR_CRYPTO;
        goto end;
    }
    snprintf(id, sizeof(id), "%02x%02x%02x%02x", idb[0], idb[1], idb[2], idb[3]);
    for (size_t k = 1; k <= n; k++) {
        size_t off = (k - 1) * piece;
        size_t plen = b64len - off < piece ? b64len - off : piece;
        int h = snprintf(out, 64, "%s%s,%zu,%zu,", FRAG_PREFIX, id, k, n);

        memcpy(out + h, b64 + off, plen);
        out[(size_t)h + plen] = ',';
        ret = line(out, (size_t)h + plen + 1, arg);
        if (ret != P11C_OK)
            goto end;
    }
    ret = P11C_OK;
end:
    OPENSSL_free(b64);
    OPENSSL_free(out);
    return ret;
}

size_t p11c_text_capacity(size_t max_line)
{
    size_t one, pieces = 0, best;

    if (max_line == 0)
        return P11C_MAX_FRAME;
    /* One line: prefix, base64, '.'. In pieces: at most 64 of two-digit k,n
     * (more room than nine of one digit for any line that holds a piece). */
    one = max_line > PREFIX_LEN + 1 ? (max_line - PREFIX_LEN - 1) / 4 * 3 : 0;
    if (max_line > 22 + 3)
        pieces = MAX_PIECES * (max_line - 22) / 4 * 3;
    best = one > pieces ? one : pieces;
    return best > P11C_MAX_FRAME ? P11C_MAX_FRAME : best;
}

P11C_TEXT *p11c_text_new(void)
{
    return OPENSSL_zalloc(sizeof(P11C_TEXT));
}

static void pending_free(PENDING *p)
{
    if (p == NULL)
        return;
    for (unsigned k = 0; k < MAX_PIECES; k++)
        OPENSSL_free(p->piece[k]);
    OPENSSL_free(p);
}

static void pending_drop(P11C_TEXT *tx, size_t i)
{
    pending_free(tx->p[i]);
    tx->p[i] = tx->p[--tx->count];
    tx->p[tx->count] = NULL;
}

void p11c_text_free(P11C_TEXT *tx)
{
    if (tx == NULL)
        return;
    while (tx->count > 0)
        pending_drop(tx, tx->count - 1);
    OPENSSL_free(tx);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!is_space(*p))
            return 0;
    return 1;
}

/* A decimal 1..64 without leading zeros, ending at ','. */
static int read_num(const char **p, const char *end, unsigned *v)
{
    unsigned val = 0, nd = 0;

    while (*p < end && **p >= '0' && **p <= '9' && nd < 3) {
        if (nd == 0 && **p == '0')
            return 0;
        val = val * 10 + (unsigned)(**p - '0');
        nd++;
        (*p)++;
    }
    if (nd == 0 || *p >= end || **p != ',' || val < 1 || val > MAX_PIECES)
        return 0;
    (*p)++;
    *v = val;
    return 1;
}

static p11c_text_kind one_line(const char *p, const char *end, uint8_t **msg, size_t *len)
{
    const char *b = p;

    while (p < end && (b64_char(*p) || *p == '='))
        p++;
    if (only_space(p, end))
        return P11C_TEXT_CUT; /* base64 up to the end of the line, no '.' */
    if (*p != '.' || !only_space(p + 1, end))
        return P11C_TEXT_BAD;
    return b64_decode(b, (size_t)(p - b), msg, len) == P11C_OK ? P11C_TEXT_MESSAGE : P11C_TEXT_BAD;
}

static p11c_text_kind assemble(P11C_TEXT *tx, size_t i, uint8_t **msg, size_t *len)
{
    PENDING *pm = tx->p[i];
    char *all = OPENSSL_malloc(pm->total + 1);
    size_t off = 0;
    p11c_text_kind kind = P11C_TEXT_BAD;

    if (all != NULL) {
        for (unsigned k = 0; k < pm->n; k++) {
            memcpy(all + off, pm->piece[k], pm->plen[k]);
            off += pm->plen[k];
        }
        if (b64_decode(all, off, msg, len) == P11C_OK)
            kind = P11C_TEXT_MESSAGE;
        OPENSSL_free(all);
    }
    pending_drop(tx, i);
    return kind;
}

static p11c_text_kind fragment(P11C_TEXT *tx, const char *p, const char *end, uint8_t **msg,
                               size_t *len)
{
    char id[9];
    unsigned k, n;
    const char *b;
    size_t plen, i;
    PENDING *pm = NULL;

    for (unsigned j = 0; j < 8; j++) {
        char c = p + j < end ? p[j] : '\0';
        if (p + j == end || only_space(p + j, end))
            return P11C_TEXT_CUT;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return P11C_TEXT_BAD;
        id[j] = c;
    }
    id[8] = '\0';
    p += 8;
    b = p;
    if (p == end || *p++ != ',' || !read_num(&p, end, &k) || !read_num(&p, end, &n) || k > n) {
        /* The header itself, cut: digits and commas up to the line's end. */
        while (b < end && ((*b >= '0' && *b <= '9') || *b == ','))
            b++;
        return only_space(b, end) ? P11C_TEXT_CUT : P11C_TEXT_BAD;
    }
    b = p;
    while (p < end && (b64_char(*p) || *p == '='))
        p++;
    plen = (size_t)(p - b);
    if (only_space(p, end))
        return P11C_TEXT_CUT; /* no ',' after the piece */
    if (plen == 0 || plen > MAX_B64 || *p != ',' || !only_space(p + 1, end))
        return P11C_TEXT_BAD;

    for (i = 0; i < tx->count; i++)
        if (strcmp(tx->p[i]->id, id) == 0)
            break;
    if (i < tx->count) {
        pm = tx->p[i];
        if (pm->n != n || pm->piece[k - 1] != NULL || pm->total + plen > MAX_B64)
            return P11C_TEXT_BAD; /* the stored pieces stay */
    }
    /* Age the other messages: one that saw 64 pieces of others go by is dropped. */
    for (size_t j = tx->count; j-- > 0;) {
        if (tx->p[j] == pm)
            continue;
        if (++tx->p[j]->age >= MAX_PIECES)
            pending_drop(tx, j);
    }
    if (pm == NULL) {
        if (tx->count == MAX_PENDING)
            return P11C_TEXT_BAD; /* cannot happen with the aging above; kept as a bound */
        pm = OPENSSL_zalloc(sizeof(*pm));
        if (pm == NULL)
            return P11C_TEXT_BAD;
        memcpy(pm->id, id, sizeof(id));
        pm->n = n;
        tx->p[tx->count++] = pm;
    }
    pm->piece[k - 1] = OPENSSL_strndup(b, plen);
    if (pm->piece[k - 1] == NULL)
        return P11C_TEXT_BAD;
    pm->plen[k - 1] = plen;
    pm->total += plen;
    pm->have++;
    pm->age = 0;
    if (pm->have < pm->n)
        return P11C_TEXT_NONE;
    for (i = 0; i < tx->count && tx->p[i] != pm; i++)
        ;
    return assemble(tx, i, msg, len);
}

p11c_text_kind p11c_text_read(P11C_TEXT *tx, const char *line, size_t linelen, uint8_t **msg,
                              size_t *len)
{
    const char *end, *p;

    if (tx == NULL || line == NULL || msg == NULL || len == NULL)
        return P11C_TEXT_BAD;
    *msg = NULL;
    *len = 0;
    end = line + linelen;
    for (p = line; end - p >= PREFIX_LEN; p++) {
        if (memcmp(p, ONE_PREFIX, PREFIX_LEN) == 0)
            return one_line(p + PREFIX_LEN, end, msg, len);
        if (memcmp(p, FRAG_PREFIX, PREFIX_LEN) == 0)
            return fragment(tx, p + PREFIX_LEN, end, msg, len);
    }
    return P11C_TEXT_PLAIN;
}
