/* Every vector of tests/vectors/protocol with software keys. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "p11c_internal.h"
#include "ptest.h"

static json_t *vec(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "protocol/%s", name);
    return tu_vector_load(rel);
}

static int bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void test_fingerprints(void)
{
    json_t *j = vec("fingerprint.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        size_t dlen, flen, got_len = 0;
        uint8_t *der = tu_json_hex(t, "public_pkcs1_der", &dlen);
        uint8_t *fp = tu_json_hex(t, "sha256", &flen);
        EVP_PKEY *k = pt_key(NULL, tu_json_str(t, "key"));
        uint8_t *got = NULL, f1[P11C_FP_LEN], f2[P11C_FP_LEN], parsed[P11C_FP_LEN];
        char shortfp[P11C_SHORT_FP_LEN + 1], hex[2 * P11C_FP_LEN + 1];

        CU_ASSERT_EQUAL(p11c_pub_der(k, &got, &got_len), P11C_OK);
        CU_ASSERT(bytes_eq(got, got_len, der, dlen));
        CU_ASSERT_EQUAL(p11c_fingerprint(NULL, NULL, k, f1), P11C_OK);
        CU_ASSERT_EQUAL(p11c_fingerprint_der(NULL, NULL, der, dlen, f2), P11C_OK);
        CU_ASSERT(bytes_eq(f1, P11C_FP_LEN, fp, flen));
        CU_ASSERT(bytes_eq(f2, P11C_FP_LEN, fp, flen));
        p11c_fingerprint_short(f1, shortfp);
        CU_ASSERT_STRING_EQUAL(shortfp, tu_json_str(t, "short"));
        p11c_fingerprint_hex(f1, hex);
        CU_ASSERT_STRING_EQUAL(hex, tu_json_str(t, "sha256"));
        CU_ASSERT_EQUAL(p11c_fingerprint_parse(hex, parsed), P11C_OK);
        CU_ASSERT(bytes_eq(parsed, P11C_FP_LEN, fp, flen));
        CU_ASSERT_EQUAL(p11c_key_from_der(NULL, NULL, der, dlen, NULL), P11C_OK);
        OPENSSL_free(got);
        EVP_PKEY_free(k);
        free(der);
        free(fp);
    }
    json_decref(j);
}

static void test_kdf(void)
{
    json_t *j = vec("kdf.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        size_t sl, el, ml;
        uint8_t *sec = tu_json_hex(t, "sec", &sl);
        uint8_t *ek = tu_json_hex(t, "enc_key", &el);
        uint8_t *mk = tu_json_hex(t, "mac_key", &ml);
        uint8_t e[32], m[32];

        CU_ASSERT_FATAL(sl == 64);
        CU_ASSERT_EQUAL(p11c_kdf(NULL, NULL, sec, e, m), P11C_OK);
        CU_ASSERT(bytes_eq(e, 32, ek, el));
        CU_ASSERT(bytes_eq(m, 32, mk, ml));
        free(sec);
        free(ek);
        free(mk);
    }
    json_decref(j);
}

/* Seal, parse, verify and open one record vector with the given open path. */
static void record_vector(const json_t *t, p11c_open_mode mode)
{
    size_t el, ml, ivl, pl, rl, outlen = 0;
    uint8_t *ek = tu_json_hex(t, "enc_key", &el);
    uint8_t *mk = tu_json_hex(t, "mac_key", &ml);
    uint8_t *iv = tu_json_hex(t, "iv", &ivl);
    uint8_t *pt = tu_json_hex(t, "plaintext", &pl);
    uint8_t *rec = tu_json_hex(t, "record", &rl);
    uint8_t *out = NULL, *m = NULL;
    P11C_REC r;
    P11C_REC_HDR h = {0}, g = {0};

    CU_ASSERT_FATAL(p11c_rec_init(&r, NULL, NULL, ek, mk) == P11C_OK);
    p11c_rec_set_open_mode(&r, mode);
    h.type = (uint8_t)json_integer_value(json_object_get(t, "type"));
    h.dir = (uint8_t)json_integer_value(json_object_get(t, "dir"));
    h.seq = (uint64_t)json_integer_value(json_object_get(t, "seq"));
    h.ack = (uint64_t)json_integer_value(json_object_get(t, "ack"));
    h.len = (uint32_t)pl;
    CU_ASSERT_EQUAL(p11c_rec_seal(&r, &h, iv, pt, &out, &outlen), P11C_OK);
    CU_ASSERT(bytes_eq(out, outlen, rec, rl));
    CU_ASSERT_EQUAL(p11c_rec_parse(rec, rl, &g), P11C_OK);
    CU_ASSERT(g.type == h.type && g.dir == h.dir && g.seq == h.seq && g.ack == h.ack &&
              g.len == h.len);
    CU_ASSERT_EQUAL(p11c_rec_verify(&r, rec, rl), P11C_OK);
    CU_ASSERT_EQUAL(p11c_rec_decrypt(&r, rec, &g, &m), P11C_OK);
    CU_ASSERT(bytes_eq(m, m == NULL ? 0 : g.len, pt, pl));
    OPENSSL_free(m);
    OPENSSL_free(out);
    p11c_rec_cleanup(&r);
    free(ek);
    free(mk);
    free(iv);
    free(pt);
    free(rec);
}

static void test_records_cfb(void)
{
    json_t *j = vec("records.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t) record_vector(t, P11C_OPEN_CFB);
    json_decref(j);
}

static void test_records_ecb(void)
{
    json_t *j = vec("records.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t) record_vector(t, P11C_OPEN_ECB);
    json_decref(j);
}

/* Both open paths agree with each other on every length from 0 to 80 and a few big ones. */
static void test_open_paths_agree(void)
{
    static const size_t lens[] = {0,  1,  15, 16, 17,   31,   32,    33,    63,
                                  64, 65, 79, 80, 1023, 1024, 16384, 65535, 65536};
    uint8_t ek[32], mk[32], iv[16];
    uint8_t *pt = malloc(65536);
    P11C_REC r;

    memset(ek, 0x11, 32);
    memset(mk, 0x22, 32);
    memset(iv, 0x33, 16);
    for (size_t i = 0; i < 65536; i++)
        pt[i] = (uint8_t)(i * 7 + 3);
    CU_ASSERT_FATAL(p11c_rec_init(&r, NULL, NULL, ek, mk) == P11C_OK);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        P11C_REC_HDR h = {P11C_REC_DATA, 0, (uint32_t)lens[i], i, 0}, g;
        uint8_t *rec = NULL, *m1 = NULL, *m2 = NULL;
        size_t rl = 0;

        CU_ASSERT_FATAL(p11c_rec_seal(&r, &h, iv, pt, &rec, &rl) == P11C_OK);
        CU_ASSERT_EQUAL(p11c_rec_parse(rec, rl, &g), P11C_OK);
        p11c_rec_set_open_mode(&r, P11C_OPEN_CFB);
        CU_ASSERT_EQUAL(p11c_rec_decrypt(&r, rec, &g, &m1), P11C_OK);
        p11c_rec_set_open_mode(&r, P11C_OPEN_ECB);
        CU_ASSERT_EQUAL(p11c_rec_decrypt(&r, rec, &g, &m2), P11C_OK);
        CU_ASSERT(bytes_eq(m1, m1 ? lens[i] : 0, pt, lens[i]));
        CU_ASSERT(bytes_eq(m2, m2 ? lens[i] : 0, pt, lens[i]));
        OPENSSL_free(m1);
        OPENSSL_free(m2);
        OPENSSL_free(rec);
    }
    p11c_rec_cleanup(&r);
    free(pt);
}

/* A record header with the given fields, `total` bytes long in all. */
static uint8_t *craft_record(uint8_t version, uint8_t type, uint8_t reserved, uint32_t len,
                             size_t total)
{
    uint8_t *rec = OPENSSL_zalloc(total + 1);

    CU_ASSERT_FATAL(rec != NULL);
    if (total >= P11C_HDR_LEN) {
        rec[0] = version;
        rec[1] = type;
        rec[3] = reserved;
        p11c_put_u32(rec + 4, len);
    }
    return rec;
}

/* Spec section 6: length first (consistency and the type's bound), then
 * version, type and reserved byte; each failure named by the first check. */
static void test_record_check_order(void)
{
    static const struct {
        uint8_t version, type, reserved;
        uint32_t len;
        size_t total;
        p11c_err want;
    } cases[] = {
        {1, P11C_REC_DATA, 0, 0, P11C_REC_OVERHEAD - 1, P11C_ERR_RECORD_LENGTH},
        {2, P11C_REC_DATA, 0, 5, P11C_REC_OVERHEAD + 4, P11C_ERR_RECORD_LENGTH},
        {2, P11C_REC_DATA, 0, 5, P11C_REC_OVERHEAD + 5, P11C_ERR_RECORD_HEADER},
        {1, P11C_REC_ACK, 1, 1, P11C_REC_OVERHEAD + 1, P11C_ERR_RECORD_LENGTH},
        {1, P11C_REC_ACK, 1, 0, P11C_REC_OVERHEAD, P11C_ERR_RECORD_HEADER},
        {1, P11C_REC_CLOSE, 7, 256, P11C_REC_OVERHEAD + 256, P11C_ERR_RECORD_LENGTH},
        {1, P11C_REC_CLOSE, 0, 255, P11C_REC_OVERHEAD + 255, P11C_OK},
        {1, P11C_REC_DATA, 0, P11C_MAX_DATA + 1, P11C_REC_OVERHEAD + P11C_MAX_DATA + 1,
         P11C_ERR_RECORD_LENGTH},
        {1, P11C_REC_DATA, 0, P11C_MAX_DATA, P11C_REC_OVERHEAD + P11C_MAX_DATA, P11C_OK},
        {1, 0x13, 0, 0, P11C_REC_OVERHEAD, P11C_ERR_RECORD_HEADER},
        {1, 0x0f, 0, P11C_MAX_DATA, P11C_REC_OVERHEAD + P11C_MAX_DATA, P11C_ERR_RECORD_HEADER},
        {1, 0x13, 0, P11C_MAX_DATA + 1, P11C_REC_OVERHEAD + P11C_MAX_DATA + 1,
         P11C_ERR_RECORD_LENGTH},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *rec = craft_record(cases[i].version, cases[i].type, cases[i].reserved,
                                    cases[i].len, cases[i].total);
        P11C_REC_HDR h;
        p11c_err e = p11c_rec_parse(rec, cases[i].total, &h);

        if (e != cases[i].want)
            fprintf(stderr, "\n  case %zu: got %s\n", i, p11c_strerror(e));
        CU_ASSERT_EQUAL(e, cases[i].want);
        OPENSSL_free(rec);
    }
}

/* Every single-bit flip of every record vector fails parsing or the MAC. */
static void test_record_bit_flips(void)
{
    json_t *j = vec("records.json"), *t;
    size_t i, flips = 0, bad = 0;

    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        size_t el, ml, rl;
        uint8_t *ek = tu_json_hex(t, "enc_key", &el);
        uint8_t *mk = tu_json_hex(t, "mac_key", &ml);
        uint8_t *rec = tu_json_hex(t, "record", &rl);
        P11C_REC r;

        CU_ASSERT_FATAL(p11c_rec_init(&r, NULL, NULL, ek, mk) == P11C_OK);
        for (size_t bit = 0; bit < rl * 8; bit++) {
            P11C_REC_HDR h;
            p11c_err e;

            rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            e = p11c_rec_parse(rec, rl, &h);
            if (e == P11C_OK)
                e = p11c_rec_verify(&r, rec, rl);
            flips++;
            if (e == P11C_ERR_RECORD_LENGTH || e == P11C_ERR_RECORD_HEADER || e == P11C_ERR_MAC)
                bad++;
            rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        p11c_rec_cleanup(&r);
        free(ek);
        free(mk);
        free(rec);
    }
    CU_ASSERT(flips > 1000);
    CU_ASSERT_EQUAL(bad, flips);
    json_decref(j);
}

static p11c_err collect_line(const char *text, size_t len, void *arg)
{
    char **out = arg;
    *out = OPENSSL_strndup(text, len);
    return P11C_OK;
}

static void test_framing_vectors(void)
{
    json_t *j = vec("framing.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        size_t ml, sl, outlen = 0, got_len = 0;
        uint8_t *msg = tu_json_hex(t, "message", &ml);
        uint8_t *stream = tu_json_hex(t, "stream", &sl);
        const char *text = tu_json_str(t, "text");
        uint8_t *out = NULL, *got = NULL;
        char *line = NULL;
        P11C_STREAM *st = p11c_stream_new();
        P11C_TEXT *tx = p11c_text_new();

        CU_ASSERT_EQUAL(p11c_frame_stream(msg, ml, &out, &outlen), P11C_OK);
        CU_ASSERT(bytes_eq(out, outlen, stream, sl));
        CU_ASSERT_EQUAL(p11c_stream_feed(st, stream, sl), P11C_OK);
        CU_ASSERT_EQUAL(p11c_stream_next(st, &got, &got_len), 1);
        CU_ASSERT(bytes_eq(got, got_len, msg, ml));
        CU_ASSERT_EQUAL(p11c_stream_pending(st), 0);
        OPENSSL_free(got);
        got = NULL;
        CU_ASSERT_EQUAL(p11c_text_encode(msg, ml, 0, collect_line, &line), P11C_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        CU_ASSERT_STRING_EQUAL(line, text);
        CU_ASSERT_EQUAL(p11c_text_read(tx, text, strlen(text), &got, &got_len), P11C_TEXT_MESSAGE);
        CU_ASSERT(bytes_eq(got, got_len, msg, ml));
        OPENSSL_free(got);
        OPENSSL_free(line);
        OPENSSL_free(out);
        p11c_stream_free(st);
        p11c_text_free(tx);
        free(msg);
        free(stream);
    }
    json_decref(j);
}

/* The exact error each hello_reject vector must give. */
static p11c_err expected_hello_error(const char *comment)
{
    static const struct {
        const char *comment;
        p11c_err err;
    } map[] = {
        {"valid HELLO (control case: must be accepted)", P11C_OK},
        {"version 2", P11C_ERR_VERSION},
        {"type REPLY where HELLO expected", P11C_ERR_TYPE},
        {"suite 2", P11C_ERR_SUITE},
        {"trailing byte", P11C_ERR_DECODE},
        {"truncated by one byte", P11C_ERR_DECODE},
        {"field length beyond message", P11C_ERR_DECODE},
        {"long-term key of 1024 bits", P11C_ERR_KEY},
        {"long-term key with exponent 3", P11C_ERR_KEY},
        {"session key of 1024 bits", P11C_ERR_KEY},
        {"identity with an ESC control character", P11C_ERR_IDENTITY},
        {"identity with invalid UTF-8", P11C_ERR_IDENTITY},
        {"empty identity", P11C_ERR_IDENTITY},
        {"identity of 256 bytes", P11C_ERR_IDENTITY},
        {"signature by another key", P11C_ERR_SIGNATURE},
        {"signature over another identity", P11C_ERR_SIGNATURE},
        {"public key with a non-canonical DER length", P11C_ERR_KEY},
        {"identity with a right-to-left override U+202E", P11C_ERR_IDENTITY},
        {"identity with a line separator U+2028", P11C_ERR_IDENTITY},
        {"identity with a zero-width space U+200B", P11C_ERR_IDENTITY},
        {"identity with a byte order mark U+FEFF", P11C_ERR_IDENTITY},
        {"identity ending with a space", P11C_ERR_IDENTITY},
        {"identity starting with a space", P11C_ERR_IDENTITY},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].comment, comment) == 0)
            return map[i].err;
    fprintf(stderr, "hello_reject: no expected error for \"%s\"\n", comment);
    return (p11c_err)-1;
}

static void test_hello_reject(void)
{
    json_t *j = vec("hello_reject.json"), *t;
    EVP_PKEY *ka = pt_key(NULL, "alice"), *kb = pt_key(NULL, "bob");
    P11C_TRUST *trust = p11c_trust_new();
    uint8_t fa[P11C_FP_LEN];
    size_t i, n = 0;

    CU_ASSERT_FATAL(p11c_fingerprint(NULL, NULL, ka, fa) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(trust, "Alice", fa) == P11C_OK);
    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        P11C_CONFIG c = {0};
        P11C_SESSION *s;
        PT_EVENTS ev = {0};
        size_t hl, ol;
        uint8_t *hello = tu_json_hex(t, "hello", &hl), *out;
        const char *comment = tu_json_str(t, "comment");
        p11c_err want = expected_hello_error(comment), got;
        int accept = json_is_true(json_object_get(t, "accept"));

        c.role = P11C_RESPONDER;
        c.key = kb;
        c.identity = "Bob";
        c.trust = trust;
        s = p11c_session_new(&c, NULL);
        CU_ASSERT_FATAL(s != NULL);
        CU_ASSERT_EQUAL(accept, want == P11C_OK);
        got = p11c_session_recv(s, hello, hl);
        if (got != want)
            fprintf(stderr, "hello_reject \"%s\": got %s\n", comment, p11c_strerror(got));
        CU_ASSERT_EQUAL(got, want);
        out = pt_pop(s, &ol);
        pt_drain(s, &ev);
        if (accept) {
            CU_ASSERT_PTR_NOT_NULL(out); /* a REPLY */
            CU_ASSERT(out != NULL && ol > 2 && out[1] == P11C_MSG_REPLY);
            CU_ASSERT_EQUAL(ev.n, 0);
        } else {
            CU_ASSERT_PTR_NULL(out); /* nothing is sent back */
            CU_ASSERT_EQUAL(p11c_session_error(s), want);
            CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ERROR && ev.ev[0].error == want);
            CU_ASSERT_EQUAL(p11c_session_recv(s, hello, hl), P11C_ERR_FAILED);
        }
        n++;
        OPENSSL_free(out);
        pt_events_clear(&ev);
        p11c_session_free(s);
        free(hello);
    }
    CU_ASSERT_EQUAL(n, 23);
    p11c_trust_free(trust);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    json_decref(j);
}

/* ---- handshake.json -------------------------------------------------------- */

typedef struct hs {
    json_t *j;
    uint8_t *hello, *reply, *confirm, *finish, *sec, *enc_key, *mac_key, *conf_a, *conf_b;
    size_t hello_len, reply_len, confirm_len, finish_len, sec_len, ek_len, mk_len, ca_len, cb_len;
    /* fields cut out of the messages */
    P11C_RCUR dummy;
    const uint8_t *pub_a, *pub_s, *sig_a, *pub_b, *enc_sec, *sig_b, *sig_c;
    size_t pub_a_len, pub_s_len, sig_a_len, pub_b_len, enc_sec_len, sig_b_len, sig_c_len;
    uint8_t ivs_a[16 * 8], ivs_b[16 * 8];
    size_t n_ivs_a, n_ivs_b;
} HS;

static void hs_load(HS *h)
{
    P11C_RCUR c;
    const uint8_t *skip;
    size_t skiplen, i;
    json_t *r;

    memset(h, 0, sizeof(*h));
    h->j = vec("handshake.json");
    h->hello = tu_json_hex(h->j, "hello", &h->hello_len);
    h->reply = tu_json_hex(h->j, "reply", &h->reply_len);
    h->confirm = tu_json_hex(h->j, "confirm", &h->confirm_len);
    h->finish = tu_json_hex(h->j, "finish", &h->finish_len);
    h->sec = tu_json_hex(h->j, "sec", &h->sec_len);
    h->enc_key = tu_json_hex(h->j, "enc_key", &h->ek_len);
    h->mac_key = tu_json_hex(h->j, "mac_key", &h->mk_len);
    h->conf_a = tu_json_hex(h->j, "confirm_a", &h->ca_len);
    h->conf_b = tu_json_hex(h->j, "confirm_b", &h->cb_len);
    p11c_rcur_init(&c, h->hello + 3, h->hello_len - 3);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &h->pub_a, &h->pub_a_len) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &h->pub_s, &h->pub_s_len) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &skip, &skiplen) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &h->sig_a, &h->sig_a_len) == P11C_OK && c.left == 0);
    p11c_rcur_init(&c, h->reply + 2, h->reply_len - 2);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &h->pub_b, &h->pub_b_len) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &h->enc_sec, &h->enc_sec_len) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &skip, &skiplen) == P11C_OK &&
                    p11c_rcur_vec(&c, 8192, &h->sig_b, &h->sig_b_len) == P11C_OK && c.left == 0);
    p11c_rcur_init(&c, h->confirm + 2, h->confirm_len - 2);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &h->sig_c, &h->sig_c_len) == P11C_OK && c.left == 32);
    json_array_foreach(json_object_get(h->j, "records"), i, r)
    {
        size_t rl;
        uint8_t *rec = tu_json_hex(r, "record", &rl);
        int alice = strcmp(tu_json_str(r, "sender"), "alice") == 0;
        uint8_t *dst = alice ? h->ivs_a + 16 * h->n_ivs_a++ : h->ivs_b + 16 * h->n_ivs_b++;

        memcpy(dst, rec + 24, 16);
        free(rec);
    }
}

static void hs_free(HS *h)
{
    free(h->hello);
    free(h->reply);
    free(h->confirm);
    free(h->finish);
    free(h->sec);
    free(h->enc_key);
    free(h->mac_key);
    free(h->conf_a);
    free(h->conf_b);
    json_decref(h->j);
}

static void test_handshake_values(void)
{
    HS h;
    P11C_WBUF w;
    EVP_PKEY *ka = pt_key(NULL, "alice"), *kb = pt_key(NULL, "bob"), *ks = pt_key(NULL, "session");
    EVP_PKEY *pa = NULL, *pb = NULL;
    uint8_t sec[64], ek[32], mk[32], digest[32], conf[32], *tbs;
    size_t tl;
    unsigned int dl;
    P11C_REC r;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    hs_load(&h);
    CU_ASSERT_EQUAL(p11c_key_from_der(NULL, NULL, h.pub_a, h.pub_a_len, &pa), P11C_OK);
    CU_ASSERT_EQUAL(p11c_key_from_der(NULL, NULL, h.pub_b, h.pub_b_len, &pb), P11C_OK);
    /* TBS_A */
    p11c_wbuf_init(&w);
    tbs = tu_json_hex(h.j, "tbs_a", &tl);
    CU_ASSERT_EQUAL(
        p11c_tbs_a(&w, h.pub_a, h.pub_a_len, h.pub_s, h.pub_s_len, (const uint8_t *)"Alice", 5),
        P11C_OK);
    CU_ASSERT(bytes_eq(w.buf, w.len, tbs, tl));
    CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, pa, tbs, tl, h.sig_a, h.sig_a_len), P11C_OK);
    free(tbs);
    p11c_wbuf_cleanup(&w);
    /* TBS_B */
    tbs = tu_json_hex(h.j, "tbs_b", &tl);
    CU_ASSERT_EQUAL(p11c_tbs_b(&w, h.pub_b, h.pub_b_len, h.enc_sec, h.enc_sec_len, h.pub_a,
                               h.pub_a_len, h.pub_s, h.pub_s_len, (const uint8_t *)"Alice", 5,
                               (const uint8_t *)"Bob", 3),
                    P11C_OK);
    CU_ASSERT(bytes_eq(w.buf, w.len, tbs, tl));
    CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, pb, tbs, tl, h.sig_b, h.sig_b_len), P11C_OK);
    /* Sig_B is not Sig_A: labels keep the signatures apart. */
    CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, pa, tbs, tl, h.sig_a, h.sig_a_len),
                    P11C_ERR_SIGNATURE);
    free(tbs);
    p11c_wbuf_cleanup(&w);
    /* TBS_C */
    tbs = tu_json_hex(h.j, "tbs_c", &tl);
    CU_ASSERT_EQUAL(p11c_tbs_c(&w, h.pub_a, h.pub_a_len, h.enc_sec, h.enc_sec_len, h.pub_b,
                               h.pub_b_len, (const uint8_t *)"Alice", 5, (const uint8_t *)"Bob", 3),
                    P11C_OK);
    CU_ASSERT(bytes_eq(w.buf, w.len, tbs, tl));
    CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, pa, tbs, tl, h.sig_c, h.sig_c_len), P11C_OK);
    free(tbs);
    p11c_wbuf_cleanup(&w);
    /* Sec, keys, confirmations */
    CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(NULL, NULL, ks, h.enc_sec, h.enc_sec_len, sec), P11C_OK);
    CU_ASSERT(bytes_eq(sec, 64, h.sec, h.sec_len));
    CU_ASSERT_EQUAL(p11c_kdf(NULL, NULL, sec, ek, mk), P11C_OK);
    CU_ASSERT(bytes_eq(ek, 32, h.enc_key, h.ek_len));
    CU_ASSERT(bytes_eq(mk, 32, h.mac_key, h.mk_len));
    CU_ASSERT_FATAL(p11c_rec_init(&r, NULL, NULL, ek, mk) == P11C_OK);
    EVP_DigestInit_ex2(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, h.hello, h.hello_len);
    EVP_DigestUpdate(md, h.reply, h.reply_len);
    EVP_DigestUpdate(md, h.sig_c, h.sig_c_len);
    EVP_DigestFinal_ex(md, digest, &dl);
    CU_ASSERT_EQUAL(p11c_rec_confirm(&r, "P11C confirm A", digest, conf), P11C_OK);
    CU_ASSERT(bytes_eq(conf, 32, h.conf_a, h.ca_len));
    CU_ASSERT(bytes_eq(h.confirm + h.confirm_len - 32, 32, h.conf_a, h.ca_len));
    EVP_DigestInit_ex2(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, h.hello, h.hello_len);
    EVP_DigestUpdate(md, h.reply, h.reply_len);
    EVP_DigestUpdate(md, h.confirm, h.confirm_len);
    EVP_DigestFinal_ex(md, digest, &dl);
    CU_ASSERT_EQUAL(p11c_rec_confirm(&r, "P11C confirm B", digest, conf), P11C_OK);
    CU_ASSERT(bytes_eq(conf, 32, h.conf_b, h.cb_len));
    CU_ASSERT(bytes_eq(h.finish + 2, 32, h.conf_b, h.cb_len));
    p11c_rec_cleanup(&r);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pa);
    EVP_PKEY_free(pb);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(ks);
    hs_free(&h);
}

static P11C_SESSION *hs_session(p11c_role role, EVP_PKEY *key, P11C_TRUST *trust)
{
    P11C_CONFIG c = {0};
    P11C_SESSION *s;

    c.role = role;
    c.key = key;
    c.identity = role == P11C_INITIATOR ? "Alice" : "Bob";
    c.trust = trust;
    c.known_only = 1;
    c.session_key_fn = pt_session_key_fn;
    s = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(s != NULL);
    return s;
}

static void check_established(P11C_SESSION *s, const json_t *want)
{
    PT_EVENTS ev = {0};

    pt_drain(s, &ev);
    CU_ASSERT_FATAL(ev.n == 1 && ev.ev[0].type == P11C_EV_ESTABLISHED);
    CU_ASSERT_STRING_EQUAL(ev.ev[0].peer_id, tu_json_str(want, "identity"));
    CU_ASSERT_STRING_EQUAL(ev.ev[0].short_fp, tu_json_str(want, "fingerprint"));
    CU_ASSERT_STRING_EQUAL(p11c_trust_result_name(ev.ev[0].trust), tu_json_str(want, "trust"));
    pt_events_clear(&ev);
}

/* Plays the records of handshake.json from `me`'s side. */
static void replay_records(HS *h, P11C_SESSION *s, const char *me)
{
    json_t *r;
    size_t i;

    json_array_foreach(json_object_get(h->j, "records"), i, r)
    {
        size_t rl, pl, ol = 0;
        uint8_t *rec = tu_json_hex(r, "record", &rl);
        uint8_t *pt = tu_json_hex(r, "plaintext", &pl), *out;
        const char *type = tu_json_str(r, "type");
        PT_EVENTS ev = {0};

        if (strcmp(tu_json_str(r, "sender"), me) == 0) {
            if (json_object_get(r, "note") == NULL) { /* else: the automatic answering CLOSE */
                if (strcmp(type, "DATA") == 0)
                    CU_ASSERT_EQUAL(p11c_session_send_data(s, pt, pl), P11C_OK);
                if (strcmp(type, "ACK") == 0)
                    CU_ASSERT_EQUAL(p11c_session_send_ack(s), P11C_OK);
                if (strcmp(type, "CLOSE") == 0) {
                    char *reason = OPENSSL_strndup((const char *)pt, pl);
                    CU_ASSERT_EQUAL(p11c_session_send_close(s, reason), P11C_OK);
                    OPENSSL_free(reason);
                }
            }
            out = pt_pop(s, &ol);
            CU_ASSERT(bytes_eq(out, ol, rec, rl));
            OPENSSL_free(out);
        } else {
            CU_ASSERT_EQUAL(p11c_session_recv(s, rec, rl), P11C_OK);
            pt_drain(s, &ev);
            CU_ASSERT_FATAL(ev.n >= 1);
            if (strcmp(type, "DATA") == 0) {
                CU_ASSERT_EQUAL(ev.ev[0].type, P11C_EV_DATA);
                CU_ASSERT(bytes_eq(ev.ev[0].data, ev.ev[0].len, pt, pl));
            } else if (strcmp(type, "ACK") == 0) {
                CU_ASSERT_EQUAL(ev.ev[0].type, P11C_EV_ACK);
                CU_ASSERT_EQUAL(ev.ev[0].count, p11c_get_u64(rec + 16));
            } else {
                CU_ASSERT_EQUAL(ev.ev[0].type, P11C_EV_CLOSE);
                CU_ASSERT(bytes_eq(ev.ev[0].data, ev.ev[0].len, pt, pl));
            }
            pt_events_clear(&ev);
        }
        free(rec);
        free(pt);
    }
    CU_ASSERT(p11c_session_closed(s));
    CU_ASSERT_EQUAL(p11c_session_error(s), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_transport_end(s), P11C_OK);
}

/* One side of the recorded handshake: both keys, a store trusting the other side, a session. */
typedef struct party {
    EVP_PKEY *ka, *kb;
    P11C_TRUST *t;
    P11C_SESSION *s;
} PARTY;

static P11C_SESSION *party_init(PARTY *p, p11c_role role)
{
    int alice = role == P11C_INITIATOR;
    uint8_t fp[P11C_FP_LEN];

    p->ka = pt_key(NULL, "alice");
    p->kb = pt_key(NULL, "bob");
    p->t = p11c_trust_new();
    CU_ASSERT_FATAL(p11c_fingerprint(NULL, NULL, alice ? p->kb : p->ka, fp) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(p->t, alice ? "Bob" : "Alice", fp) == P11C_OK);
    p->s = hs_session(role, alice ? p->ka : p->kb, p->t);
    return p->s;
}

static void party_free(PARTY *p)
{
    p11c_session_free(p->s);
    p11c_trust_free(p->t);
    EVP_PKEY_free(p->ka);
    EVP_PKEY_free(p->kb);
}

static void replay_alice(p11c_open_mode mode)
{
    HS h;
    PARTY party;
    size_t ol = 0;
    P11C_SESSION *s = party_init(&party, P11C_INITIATOR);
    P11C_TEST_HOOKS hk = {0};

    hs_load(&h);
    hk.sig_a = h.sig_a;
    hk.sig_a_len = h.sig_a_len;
    hk.sig_c = h.sig_c;
    hk.sig_c_len = h.sig_c_len;
    hk.ivs = h.ivs_a;
    hk.n_ivs = h.n_ivs_a;
    hk.open_mode = mode;
    p11c_session_set_test_hooks(s, &hk);
    pt_step(s, NULL, 0, h.hello, h.hello_len);
    pt_step(s, h.reply, h.reply_len, h.confirm, h.confirm_len);
    CU_ASSERT(!p11c_session_established(s));
    CU_ASSERT_EQUAL_FATAL(p11c_session_recv(s, h.finish, h.finish_len), P11C_OK);
    CU_ASSERT(p11c_session_established(s));
    CU_ASSERT_PTR_NULL(pt_pop(s, &ol));
    check_established(s, json_object_get(h.j, "established_at_alice"));
    replay_records(&h, s, "alice");
    party_free(&party);
    hs_free(&h);
}

static void replay_bob(p11c_open_mode mode)
{
    HS h;
    PARTY party;
    size_t ol = 0;
    P11C_SESSION *s = party_init(&party, P11C_RESPONDER);
    P11C_TEST_HOOKS hk = {0};

    hs_load(&h);
    hk.sec = h.sec;
    hk.enc_sec = h.enc_sec;
    hk.enc_sec_len = h.enc_sec_len;
    hk.sig_b = h.sig_b;
    hk.sig_b_len = h.sig_b_len;
    hk.ivs = h.ivs_b;
    hk.n_ivs = h.n_ivs_b;
    hk.open_mode = mode;
    p11c_session_set_test_hooks(s, &hk);
    CU_ASSERT_EQUAL_FATAL(p11c_session_start(s), P11C_OK);
    CU_ASSERT_PTR_NULL(pt_pop(s, &ol));
    pt_step(s, h.hello, h.hello_len, h.reply, h.reply_len);
    pt_step(s, h.confirm, h.confirm_len, h.finish, h.finish_len);
    CU_ASSERT(p11c_session_established(s));
    check_established(s, json_object_get(h.j, "established_at_bob"));
    replay_records(&h, s, "bob");
    party_free(&party);
    hs_free(&h);
}

static void test_replay_alice_cfb(void)
{
    replay_alice(P11C_OPEN_CFB);
}
static void test_replay_alice_ecb(void)
{
    replay_alice(P11C_OPEN_ECB);
}
static void test_replay_bob_cfb(void)
{
    replay_bob(P11C_OPEN_CFB);
}
static void test_replay_bob_ecb(void)
{
    replay_bob(P11C_OPEN_ECB);
}

/*
 * Without replay hooks: Bob accepts the recorded HELLO and answers with a REPLY
 * of his own; the recorded CONFIRM then fails (it signs the recorded EncSec).
 * Alice, with S from keys.json, accepts the recorded REPLY (so Sec decrypts
 * right); her own CONFIRM carries a valid Sig_C over the recorded TBS_C; the
 * recorded FINISH then fails (it confirms another HELLO).
 */
static void test_recorded_without_hooks(void)
{
    HS h;
    PARTY bob, alice;
    uint8_t *out, *tbs;
    size_t ol = 0, tl;
    P11C_SESSION *s;
    P11C_RCUR c;
    const uint8_t *sig;
    size_t siglen;

    hs_load(&h);
    s = party_init(&bob, P11C_RESPONDER);
    CU_ASSERT_EQUAL(p11c_session_recv(s, h.hello, h.hello_len), P11C_OK);
    out = pt_pop(s, &ol);
    CU_ASSERT(out != NULL && out[1] == P11C_MSG_REPLY && !bytes_eq(out, ol, h.reply, h.reply_len));
    OPENSSL_free(out);
    CU_ASSERT_EQUAL(p11c_session_recv(s, h.confirm, h.confirm_len), P11C_ERR_SIGNATURE);
    CU_ASSERT_PTR_NULL(pt_pop(s, &ol));
    party_free(&bob);

    s = party_init(&alice, P11C_INITIATOR);
    CU_ASSERT_EQUAL(p11c_session_start(s), P11C_OK);
    out = pt_pop(s, &ol);
    /* Same fields as the recording, a fresh signature. */
    CU_ASSERT(out != NULL && ol == h.hello_len &&
              memcmp(out, h.hello, h.hello_len - h.sig_a_len) == 0);
    OPENSSL_free(out);
    CU_ASSERT_EQUAL(p11c_session_recv(s, h.reply, h.reply_len), P11C_OK);
    out = pt_pop(s, &ol);
    CU_ASSERT_FATAL(out != NULL && out[1] == P11C_MSG_CONFIRM);
    p11c_rcur_init(&c, out + 2, ol - 2);
    CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &sig, &siglen) == P11C_OK);
    tbs = tu_json_hex(h.j, "tbs_c", &tl);
    CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, alice.ka, tbs, tl, sig, siglen), P11C_OK);
    free(tbs);
    OPENSSL_free(out);
    CU_ASSERT_EQUAL(p11c_session_recv(s, h.finish, h.finish_len), P11C_ERR_CONFIRM);
    party_free(&alice);
    hs_free(&h);
}

/* PSS is checked with salt 32 exactly, OAEP with SHA-256 and MGF1-SHA-256 only. */
static void test_primitive_parameters(void)
{
    EVP_PKEY *ka = pt_key(NULL, "alice"), *ks = pt_key(NULL, "session");
    static const uint8_t msg[] = "parameters matter";
    uint8_t sig[256], ct[256], sec[64], out[64];
    size_t siglen, ctlen;
    int salts[] = {20, 0, 222};

    for (size_t i = 0; i < 3; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pc = NULL;
        siglen = sizeof(sig);
        CU_ASSERT_FATAL(EVP_DigestSignInit_ex(md, &pc, "SHA256", NULL, NULL, ka, NULL) == 1);
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salts[i]);
        CU_ASSERT_FATAL(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1);
        CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, ka, msg, sizeof(msg), sig, siglen),
                        P11C_ERR_SIGNATURE);
        EVP_MD_CTX_free(md);
    }
    {
        /* PKCS#1 v1.5 */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        siglen = sizeof(sig);
        CU_ASSERT_FATAL(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, ka, NULL) == 1);
        CU_ASSERT_FATAL(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1);
        ERR_clear_error();
        CU_ASSERT_EQUAL(p11c_pss_verify(NULL, NULL, ka, msg, sizeof(msg), sig, siglen),
                        P11C_ERR_SIGNATURE);
        CU_ASSERT_EQUAL(ERR_peek_error(), 0); /* an answer, not an error */
        EVP_MD_CTX_free(md);
    }
    memset(sec, 7, sizeof(sec));
    for (int variant = 0; variant < 3; variant++) {
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, ks, NULL);
        CU_ASSERT_FATAL(EVP_PKEY_encrypt_init(pc) == 1);
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING);
        EVP_PKEY_CTX_set_rsa_oaep_md_name(pc, variant == 0 ? "SHA1" : "SHA256", NULL);
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(pc, variant == 1 ? "SHA1" : "SHA256", NULL);
        if (variant == 2) {
            unsigned char *label = OPENSSL_memdup("label", 5);
            EVP_PKEY_CTX_set0_rsa_oaep_label(pc, label, 5);
        }
        ctlen = sizeof(ct);
        CU_ASSERT_FATAL(EVP_PKEY_encrypt(pc, ct, &ctlen, sec, sizeof(sec)) == 1);
        ERR_clear_error();
        CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(NULL, NULL, ks, ct, ctlen, out), P11C_ERR_SECRET);
        /* The provider's reason stays for the application (with a token: its CKR). */
        CU_ASSERT_NOT_EQUAL(ERR_peek_error(), 0);
        ERR_clear_error();
        EVP_PKEY_CTX_free(pc);
    }
    /* A secret of 63 bytes is refused even when it decrypts. */
    {
        uint8_t *c2 = NULL;
        size_t l2 = 0;
        CU_ASSERT_EQUAL(p11c_oaep_encrypt(NULL, NULL, ks, sec, 63, &c2, &l2), P11C_OK);
        CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(NULL, NULL, ks, c2, l2, out), P11C_ERR_SECRET);
        CU_ASSERT_EQUAL(ERR_peek_error(), 0); /* decrypted fine, just not 64 bytes */
        OPENSSL_free(c2);
        CU_ASSERT_EQUAL(p11c_oaep_encrypt(NULL, NULL, ks, sec, 64, &c2, &l2), P11C_OK);
        CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(NULL, NULL, ks, c2, l2, out), P11C_OK);
        CU_ASSERT(memcmp(out, sec, 64) == 0);
        OPENSSL_free(c2);
    }
    EVP_PKEY_free(ka);
    EVP_PKEY_free(ks);
}

/*
 * Wycheproof HMAC-SHA256 through the library's own HMAC (the one the key
 * schedule, record MACs and confirmations use). The protocol only ever uses
 * full 32-byte tags; the 128-bit groups check the truncated prefix with the
 * same constant-time comparison. Every tcId is counted.
 */
static void test_wycheproof_hmac(void)
{
    json_t *j = tu_vector_load("wycheproof/hmac_sha256_test.json"), *g, *t;
    size_t gi, ti, total = 0, valid = 0, invalid = 0, truncated = 0, full_exact = 0;
    int last_id = 0;

    CU_ASSERT_FATAL(j != NULL);
    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        size_t taglen = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;

        CU_ASSERT_FATAL(taglen == 16 || taglen == P11C_MAC_LEN);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t kl, ml, tl;
            uint8_t *key = tu_json_hex(t, "key", &kl);
            uint8_t *msg = tu_json_hex(t, "msg", &ml);
            uint8_t *tag = tu_json_hex(t, "tag", &tl);
            const char *result = tu_json_str(t, "result");
            int id = (int)json_integer_value(json_object_get(t, "tcId"));
            int expect_ok = strcmp(result, "valid") == 0;
            EVP_MAC_CTX *ctx = p11c_hmac_new(NULL, NULL, key, kl);
            uint8_t out[P11C_MAC_LEN];
            p11c_err e;

            CU_ASSERT_FATAL(ctx != NULL);
            CU_ASSERT(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
            CU_ASSERT_EQUAL(id, last_id + 1); /* tcIds 1..n, each once, in order */
            last_id = id;
            /* A tag of another length than the group's is a mismatch by definition. */
            e = tl == taglen ? p11c_hmac_verify(ctx, msg, ml, NULL, 0, tag, tl) : P11C_ERR_MAC;
            if (e != (expect_ok ? P11C_OK : P11C_ERR_MAC))
                fprintf(stderr, "\n  tcId %d (%s): got %s\n", id, result, p11c_strerror(e));
            CU_ASSERT_EQUAL(e, expect_ok ? P11C_OK : P11C_ERR_MAC);
            /* The same tag through the computing path, byte for byte. */
            CU_ASSERT_EQUAL(p11c_hmac(ctx, msg, ml, NULL, 0, out), P11C_OK);
            if (expect_ok && taglen == P11C_MAC_LEN) {
                CU_ASSERT(bytes_eq(out, sizeof(out), tag, tl));
                full_exact++;
            }
            if (tl == taglen)
                CU_ASSERT_EQUAL(CRYPTO_memcmp(out, tag, tl) == 0, expect_ok);
            /* The message split in two parts gives the same MAC. */
            {
                uint8_t split[P11C_MAC_LEN];
                CU_ASSERT_EQUAL(p11c_hmac(ctx, msg, ml / 2, msg + ml / 2, ml - ml / 2, split),
                                P11C_OK);
                CU_ASSERT(memcmp(split, out, sizeof(out)) == 0);
            }
            total++;
            valid += expect_ok;
            invalid += !expect_ok;
            truncated += taglen < P11C_MAC_LEN;
            EVP_MAC_CTX_free(ctx);
            free(key);
            free(msg);
            free(tag);
        }
    }
    CU_ASSERT_EQUAL(total, (size_t)json_integer_value(json_object_get(j, "numberOfTests")));
    CU_ASSERT_EQUAL(total, 174);
    CU_ASSERT_EQUAL(valid, 66);
    CU_ASSERT_EQUAL(invalid, 108);
    CU_ASSERT_EQUAL(truncated, 87);  /* tagSize 128: checked on the prefix, not used by P11C */
    CU_ASSERT_EQUAL(full_exact, 33); /* valid with the full 32-byte tag: exact bytes */
    CU_ASSERT_EQUAL(last_id, 174);
    json_decref(j);
}

/* Tag lengths outside 1..32 are refused, not compared on a prefix of nothing. */
static void test_hmac_verify_lengths(void)
{
    static const uint8_t key[3] = {1, 2, 3};
    EVP_MAC_CTX *ctx = p11c_hmac_new(NULL, NULL, key, sizeof(key));
    uint8_t out[P11C_MAC_LEN], big[P11C_MAC_LEN + 1] = {0};

    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT_EQUAL(p11c_hmac(ctx, (const uint8_t *)"abc", 3, NULL, 0, out), P11C_OK);
    CU_ASSERT_EQUAL(p11c_hmac_verify(ctx, (const uint8_t *)"abc", 3, NULL, 0, out, 0),
                    P11C_ERR_ARG);
    memcpy(big, out, sizeof(out));
    CU_ASSERT_EQUAL(p11c_hmac_verify(ctx, (const uint8_t *)"abc", 3, NULL, 0, big, sizeof(big)),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_hmac_verify(ctx, (const uint8_t *)"abc", 3, NULL, 0, out, 1), P11C_OK);
    out[0] ^= 1;
    CU_ASSERT_EQUAL(p11c_hmac_verify(ctx, (const uint8_t *)"abc", 3, NULL, 0, out, 1),
                    P11C_ERR_MAC);
    /* An empty key is a key (HMAC pads it with zeros), not "keep the old one". */
    {
        EVP_MAC_CTX *empty = p11c_hmac_new(NULL, NULL, NULL, 0);
        EVP_MAC_CTX *zeros = p11c_hmac_new(NULL, NULL, (const uint8_t *)"\0\0\0\0", 4);
        uint8_t a[P11C_MAC_LEN], b[P11C_MAC_LEN];
        CU_ASSERT_FATAL(empty != NULL && zeros != NULL);
        CU_ASSERT_EQUAL(p11c_hmac(empty, (const uint8_t *)"abc", 3, NULL, 0, a), P11C_OK);
        CU_ASSERT_EQUAL(p11c_hmac(zeros, (const uint8_t *)"abc", 3, NULL, 0, b), P11C_OK);
        CU_ASSERT(memcmp(a, b, sizeof(a)) == 0);
        EVP_MAC_CTX_free(empty);
        EVP_MAC_CTX_free(zeros);
    }
    /* No HMAC under an unsatisfiable property query. */
    CU_ASSERT(p11c_hmac_new(NULL, "provider=nonexistent", key, sizeof(key)) == NULL);
    ERR_clear_error();
    EVP_MAC_CTX_free(ctx);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_vectors", NULL, NULL);
    CU_add_test(s, "fingerprint.json", test_fingerprints);
    CU_add_test(s, "kdf.json", test_kdf);
    CU_add_test(s, "records.json, EVP CFB open", test_records_cfb);
    CU_add_test(s, "records.json, ECB+XOR open", test_records_ecb);
    CU_add_test(s, "open paths agree at every length", test_open_paths_agree);
    CU_add_test(s, "records.json: every bit flip rejected", test_record_bit_flips);
    CU_add_test(s, "record checks in the order of the spec", test_record_check_order);
    CU_add_test(s, "framing.json", test_framing_vectors);
    CU_add_test(s, "hello_reject.json with exact errors", test_hello_reject);
    CU_add_test(s, "handshake.json: TBS, Sec, keys, confirmations", test_handshake_values);
    CU_add_test(s, "handshake.json as Alice (CFB open)", test_replay_alice_cfb);
    CU_add_test(s, "handshake.json as Alice (ECB open)", test_replay_alice_ecb);
    CU_add_test(s, "handshake.json as Bob (CFB open)", test_replay_bob_cfb);
    CU_add_test(s, "handshake.json as Bob (ECB open)", test_replay_bob_ecb);
    CU_add_test(s, "handshake.json without replay hooks", test_recorded_without_hooks);
    CU_add_test(s, "PSS salt 32 only, OAEP SHA-256 only", test_primitive_parameters);
    CU_add_test(s, "Wycheproof HMAC-SHA256 through p11c_hmac", test_wycheproof_hmac);
    CU_add_test(s, "HMAC tag lengths and empty keys", test_hmac_verify_lengths);
    return tu_main();
}
