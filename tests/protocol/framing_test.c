/* Stream frames and text lines (spec section 9), including malformed input. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ptest.h"

static void test_stream_roundtrip(void)
{
    P11C_STREAM *st = p11c_stream_new();
    uint8_t m1[] = {1, 2, 3}, *f1, *f2, *f3, *all, *got;
    uint8_t *m2 = OPENSSL_malloc(P11C_MAX_FRAME);
    size_t l1, l2, l3, len, off = 0;

    memset(m2, 0xab, P11C_MAX_FRAME);
    CU_ASSERT_EQUAL(p11c_frame_stream(m1, 3, &f1, &l1), P11C_OK);
    CU_ASSERT_EQUAL(p11c_frame_stream(m2, P11C_MAX_FRAME, &f2, &l2), P11C_OK);
    CU_ASSERT_EQUAL(p11c_frame_stream(NULL, 0, &f3, &l3), P11C_OK);
    CU_ASSERT(l1 == 7 && memcmp(f1, "\0\0\0\3\1\2\3", 7) == 0);
    all = OPENSSL_malloc(l1 + l2 + l3);
    memcpy(all, f1, l1);
    memcpy(all + l1, f2, l2);
    memcpy(all + l1 + l2, f3, l3);
    /* Fed in odd-sized pieces: the same three messages come out. */
    while (off < l1 + l2 + l3) {
        size_t left = l1 + l2 + l3 - off, n = (off % 7) + 1 + (off % 3) * 997;
        if (n > left)
            n = left;
        CU_ASSERT_EQUAL_FATAL(p11c_stream_feed(st, all + off, n), P11C_OK);
        off += n;
    }
    CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &len), 1);
    CU_ASSERT(len == 3 && memcmp(got, m1, 3) == 0);
    OPENSSL_free(got);
    CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &len), 1);
    CU_ASSERT(len == P11C_MAX_FRAME && memcmp(got, m2, len) == 0);
    OPENSSL_free(got);
    CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &len), 1);
    CU_ASSERT_EQUAL(len, 0);
    OPENSSL_free(got);
    CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &len), 0);
    CU_ASSERT_EQUAL(p11c_stream_pending(st), 0);
    /* An incomplete frame at the end of the stream is visible: truncation. */
    CU_ASSERT_EQUAL(p11c_stream_feed(st, f1, 5), P11C_OK);
    CU_ASSERT_EQUAL(p11c_stream_pending(st), 5);
    CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &len), 0);
    p11c_stream_free(st);
    p11c_stream_free(NULL);
    OPENSSL_free(f1);
    OPENSSL_free(f2);
    OPENSSL_free(f3);
    OPENSSL_free(all);
    OPENSSL_free(m2);
}

static void test_stream_oversized(void)
{
    P11C_STREAM *st = p11c_stream_new();
    uint8_t hdr[4] = {0x00, 0x02, 0x00, 0x01}; /* 131073 */
    uint8_t ok[5] = {0, 0, 0, 1, 9}, *out;
    size_t outlen;

    CU_ASSERT_EQUAL(p11c_frame_stream(ok, P11C_MAX_FRAME + 1, &out, &outlen), P11C_ERR_LIMIT);
    CU_ASSERT_EQUAL(p11c_frame_stream(NULL, 3, &out, &outlen), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_stream_feed(st, hdr, 4), P11C_ERR_FRAME);
    /* Sticky: a good frame afterwards is refused too. */
    CU_ASSERT_EQUAL(p11c_stream_feed(st, ok, 5), P11C_ERR_FRAME);
    CU_ASSERT_EQUAL(p11c_stream_next(st, &out, &outlen), 0);
    p11c_stream_free(st);
    st = p11c_stream_new();
    hdr[0] = 0xff;
    CU_ASSERT_EQUAL(p11c_stream_feed(st, hdr, 4), P11C_ERR_FRAME);
    CU_ASSERT_EQUAL(p11c_stream_feed(NULL, hdr, 4), P11C_ERR_ARG);
    p11c_stream_free(st);
}

typedef struct lines {
    char *l[80];
    size_t n;
    size_t max;
} LINES;

static p11c_err add_line(const char *text, size_t len, void *arg)
{
    LINES *ls = arg;
    if (ls->n == 80)
        return P11C_ERR_MEMORY;
    ls->l[ls->n++] = OPENSSL_strndup(text, len);
    if (len > ls->max)
        ls->max = len;
    return P11C_OK;
}

static void lines_free(LINES *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        OPENSSL_free(ls->l[i]);
    memset(ls, 0, sizeof(*ls));
}

static uint8_t *pattern(size_t n)
{
    uint8_t *m = OPENSSL_malloc(n);
    for (size_t i = 0; i < n; i++)
        m[i] = (uint8_t)(i * 31 + 7);
    return m;
}

static void test_text_fragments(void)
{
    static const size_t sizes[] = {1, 2, 3, 100, 1000, 3000};
    static const size_t limits[] = {0, 30, 64, 200, 1000};

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
            uint8_t *m = pattern(sizes[si]), *got = NULL;
            LINES ls = {0};
            P11C_TEXT *tx = p11c_text_new();
            size_t len = 0;
            p11c_err e = p11c_text_encode(m, sizes[si], limits[li], add_line, &ls);
            size_t b64 = 4 * ((sizes[si] + 2) / 3);

            if (limits[li] != 0 && (b64 + limits[li] - 23) / (limits[li] - 22) > 64) {
                CU_ASSERT_EQUAL(e, P11C_ERR_LIMIT);
                CU_ASSERT_EQUAL(ls.n, 0);
            } else {
                CU_ASSERT_EQUAL_FATAL(e, P11C_OK);
                CU_ASSERT(limits[li] == 0 || ls.max <= limits[li]);
                for (size_t i = 0; i < ls.n; i++) {
                    p11c_text_kind k = p11c_text_read(tx, ls.l[i], strlen(ls.l[i]), &got, &len);
                    CU_ASSERT_EQUAL(k, i + 1 == ls.n ? P11C_TEXT_MESSAGE : P11C_TEXT_NONE);
                }
                CU_ASSERT(got != NULL && len == sizes[si] && memcmp(got, m, len) == 0);
                OPENSSL_free(got);
            }
            lines_free(&ls);
            p11c_text_free(tx);
            OPENSSL_free(m);
        }
    }
}

/* Two messages' fragments interleaved and out of order, with chat prefixes. */
static void test_text_interleaved(void)
{
    uint8_t *m1 = pattern(300), *m2 = pattern(200), *got = NULL;
    LINES a = {0}, b = {0};
    P11C_TEXT *tx = p11c_text_new();
    size_t len = 0, done = 0;
    char buf[300];

    CU_ASSERT_FATAL(p11c_text_encode(m1, 300, 60, add_line, &a) == P11C_OK);
    CU_ASSERT_FATAL(p11c_text_encode(m2, 200, 60, add_line, &b) == P11C_OK);
    CU_ASSERT_FATAL(a.n > 3 && b.n > 3);
    for (size_t i = 0; i < a.n || i < b.n; i++) {
        for (int w = 0; w < 2; w++) {
            LINES *ls = w ? &b : &a;
            size_t k = ls->n - 1 - i; /* last piece first */
            if (i >= ls->n)
                continue;
            snprintf(buf, sizeof(buf), "<%s> %s", w ? "bob" : "alice", ls->l[k]);
            p11c_text_kind kind = p11c_text_read(tx, buf, strlen(buf), &got, &len);
            if (kind == P11C_TEXT_MESSAGE) {
                uint8_t *want = w ? m2 : m1;
                CU_ASSERT(len == (w ? 200u : 300u) && memcmp(got, want, len) == 0);
                OPENSSL_free(got);
                done++;
            } else {
                CU_ASSERT_EQUAL(kind, P11C_TEXT_NONE);
            }
        }
    }
    CU_ASSERT_EQUAL(done, 2);
    lines_free(&a);
    lines_free(&b);
    p11c_text_free(tx);
    OPENSSL_free(m1);
    OPENSSL_free(m2);
}

/* An incomplete message is dropped once 64 pieces of other messages have gone by. */
static void test_text_drop_stale(void)
{
    P11C_TEXT *tx = p11c_text_new();
    uint8_t *got = NULL;
    size_t len = 0;
    char line[64];
    const char *first = "?P11C,0000abcd,1,2,AQID,";
    const char *second = "?P11C,0000abcd,2,2,BAUG,";

    CU_ASSERT_EQUAL(p11c_text_read(tx, first, strlen(first), &got, &len), P11C_TEXT_NONE);
    for (int i = 0; i < 63; i++) {
        snprintf(line, sizeof(line), "?P11C,%08x,1,2,AAAA,", i);
        CU_ASSERT_EQUAL(p11c_text_read(tx, line, strlen(line), &got, &len), P11C_TEXT_NONE);
    }
    /* 63 others so far: still held. */
    CU_ASSERT_EQUAL(p11c_text_read(tx, second, strlen(second), &got, &len), P11C_TEXT_MESSAGE);
    CU_ASSERT(len == 6 && memcmp(got, "\1\2\3\4\5\6", 6) == 0);
    OPENSSL_free(got);
    CU_ASSERT_EQUAL(p11c_text_read(tx, first, strlen(first), &got, &len), P11C_TEXT_NONE);
    for (int i = 0; i < 64; i++) {
        snprintf(line, sizeof(line), "?P11C,%08x,1,2,AAAA,", 1000 + i);
        CU_ASSERT_EQUAL(p11c_text_read(tx, line, strlen(line), &got, &len), P11C_TEXT_NONE);
    }
    /* 64 others: dropped, so the second piece starts a new incomplete message. */
    CU_ASSERT_EQUAL(p11c_text_read(tx, second, strlen(second), &got, &len), P11C_TEXT_NONE);
    p11c_text_free(tx);
}

static void test_text_malformed(void)
{
    static const struct {
        const char *line;
        p11c_text_kind kind;
    } cases[] = {
        {"hello, just chatting", P11C_TEXT_PLAIN},
        {"", P11C_TEXT_PLAIN},
        {"?P11C", P11C_TEXT_PLAIN},
        {"?P11C;AQID.", P11C_TEXT_PLAIN},
        {"?P11C:AQID", P11C_TEXT_CUT},  /* no terminator: cut short */
        {"?P11C:.", P11C_TEXT_BAD},     /* empty */
        {"?P11C:", P11C_TEXT_CUT},      /* nothing at all: cut short */
        {"?P11C:AQI.", P11C_TEXT_BAD},  /* not a multiple of 4 */
        {"?P11C:AQ=D.", P11C_TEXT_BAD}, /* padding inside */
        {"?P11C:A===.", P11C_TEXT_BAD}, /* three padding characters */
        {"?P11C:AR==.", P11C_TEXT_BAD}, /* non-canonical: stray bits */
        {"?P11C:AQ-D.", P11C_TEXT_BAD}, /* URL alphabet */
        {"?P11C:AQID. trailing", P11C_TEXT_BAD},
        {"?P11C:AQ ID.", P11C_TEXT_BAD},
        {"?P11C:AQID. \r", P11C_TEXT_MESSAGE}, /* trailing blanks are fine */
        {"<bob> ?P11C:AQID.", P11C_TEXT_MESSAGE},
        {"?P11C,0000abc,1,2,AQID,", P11C_TEXT_BAD},   /* id of 7 */
        {"?P11C,0000abcg,1,2,AQID,", P11C_TEXT_BAD},  /* not hex */
        {"?P11C,0000abcd,0,2,AQID,", P11C_TEXT_BAD},  /* k = 0 */
        {"?P11C,0000abcd,3,2,AQID,", P11C_TEXT_BAD},  /* k > n */
        {"?P11C,0000abcd,1,65,AQID,", P11C_TEXT_BAD}, /* n > 64 */
        {"?P11C,0000abcd,01,2,AQID,", P11C_TEXT_BAD}, /* leading zero */
        {"?P11C,0000abcd,1,2,,", P11C_TEXT_BAD},      /* empty piece */
        {"?P11C,0000abcd,1,2,AQID", P11C_TEXT_CUT},   /* no final comma: cut short */
        {"?P11C,0000abcd,1,2,AQ.D,", P11C_TEXT_BAD},
        {"?P11C,0000abcd,1,2,AQID,x", P11C_TEXT_BAD},
        {"?P11C,0000abcd,1,-2,AQID,", P11C_TEXT_BAD},
        {"?P11C,0000abcd,1,1,AQID,", P11C_TEXT_MESSAGE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        P11C_TEXT *tx = p11c_text_new();
        uint8_t *got = NULL;
        size_t len = 0;
        p11c_text_kind k = p11c_text_read(tx, cases[i].line, strlen(cases[i].line), &got, &len);

        if (k != cases[i].kind)
            fprintf(stderr, "text case \"%s\": got %d\n", cases[i].line, k);
        CU_ASSERT_EQUAL(k, cases[i].kind);
        CU_ASSERT(k == P11C_TEXT_MESSAGE
                      ? (got != NULL && len == 3 && memcmp(got, "\1\2\3", 3) == 0)
                      : got == NULL);
        OPENSSL_free(got);
        p11c_text_free(tx);
    }
}

/* Pieces that contradict what is stored are dropped; what is stored stays. */
static void test_text_conflicts(void)
{
    P11C_TEXT *tx = p11c_text_new();
    uint8_t *got = NULL;
    size_t len = 0;
    const char *p1 = "?P11C,12345678,1,2,AQID,";
    const char *p1b = "?P11C,12345678,1,2,BBBB,";
    const char *n3 = "?P11C,12345678,2,3,BAUG,";
    const char *p2 = "?P11C,12345678,2,2,BAUG,";
    const char *pad = "?P11C,9abcdef0,1,2,AQ==,";
    const char *pad2 = "?P11C,9abcdef0,2,2,AQID,";

    CU_ASSERT_EQUAL(p11c_text_read(tx, p1, strlen(p1), &got, &len), P11C_TEXT_NONE);
    CU_ASSERT_EQUAL(p11c_text_read(tx, p1b, strlen(p1b), &got, &len), P11C_TEXT_BAD);
    CU_ASSERT_EQUAL(p11c_text_read(tx, n3, strlen(n3), &got, &len), P11C_TEXT_BAD);
    CU_ASSERT_EQUAL(p11c_text_read(tx, p2, strlen(p2), &got, &len), P11C_TEXT_MESSAGE);
    CU_ASSERT(len == 6 && memcmp(got, "\1\2\3\4\5\6", 6) == 0);
    OPENSSL_free(got);
    got = NULL;
    /* Padding in the middle of the joined text is malformed. */
    CU_ASSERT_EQUAL(p11c_text_read(tx, pad, strlen(pad), &got, &len), P11C_TEXT_NONE);
    CU_ASSERT_EQUAL(p11c_text_read(tx, pad2, strlen(pad2), &got, &len), P11C_TEXT_BAD);
    CU_ASSERT_PTR_NULL(got);
    p11c_text_free(tx);
}

static p11c_err fail_line(const char *text, size_t len, void *arg)
{
    (void)text;
    (void)len;
    (*(int *)arg)++;
    return P11C_ERR_FRAME;
}

static void test_text_encode_errors(void)
{
    uint8_t m[100] = {0};
    LINES ls = {0};
    int calls = 0;

    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 20, add_line, &ls), P11C_ERR_LIMIT); /* no room */
    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 22, add_line, &ls), P11C_ERR_LIMIT); /* > 64 pieces */
    CU_ASSERT_EQUAL(ls.n, 0);
    CU_ASSERT_EQUAL(p11c_text_encode(NULL, 3, 0, add_line, &ls), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_text_encode(m, 0, 0, add_line, &ls), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 0, NULL, &ls), P11C_ERR_ARG);
    /* The callback's error stops encoding at once. */
    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 40, fail_line, &calls), P11C_ERR_FRAME);
    CU_ASSERT_EQUAL(calls, 1);
    /* A line exactly at the limit is one line: 7 + 136 = 143 bytes. */
    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 143, add_line, &ls), P11C_OK);
    CU_ASSERT(ls.n == 1 && strlen(ls.l[0]) == 143 && ls.l[0][5] == ':');
    lines_free(&ls);
    CU_ASSERT_EQUAL(p11c_text_encode(m, 100, 142, add_line, &ls), P11C_OK);
    CU_ASSERT(ls.n > 1 && ls.max <= 142 && ls.l[0][5] == ',');
    lines_free(&ls);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_framing", NULL, NULL);
    CU_add_test(s, "stream frames in pieces", test_stream_roundtrip);
    CU_add_test(s, "oversized stream frames", test_stream_oversized);
    CU_add_test(s, "text fragments at several line limits", test_text_fragments);
    CU_add_test(s, "text fragments interleaved with prefixes", test_text_interleaved);
    CU_add_test(s, "stale fragments dropped after 64 others", test_text_drop_stale);
    CU_add_test(s, "malformed text lines and fragments", test_text_malformed);
    CU_add_test(s, "conflicting fragments", test_text_conflicts);
    CU_add_test(s, "text encoding errors and the line limit", test_text_encode_errors);
    return tu_main();
}
