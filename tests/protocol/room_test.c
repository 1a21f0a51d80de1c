/*
 * Handshakes over a text transport (spec section 9.1): whatever anyone else
 * in the room writes during the handshake is dropped and reported, and the
 * real peer's messages still complete it.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "p11c_internal.h"
#include "ptest.h"

/* Replaces p->a or p->b by a session of the pair's key and store over a text
 * transport (window policy). */
static void text_session(PT_PAIR *p, p11c_role role, int known_only)
{
    P11C_CONFIG c = {0};

    c.role = role;
    c.key = role == P11C_INITIATOR ? p->ka : p->kb;
    c.identity = role == P11C_INITIATOR ? "Alice" : "Bob";
    c.trust = role == P11C_INITIATOR ? p->ta : p->tb;
    c.known_only = known_only;
    c.policy = P11C_POLICY_WINDOW;
    c.session_key_fn = pt_session_key_fn;
    c.text_transport = 1;
    if (role == P11C_INITIATOR) {
        p11c_session_free(p->a);
        p->a = p11c_session_new(&c, NULL);
        CU_ASSERT_FATAL(p->a != NULL);
    } else {
        p11c_session_free(p->b);
        p->b = p11c_session_new(&c, NULL);
        CU_ASSERT_FATAL(p->b != NULL);
    }
}

/* Feeds msg to s: it must be dropped, reported once with `why`, and leave
 * nothing to send. */
static void dropped(P11C_SESSION *s, const uint8_t *msg, size_t len, p11c_err why, P11C_EVENT *copy)
{
    PT_EVENTS e = {0};
    size_t ol;

    ERR_clear_error();
    CU_ASSERT_EQUAL(p11c_session_recv(s, msg, len), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_error(s), P11C_OK);
    CU_ASSERT_FALSE(p11c_session_closed(s));
    CU_ASSERT_PTR_NULL(pt_pop(s, &ol));
    CU_ASSERT_EQUAL(ERR_peek_error(), 0); /* nothing of it left in OpenSSL's queue */
    pt_drain(s, &e);
    CU_ASSERT_EQUAL_FATAL(e.n, 1);
    CU_ASSERT_EQUAL(e.ev[0].type, P11C_EV_REJECTED);
    CU_ASSERT_EQUAL(e.ev[0].error, why);
    if (copy != NULL) {
        *copy = e.ev[0];
        e.ev[0].data = NULL;
    }
    pt_events_clear(&e);
}

/* A HELLO made by `key` claiming `id`, as someone else in the room would. */
static uint8_t *hello_of(EVP_PKEY *key, const char *id, size_t *len)
{
    P11C_CONFIG c = {0};
    c.role = P11C_INITIATOR;
    c.key = key;
    c.identity = id;
    c.session_key_fn = pt_session_key_fn;
    P11C_SESSION *s = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_FATAL(p11c_session_start(s) == P11C_OK);
    uint8_t *m = pt_pop(s, len);
    p11c_session_free(s);
    return m;
}

static void test_responder_keeps_waiting(void)
{
    PT_PAIR p;
    EVP_PKEY *kc = pt_key(NULL, "carol3072");
    uint8_t fa[P11C_FP_LEN], fc[P11C_FP_LEN];
    static const uint8_t junk[] = {1, 0x01, 0x01, 0, 0, 0};
    static const uint8_t record[40] = {1, 0x10, 0, 0};
    P11C_EVENT ev;
    size_t l;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    text_session(&p, P11C_RESPONDER, 1);
    p11c_fingerprint(NULL, NULL, p.ka, fa);
    p11c_fingerprint(NULL, NULL, kc, fc);
    CU_ASSERT_EQUAL(p11c_session_start(p.b), P11C_OK);

    /* Malformed, a record, a message of the wrong kind, a version from elsewhere. */
    dropped(p.b, junk, sizeof(junk), P11C_ERR_DECODE, NULL);
    dropped(p.b, junk, 1, P11C_ERR_DECODE, NULL);
    dropped(p.b, record, sizeof(record), P11C_ERR_EARLY_RECORD, NULL);
    dropped(p.b, (const uint8_t[]){1, 0x04, 0}, 3, P11C_ERR_TYPE, NULL);
    dropped(p.b, (const uint8_t[]){2, 0x01, 0}, 3, P11C_ERR_VERSION, NULL);

    /* Carol, unknown, under known-only: named in the report. */
    uint8_t *hc = hello_of(kc, "Carol", &l);
    dropped(p.b, hc, l, P11C_ERR_UNKNOWN_PEER, &ev);
    CU_ASSERT_STRING_EQUAL(ev.peer_id, "Carol");
    CU_ASSERT_EQUAL(memcmp(ev.fp, fc, P11C_FP_LEN), 0);
    CU_ASSERT_EQUAL(ev.trust, P11C_UNKNOWN);
    OPENSSL_free(hc);
    /* Carol's key claiming to be Alice: a mismatch, with both sides of it. */
    hc = hello_of(kc, "Alice", &l);
    dropped(p.b, hc, l, P11C_ERR_TRUST_MISMATCH, &ev);
    CU_ASSERT_STRING_EQUAL(ev.peer_id, "Alice");
    CU_ASSERT_EQUAL(memcmp(ev.fp, fc, P11C_FP_LEN), 0);
    CU_ASSERT_STRING_NOT_EQUAL(ev.short_fp, "");
    CU_ASSERT_EQUAL(ev.trust, P11C_MISMATCH);
    OPENSSL_free(hc);

    /* Alice's real HELLO with its signature broken, then whole. */
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    uint8_t *ha = pt_pop(p.a, &l);
    CU_ASSERT_FATAL(ha != NULL);
    ha[l - 1] ^= 1;
    dropped(p.b, ha, l, P11C_ERR_SIGNATURE, NULL);
    ha[l - 1] ^= 1;
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, ha, l), P11C_OK);
    OPENSSL_free(ha);
    uint8_t *reply = pt_pop(p.b, &l);
    CU_ASSERT_FATAL(reply != NULL);
    /* Now a second HELLO (even Alice's again) is one too many. */
    size_t l2;
    hc = hello_of(p.ka, "Alice", &l2);
    dropped(p.b, hc, l2, P11C_ERR_TYPE, NULL);
    OPENSSL_free(hc);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, l), P11C_OK);
    OPENSSL_free(reply);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(p11c_session_established(p.a) && p11c_session_established(p.b));
    CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].type == P11C_EV_ESTABLISHED &&
              p.eb.ev[0].trust == P11C_TRUSTED && strcmp(p.eb.ev[0].peer_id, "Alice") == 0);
    EVP_PKEY_free(kc);
    pt_pair_free(&p);
}

/* One pass of the handshake, with a forged copy of each message offered
 * first: every forgery is dropped, every real message completes its step. */
static void test_each_step_survives_forgeries(void)
{
    PT_PAIR p;
    uint8_t *m;
    size_t l;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    text_session(&p, P11C_INITIATOR, 0);
    text_session(&p, P11C_RESPONDER, 0);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_start(p.b), P11C_OK);
    /* A flip in the last byte: Sig_A, Sig_B, Confirm_A, Confirm_B. */
    static const p11c_err why[] = {P11C_ERR_SIGNATURE, P11C_ERR_SIGNATURE, P11C_ERR_CONFIRM,
                                   P11C_ERR_CONFIRM};
    for (int step = 0; step < 4; step++) {
        P11C_SESSION *from = step % 2 ? p.b : p.a, *to = step % 2 ? p.a : p.b;
        m = pt_pop(from, &l);
        CU_ASSERT_FATAL(m != NULL);
        m[l - 1] ^= 0x80;
        dropped(to, m, l, why[step], NULL);
        /* Truncated by the room. */
        dropped(to, m, l - 1, P11C_ERR_DECODE, NULL);
        m[l - 1] ^= 0x80;
        CU_ASSERT_EQUAL(p11c_session_recv(to, m, l), P11C_OK);
        OPENSSL_free(m);
    }
    pt_drain(p.a, &p.ea);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(p11c_session_established(p.a) && p11c_session_established(p.b));
    CU_ASSERT(p.ea.n == 1 && p.ea.ev[0].type == P11C_EV_ESTABLISHED);
    CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].type == P11C_EV_ESTABLISHED);
    /* Records flow as usual. */
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, (const uint8_t *)"hi", 2), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    pt_events_clear(&p.eb);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].type == P11C_EV_DATA && p.eb.ev[0].len == 2);
    pt_pair_free(&p);
}

/* A REPLY signed by Bob whose EncSec does not decrypt destroys S over a
 * stream; over text Alice keeps S and completes with the real REPLY. */
static void test_bad_secret_keeps_s(void)
{
    PT_PAIR p;
    P11C_SESSION *forger;
    uint8_t junk[256];
    P11C_TEST_HOOKS h;
    size_t l, lr;

    memset(junk, 0x5a, sizeof(junk));
    memset(&h, 0, sizeof(h));
    h.enc_sec = junk;
    h.enc_sec_len = sizeof(junk);
    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    text_session(&p, P11C_INITIATOR, 0);
    /* A second Bob, same key and store, whose EncSec is junk. */
    forger = p.b;
    p.b = NULL;
    text_session(&p, P11C_RESPONDER, 0);
    p11c_session_set_test_hooks(forger, &h);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    uint8_t *hello = pt_pop(p.a, &l);
    CU_ASSERT_EQUAL(p11c_session_recv(forger, hello, l), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, l), P11C_OK);
    uint8_t *bad = pt_pop(forger, &lr);
    CU_ASSERT_FATAL(bad != NULL);
    dropped(p.a, bad, lr, P11C_ERR_SECRET, NULL);
    OPENSSL_free(bad);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT(p11c_session_established(p.a) && p11c_session_established(p.b));
    OPENSSL_free(hello);
    p11c_session_free(forger);
    pt_pair_free(&p);
}

/* Over a stream, the first forgery still ends the session (section 4). */
static void test_stream_still_fatal(void)
{
    PT_PAIR p;
    size_t l;

    pt_pair_init(&p, NULL, P11C_POLICY_WINDOW, NULL, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_OK);
    uint8_t *m = pt_pop(p.a, &l);
    m[l - 1] ^= 1;
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, m, l), P11C_ERR_SIGNATURE);
    m[l - 1] ^= 1;
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, m, l), P11C_ERR_FAILED);
    OPENSSL_free(m);
    pt_pair_free(&p);
}

static p11c_err count_line(const char *text, size_t len, void *arg)
{
    size_t *longest = arg;
    (void)text;
    if (len > *longest)
        *longest = len;
    return P11C_OK;
}

/* What a line limit lets through: exactly the capacity, never one byte more. */
static void test_text_capacity(void)
{
    static const size_t limits[] = {30, 64, 100, 256, 400, 467, 1000, 2000, 8000};
    uint8_t *msg = OPENSSL_zalloc(P11C_MAX_FRAME + 1);

    CU_ASSERT_EQUAL(p11c_text_capacity(0), P11C_MAX_FRAME);
    CU_ASSERT_EQUAL(p11c_text_capacity(8), 0);
    CU_ASSERT_EQUAL(p11c_text_capacity(1u << 20), P11C_MAX_FRAME);
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        size_t cap = p11c_text_capacity(limits[i]), longest = 0;
        CU_ASSERT(cap > 0);
        CU_ASSERT_EQUAL(p11c_text_encode(msg, cap, limits[i], count_line, &longest), P11C_OK);
        CU_ASSERT(longest <= limits[i]);
        CU_ASSERT_EQUAL(p11c_text_encode(msg, cap + 1, limits[i], count_line, &longest),
                        P11C_ERR_LIMIT);
    }
    OPENSSL_free(msg);
}

/* Lines that end before their end mark are told apart from malformed ones. */
static void test_text_cut(void)
{
    static const struct {
        const char *line;
        p11c_text_kind kind;
    } cases[] = {
        {"<a> ?P11C:AQIDBAUG", P11C_TEXT_CUT},       {"?P11C,0000abcd,1,2,AQID", P11C_TEXT_CUT},
        {"?P11C,0000abcd,1,2,", P11C_TEXT_CUT},      {"?P11C,0000abcd,1,", P11C_TEXT_CUT},
        {"?P11C,0000abcd,1", P11C_TEXT_CUT},         {"?P11C,0000", P11C_TEXT_CUT},
        {"?P11C,0000abcd,1,2,AQ ID", P11C_TEXT_BAD}, {"?P11C:AQ ID", P11C_TEXT_BAD},
        {"?P11C,0000abcd,x", P11C_TEXT_BAD},         {"?P11C,0000abcd,1,2,AQID,", P11C_TEXT_NONE},
    };
    P11C_TEXT *tx = p11c_text_new();
    uint8_t *m;
    size_t l;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p11c_text_kind k = p11c_text_read(tx, cases[i].line, strlen(cases[i].line), &m, &l);
        if (k != cases[i].kind)
            fprintf(stderr, "'%s': %d\n", cases[i].line, (int)k);
        CU_ASSERT_EQUAL(k, cases[i].kind);
        OPENSSL_free(m);
    }
    p11c_text_free(tx);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_room", NULL, NULL);
    CU_add_test(s, "responder drops others' lines and keeps waiting", test_responder_keeps_waiting);
    CU_add_test(s, "each step survives forged copies", test_each_step_survives_forgeries);
    CU_add_test(s, "a REPLY that does not decrypt leaves S", test_bad_secret_keeps_s);
    CU_add_test(s, "over a stream a rejection still ends the session", test_stream_still_fatal);
    CU_add_test(s, "text capacity of a line limit", test_text_capacity);
    CU_add_test(s, "lines cut short", test_text_cut);
    return tu_main();
}
