/*
 * Suite 0x02 (spec section 10) in memory: handshakes between every kind of
 * key, the strict EC key and ECDSA signature decoders, and the attacks on
 * the suite: labels of the other suite, keys of the wrong kind or off the
 * curve, and a REPLY recorded from an earlier session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11c_internal.h"
#include "ptest.h"
#include "session.h"

/* ---- helpers ------------------------------------------------------------------- */

/* The i-th vec() field of a handshake message that has `skip` bytes before its fields. */
static void field(const uint8_t *msg, size_t len, size_t skip, int i, const uint8_t **p, size_t *n)
{
    P11C_RCUR c;

    p11c_rcur_init(&c, msg + skip, len - skip);
    for (int k = 0; k <= i; k++)
        CU_ASSERT_FATAL(p11c_rcur_vec(&c, P11C_MAX_FIELD, p, n) == P11C_OK);
}

static uint8_t *pub_of(EVP_PKEY *k, size_t *len)
{
    uint8_t *der = NULL;

    CU_ASSERT_FATAL(p11c_pub_der(k, &der, len) == P11C_OK);
    return der;
}

/* A HELLO of `suite` with pub(A) of ka, pub_s, id "Alice", signed by ka over
 * the label of `label_suite`. */
static uint8_t *make_hello(EVP_PKEY *ka, uint8_t suite, uint8_t label_suite, const uint8_t *pub_s,
                           size_t pub_s_len, size_t *len)
{
    P11C_WBUF tbs, msg;
    size_t pal, siglen = 0;
    uint8_t *pa = pub_of(ka, &pal), *sig = NULL;

    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    CU_ASSERT_FATAL(p11c_tbs_a(&tbs, label_suite, pa, pal, pub_s, pub_s_len,
                               (const uint8_t *)"Alice", 5) == P11C_OK);
    CU_ASSERT_FATAL(p11c_sig_sign(NULL, NULL, ka, tbs.buf, tbs.len, &sig, &siglen) == P11C_OK);
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_HELLO);
    p11c_wbuf_u8(&msg, suite);
    p11c_wbuf_vec(&msg, pa, pal);
    p11c_wbuf_vec(&msg, pub_s, pub_s_len);
    p11c_wbuf_vec(&msg, (const uint8_t *)"Alice", 5);
    p11c_wbuf_vec(&msg, sig, siglen);
    CU_ASSERT_FATAL(!msg.bad);
    *len = msg.len;
    OPENSSL_free(sig);
    OPENSSL_free(pa);
    p11c_wbuf_cleanup(&tbs);
    return msg.buf;
}

/* A REPLY to `hello` by kb carrying `field2` (EncSec or pub(E)), signed over
 * the label of `label_suite`. */
static uint8_t *make_reply(EVP_PKEY *kb, uint8_t label_suite, const uint8_t *hello, size_t hl,
                           const uint8_t *field2, size_t f2len, size_t *len)
{
    P11C_WBUF tbs, msg;
    size_t pbl, pal, psl, siglen = 0;
    const uint8_t *pa, *ps;
    uint8_t *pb = pub_of(kb, &pbl), *sig = NULL;

    field(hello, hl, 3, 0, &pa, &pal);
    field(hello, hl, 3, 1, &ps, &psl);
    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    CU_ASSERT_FATAL(p11c_tbs_b(&tbs, label_suite, pb, pbl, field2, f2len, pa, pal, ps, psl,
                               (const uint8_t *)"Alice", 5, (const uint8_t *)"Bob", 3) == P11C_OK);
    CU_ASSERT_FATAL(p11c_sig_sign(NULL, NULL, kb, tbs.buf, tbs.len, &sig, &siglen) == P11C_OK);
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_REPLY);
    p11c_wbuf_vec(&msg, pb, pbl);
    p11c_wbuf_vec(&msg, field2, f2len);
    p11c_wbuf_vec(&msg, (const uint8_t *)"Bob", 3);
    p11c_wbuf_vec(&msg, sig, siglen);
    CU_ASSERT_FATAL(!msg.bad);
    *len = msg.len;
    OPENSSL_free(sig);
    OPENSSL_free(pb);
    p11c_wbuf_cleanup(&tbs);
    return msg.buf;
}

/* A fresh software key: "P-256", "P-384" or "RSA" (2048 bits). */
static EVP_PKEY *fresh_key(const char *kind)
{
    EVP_PKEY *k = strcmp(kind, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);

    CU_ASSERT_FATAL(k != NULL);
    return k;
}

/* A P-256 pub(K) whose point is moved off the curve (last byte of Y changed). */
static uint8_t *off_curve_p256(size_t *len)
{
    EVP_PKEY *k = pt_key(NULL, "reply_p256");
    uint8_t *der = pub_of(k, len);

    der[*len - 1] ^= 0x01;
    EVP_PKEY_free(k);
    return der;
}

/* The error a fresh Bob (answering either suite) gives to `hello`. */
static p11c_err bob_answers(EVP_PKEY *kb, EVP_PKEY *ka, const uint8_t *hello, size_t hl)
{
    PT_PAIR p;
    p11c_err e;
    size_t ol = 0;
    uint8_t *out;

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, ka, kb);
    e = p11c_session_recv(p.b, hello, hl);
    out = pt_pop(p.b, &ol);
    if (e != P11C_OK)
        CU_ASSERT_PTR_NULL(out); /* nothing is sent back */
    CU_ASSERT_EQUAL(p11c_session_suite(p.b), e == P11C_OK ? hello[2] : 0);
    OPENSSL_free(out);
    pt_pair_free(&p);
    return e;
}

/* ---- complete handshakes ---------------------------------------------------------- */

/* Alice and Bob with the keys named (pt_key), Alice in `suite`: established,
 * a message each way, CLOSE answered, and the suite each side reports. */
static void handshake(const char *a, const char *b, int suite, int fresh_s)
{
    PT_PAIR p;
    static const uint8_t hi[] = "hello over suite 2";
    int want = suite != 0 ? suite : strstr(a, "_p") != NULL ? P11C_SUITE_2 : P11C_SUITE_1;

    pt_pair_init_suite(&p, NULL, P11C_POLICY_STRICT, pt_key(NULL, a), pt_key(NULL, b), suite);
    if (fresh_s) {
        P11C_CONFIG c = {0};
        p11c_session_free(p.a);
        c.role = P11C_INITIATOR;
        c.key = p.ka;
        c.identity = "Alice";
        c.trust = p.ta;
        c.suite = suite;
        p.a = p11c_session_new(&c, NULL);
        CU_ASSERT_FATAL(p.a != NULL);
    }
    CU_ASSERT_EQUAL(p11c_session_suite(p.a), want);
    CU_ASSERT_EQUAL(p11c_session_suite(p.b), 0);
    CU_ASSERT_FATAL(pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_suite(p.b), want);
    CU_ASSERT(p.ea.n == 1 && p.ea.ev[0].type == P11C_EV_ESTABLISHED &&
              p.ea.ev[0].trust == P11C_TRUSTED);
    CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].type == P11C_EV_ESTABLISHED &&
              p.eb.ev[0].trust == P11C_TRUSTED);
    pt_events_clear(&p.ea);
    pt_events_clear(&p.eb);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, hi, sizeof(hi)), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.b, hi, 5), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_close(p.b, "bye"), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    pt_drain(p.a, &p.ea);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(p.eb.n == 2 && p.eb.ev[0].type == P11C_EV_DATA && p.eb.ev[0].len == sizeof(hi) &&
              memcmp(p.eb.ev[0].data, hi, sizeof(hi)) == 0 && p.eb.ev[1].type == P11C_EV_CLOSE);
    CU_ASSERT(p.ea.n == 2 && p.ea.ev[0].type == P11C_EV_DATA && p.ea.ev[0].len == 5 &&
              p.ea.ev[1].type == P11C_EV_CLOSE && p.ea.ev[1].len == 3);
    CU_ASSERT(p11c_session_closed(p.a) && p11c_session_closed(p.b));
    CU_ASSERT_EQUAL(p11c_session_error(p.a), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_error(p.b), P11C_OK);
    pt_pair_free(&p);
}

static void test_handshakes(void)
{
    handshake("alice_p256", "bob_p384", 0, 0);
    handshake("alice_p256", "bob_p384", 0, 1); /* S made in software */
    handshake("bob_p384", "alice_p256", 0, 0);
    handshake("alice_rsa", "bob_p384", P11C_SUITE_2, 0);
    handshake("alice_p256", "bob_rsa", 0, 0);
    handshake("alice", "bob", P11C_SUITE_2, 1); /* RSA keys, no RSA session key */
    handshake("alice", "bob", 0, 0);            /* RSA keys keep suite 0x01 */
}

/* Configurations the suites refuse. */
static void test_config(void)
{
    P11C_CONFIG c = {0};
    p11c_err err = P11C_OK;
    EVP_PKEY *ke = pt_key(NULL, "alice_p256"), *k521 = fresh_key("P-521");

    c.role = P11C_INITIATOR;
    c.key = ke;
    c.identity = "Alice";
    c.suite = P11C_SUITE_1; /* an EC key cannot speak suite 0x01 */
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_KEY);
    c.role = P11C_RESPONDER;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_KEY);
    c.suite = 3;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.role = P11C_INITIATOR;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    c.suite = 0;
    c.key = k521; /* no suite takes P-521 */
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_KEY);
    c.role = P11C_RESPONDER;
    CU_ASSERT_PTR_NULL(p11c_session_new(&c, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_KEY);
    EVP_PKEY_free(ke);
    EVP_PKEY_free(k521);
}

/* A suite-0x01-only responder refuses a suite 0x02 HELLO, and an EC Bob a suite 0x01 one. */
static void test_suite_refused(void)
{
    PT_PAIR p;
    P11C_CONFIG c = {0};

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, pt_key(NULL, "alice_p256"), NULL);
    p11c_session_free(p.b);
    c.role = P11C_RESPONDER;
    c.key = p.kb;
    c.identity = "Bob";
    c.trust = p.tb;
    c.suite = P11C_SUITE_1;
    p.b = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(p.b != NULL);
    CU_ASSERT(!pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_error(p.b), P11C_ERR_SUITE);
    CU_ASSERT_EQUAL(p11c_session_suite(p.b), 0); /* a refused HELLO names no suite */
    CU_ASSERT(!p11c_session_established(p.a));
    pt_pair_free(&p);

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, pt_key(NULL, "bob_p384"));
    CU_ASSERT(!pt_pair_handshake(&p));
    CU_ASSERT_EQUAL(p11c_session_error(p.b), P11C_ERR_SUITE);
    pt_pair_free(&p);
}

/* The pool makes P-256 session keys for suite 0x02, each handed out once. */
static void test_keypool_suite2(void)
{
    p11c_err err = P11C_OK;
    P11C_KEYPOOL *pool;
    EVP_PKEY *k1, *k2;
    PT_PAIR p;

    CU_ASSERT_PTR_NULL(p11c_keypool_new_suite(NULL, NULL, 7, 2, &err));
    CU_ASSERT_EQUAL(err, P11C_ERR_ARG);
    pool = p11c_keypool_new_suite(NULL, NULL, P11C_SUITE_2, 2, &err);
    CU_ASSERT_FATAL(pool != NULL && err == P11C_OK);
    k1 = p11c_keypool_take(pool);
    k2 = p11c_keypool_take(pool);
    CU_ASSERT_FATAL(k1 != NULL && k2 != NULL);
    CU_ASSERT_EQUAL(p11c_key_kind(k1), P11C_KIND_P256);
    CU_ASSERT_EQUAL(p11c_key_kind(k2), P11C_KIND_P256);
    CU_ASSERT(EVP_PKEY_eq(k1, k2) != 1);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, pt_key(NULL, "alice_p256"), NULL);
    pt_pair_new_alice(&p, p11c_keypool_take, pool, 1);
    CU_ASSERT(pt_pair_handshake(&p));
    pt_pair_free(&p);
    p11c_keypool_free(pool);
}

/* ---- the strict decoders ------------------------------------------------------------ */

static void test_ec_pub_decoder(void)
{
    EVP_PKEY *k = pt_key(NULL, "alice_p256"), *k384 = pt_key(NULL, "bob_p384"), *out = NULL;
    EVP_PKEY *explicit = fresh_key("P-256");
    size_t len, l384, el;
    uint8_t *der = pub_of(k, &len), *d384 = pub_of(k384, &l384), *bad, *edr = NULL;

    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, der, len, P11C_KIND_P256, &out), P11C_OK);
    CU_ASSERT(EVP_PKEY_eq(out, k) == 1);
    EVP_PKEY_free(out);
    out = NULL;
    /* Kinds the field does not allow. */
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, der, len, P11C_KIND_RSA, &out), P11C_ERR_KEY);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, der, len, P11C_KIND_P384, &out), P11C_ERR_KEY);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, d384, l384, P11C_KIND_P256, &out), P11C_ERR_KEY);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, d384, l384, P11C_KIND_EC, &out), P11C_OK);
    EVP_PKEY_free(out);
    out = NULL;
    /* A trailing byte, a long-form length, a hybrid point, an off-curve point. */
    bad = OPENSSL_malloc(len + 1);
    memcpy(bad, der, len);
    bad[len] = 0;
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, bad, len + 1, P11C_KIND_EC, &out), P11C_ERR_KEY);
    bad[0] = 0x30;
    bad[1] = 0x81;
    memcpy(bad + 2, der + 1, len - 1);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, bad, len + 1, P11C_KIND_EC, &out), P11C_ERR_KEY);
    memcpy(bad, der, len);
    bad[26] = 0x06;
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, bad, len, P11C_KIND_EC, &out), P11C_ERR_KEY);
    bad[26] = 0x04;
    bad[len - 1] ^= 1;
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, bad, len, P11C_KIND_EC, &out), P11C_ERR_KEY);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0); /* a bad point is an answer, not an error */
    OPENSSL_free(bad);
    /* Explicit curve parameters. */
    CU_ASSERT_FATAL(EVP_PKEY_set_utf8_string_param(explicit, OSSL_PKEY_PARAM_EC_ENCODING,
                                                   OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
    el = (size_t)i2d_PUBKEY(explicit, &edr);
    CU_ASSERT_FATAL(edr != NULL && el > len);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, edr, el, P11C_KIND_ANY, &out), P11C_ERR_KEY);
    /* The kind is read from the first element: an INTEGER is RSA, anything else nothing. */
    memcpy(edr, der, len);
    edr[2] = 0x04;
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, edr, len, P11C_KIND_ANY, &out), P11C_ERR_KEY);
    CU_ASSERT_EQUAL(p11c_pub_decode(NULL, NULL, der, 1, P11C_KIND_ANY, &out), P11C_ERR_KEY);
    OPENSSL_free(edr);
    OPENSSL_free(der);
    OPENSSL_free(d384);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k384);
    EVP_PKEY_free(explicit);
}

/* Replaces the INTEGER starting at sig[at] (short form) by `v` (vlen bytes, as is). */
static size_t sig_with(const uint8_t *sig, size_t siglen, int which, const uint8_t *v, size_t vlen,
                       uint8_t *out)
{
    size_t rlen = sig[3], spos = 4 + rlen, slen = sig[spos + 1], o = 2;
    const uint8_t *r = sig + 4, *s = sig + spos + 2;

    (void)siglen;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(which == 0 ? vlen : rlen);
    memcpy(out + o, which == 0 ? v : r, which == 0 ? vlen : rlen);
    o += which == 0 ? vlen : rlen;
    out[o++] = 0x02;
    out[o++] = (uint8_t)(which == 1 ? vlen : slen);
    memcpy(out + o, which == 1 ? v : s, which == 1 ? vlen : slen);
    o += which == 1 ? vlen : slen;
    out[0] = 0x30;
    out[1] = (uint8_t)(o - 2);
    return o;
}

static void test_ecdsa_strict(void)
{
    static const uint8_t msg[] = "TBS";
    EVP_PKEY *k = pt_key(NULL, "alice_p256"), *k384 = pt_key(NULL, "bob_p384");
    const P11C_EC_CURVE *cv = p11c_ec_curve(P11C_KIND_P256);
    uint8_t *sig = NULL, buf[160], v[40], zero = 0;
    size_t siglen = 0, n, rlen;

    CU_ASSERT_FATAL(p11c_sig_sign(NULL, NULL, k, msg, 3, &sig, &siglen) == P11C_OK);
    CU_ASSERT_FATAL(sig[0] == 0x30 && sig[1] == siglen - 2 && sig[2] == 0x02);
    CU_ASSERT_EQUAL(p11c_sig_verify(NULL, NULL, k, msg, 3, sig, siglen), P11C_OK);
    /* Another key's kind, another curve. */
    CU_ASSERT_EQUAL(p11c_sig_verify(NULL, NULL, k384, msg, 3, sig, siglen), P11C_ERR_SIGNATURE);
    rlen = sig[3];
    /* r padded with a zero byte it does not need. */
    v[0] = 0;
    memcpy(v + 1, sig + 4, rlen);
    if (!(sig[4] & 0x80) && sig[4] != 0) {
        n = sig_with(sig, siglen, 0, v, rlen + 1, buf);
        CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    }
    /* The same signature re-encoded exactly: still valid (the editing is right). */
    n = sig_with(sig, siglen, 0, sig + 4, rlen, buf);
    CU_ASSERT(n == siglen && memcmp(buf, sig, n) == 0);
    /* A long-form length for the SEQUENCE. */
    buf[0] = 0x30;
    buf[1] = 0x81;
    buf[2] = (uint8_t)(siglen - 2);
    memcpy(buf + 3, sig + 2, siglen - 2);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, siglen + 1), P11C_ERR_SIGNATURE);
    /* A trailing byte. */
    memcpy(buf, sig, siglen);
    buf[siglen] = 0;
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, siglen + 1), P11C_ERR_SIGNATURE);
    /* r = 0, s = 0, r = n, s = n (n: the order, with its sign byte). */
    n = sig_with(sig, siglen, 0, &zero, 1, buf);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    n = sig_with(sig, siglen, 1, &zero, 1, buf);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    v[0] = 0;
    memcpy(v + 1, cv->order, cv->coord);
    n = sig_with(sig, siglen, 0, v, cv->coord + 1, buf);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    n = sig_with(sig, siglen, 1, v, cv->coord + 1, buf);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    /* A negative r. */
    v[0] = 0x80;
    n = sig_with(sig, siglen, 0, v, 1, buf);
    CU_ASSERT_EQUAL(p11c_ecdsa_verify(NULL, NULL, k, msg, 3, buf, n), P11C_ERR_SIGNATURE);
    /* A PSS signature where ECDSA is expected, and the reverse. */
    {
        EVP_PKEY *ka = pt_key(NULL, "alice");
        uint8_t *ps = NULL;
        size_t pl = 0;
        CU_ASSERT_FATAL(p11c_sig_sign(NULL, NULL, ka, msg, 3, &ps, &pl) == P11C_OK);
        CU_ASSERT_EQUAL(p11c_sig_verify(NULL, NULL, k, msg, 3, ps, pl), P11C_ERR_SIGNATURE);
        CU_ASSERT_EQUAL(p11c_sig_verify(NULL, NULL, ka, msg, 3, sig, siglen), P11C_ERR_SIGNATURE);
        OPENSSL_free(ps);
        EVP_PKEY_free(ka);
    }
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    OPENSSL_free(sig);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k384);
}

/* ---- attacks --------------------------------------------------------------------------- */

/* A signature over the suite 0x01 label, in a HELLO and in a REPLY of suite 0x02. */
static void test_attack_suite1_label(void)
{
    EVP_PKEY *ka = pt_key(NULL, "alice_p256"), *kb = pt_key(NULL, "bob_p384");
    EVP_PKEY *ks = pt_key(NULL, "session_p256"), *ke = pt_key(NULL, "reply_p256");
    size_t psl, pel, hl, rl;
    uint8_t *ps = pub_of(ks, &psl), *pe = pub_of(ke, &pel), *hello, *reply, *own;
    PT_PAIR p;

    hello = make_hello(ka, P11C_SUITE_2, P11C_SUITE_1, ps, psl, &hl);
    CU_ASSERT_EQUAL(bob_answers(pt_key(NULL, "bob_p384"), pt_key(NULL, "alice_p256"), hello, hl),
                    P11C_ERR_SIGNATURE);
    OPENSSL_free(hello);
    /* The REPLY: Alice's own HELLO, answered by Bob's key over the wrong label. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, ka, kb);
    CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
    own = pt_pop(p.a, &hl);
    reply = make_reply(kb, P11C_SUITE_1, own, hl, pe, pel, &rl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_ERR_SIGNATURE);
    OPENSSL_free(reply);
    OPENSSL_free(own);
    pt_pair_free(&p);
    OPENSSL_free(ps);
    OPENSSL_free(pe);
    EVP_PKEY_free(ks);
    EVP_PKEY_free(ke);
}

/* An EC long-term key in a suite 0x01 HELLO, and in a suite 0x01 REPLY. */
static void test_attack_ec_in_suite1(void)
{
    EVP_PKEY *ke = pt_key(NULL, "alice_p256"), *kb = pt_key(NULL, "bob_p384");
    EVP_PKEY *ks = pt_key(NULL, "session");
    size_t psl, hl, rl, ctl = 0;
    uint8_t *ps = pub_of(ks, &psl), *hello, *reply, *own, *ct = NULL, sec[64];
    PT_PAIR p;

    hello = make_hello(ke, P11C_SUITE_1, P11C_SUITE_1, ps, psl, &hl);
    CU_ASSERT_EQUAL(bob_answers(NULL, pt_key(NULL, "alice_p256"), hello, hl), P11C_ERR_KEY);
    OPENSSL_free(hello);
    /* RSA Alice in suite 0x01; a REPLY from an EC key with a well-made EncSec. */
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, NULL, kb);
    CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
    own = pt_pop(p.a, &hl);
    memset(sec, 0x5a, sizeof(sec));
    CU_ASSERT_FATAL(p11c_oaep_encrypt(NULL, NULL, ks, sec, 64, &ct, &ctl) == P11C_OK);
    reply = make_reply(kb, P11C_SUITE_1, own, hl, ct, ctl, &rl);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_ERR_KEY);
    OPENSSL_free(reply);
    OPENSSL_free(own);
    OPENSSL_free(ct);
    pt_pair_free(&p);
    OPENSSL_free(ps);
    EVP_PKEY_free(ks);
    EVP_PKEY_free(ke);
}

/* A signed HELLO whose S is on P-384, or off the curve; and an Alice whose
 * session-key source gives a P-384 or RSA key sends nothing. */
static void test_attack_bad_session_key(void)
{
    EVP_PKEY *ka = pt_key(NULL, "alice_p256"), *k384 = fresh_key("P-384");
    size_t l384, loff, hl, ol = 0;
    uint8_t *p384 = pub_of(k384, &l384), *poff = off_curve_p256(&loff), *hello;
    PT_PAIR p;

    hello = make_hello(ka, P11C_SUITE_2, P11C_SUITE_2, p384, l384, &hl);
    CU_ASSERT_EQUAL(bob_answers(pt_key(NULL, "bob_p384"), pt_key(NULL, "alice_p256"), hello, hl),
                    P11C_ERR_KEY);
    OPENSSL_free(hello);
    hello = make_hello(ka, P11C_SUITE_2, P11C_SUITE_2, poff, loff, &hl);
    CU_ASSERT_EQUAL(bob_answers(pt_key(NULL, "bob_p384"), pt_key(NULL, "alice_p256"), hello, hl),
                    P11C_ERR_KEY);
    OPENSSL_free(hello);
    /* The control: the same HELLO with a good S is answered. */
    {
        EVP_PKEY *ks = pt_key(NULL, "session_p256");
        size_t sl;
        uint8_t *ps = pub_of(ks, &sl);
        hello = make_hello(ka, P11C_SUITE_2, P11C_SUITE_2, ps, sl, &hl);
        CU_ASSERT_EQUAL(
            bob_answers(pt_key(NULL, "bob_p384"), pt_key(NULL, "alice_p256"), hello, hl), P11C_OK);
        OPENSSL_free(hello);
        OPENSSL_free(ps);
        EVP_PKEY_free(ks);
    }
    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, ka, NULL);
    pt_pair_new_alice(&p, pt_session_key_fn, NULL, 1); /* RSA S for suite 0x02 */
    CU_ASSERT_EQUAL(p11c_session_start(p.a), P11C_ERR_KEY);
    CU_ASSERT_PTR_NULL(pt_pop(p.a, &ol));
    pt_pair_free(&p);
    OPENSSL_free(p384);
    OPENSSL_free(poff);
    EVP_PKEY_free(k384);
}

/* A REPLY signed by Bob whose E is off the curve, on P-384, or an RSA key. */
static void test_attack_bad_e(void)
{
    EVP_PKEY *kb = pt_key(NULL, "bob_p384"), *k384 = fresh_key("P-384");
    EVP_PKEY *ke = pt_key(NULL, "reply_p256");
    size_t lens[4], hl, rl;
    uint8_t *es[4], *own, *reply;
    p11c_err want[4] = {P11C_ERR_KEY, P11C_ERR_KEY, P11C_ERR_KEY, P11C_OK};

    es[0] = off_curve_p256(&lens[0]);
    es[1] = pub_of(k384, &lens[1]);
    es[2] = pub_of(kb, &lens[2]); /* Bob's own P-384 key as E */
    es[3] = pub_of(ke, &lens[3]); /* the control */
    for (int i = 0; i < 4; i++) {
        PT_PAIR p;
        pt_pair_init(&p, NULL, P11C_POLICY_STRICT, pt_key(NULL, "alice_p256"),
                     pt_key(NULL, "bob_p384"));
        CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
        own = pt_pop(p.a, &hl);
        reply = make_reply(kb, P11C_SUITE_2, own, hl, es[i], lens[i], &rl);
        CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), want[i]);
        if (want[i] == P11C_OK) {
            size_t cl = 0;
            uint8_t *confirm = pt_pop(p.a, &cl);
            CU_ASSERT(confirm != NULL && confirm[1] == P11C_MSG_CONFIRM);
            OPENSSL_free(confirm);
        }
        OPENSSL_free(reply);
        OPENSSL_free(own);
        OPENSSL_free(es[i]);
        pt_pair_free(&p);
    }
    EVP_PKEY_free(kb);
    EVP_PKEY_free(k384);
    EVP_PKEY_free(ke);
}

/*
 * A recorded session replayed: its REPLY (E and Sig_B) to a new Alice, whose
 * fresh S it does not name; its HELLO to a new Bob, who answers with a fresh
 * E, so that the recorded CONFIRM no longer verifies.
 */
static void test_attack_recorded_session(void)
{
    PT_PAIR rec, p;
    uint8_t *hello, *reply, *confirm, *own;
    size_t hl, rl, cl, ol;

    pt_pair_init(&rec, NULL, P11C_POLICY_STRICT, pt_key(NULL, "alice_p256"),
                 pt_key(NULL, "bob_p384"));
    pt_pair_new_alice(&rec, NULL, NULL, 1); /* fresh S */
    CU_ASSERT_FATAL(p11c_session_start(rec.a) == P11C_OK);
    hello = pt_pop(rec.a, &hl);
    CU_ASSERT_FATAL(p11c_session_recv(rec.b, hello, hl) == P11C_OK);
    reply = pt_pop(rec.b, &rl);
    CU_ASSERT_FATAL(p11c_session_recv(rec.a, reply, rl) == P11C_OK);
    confirm = pt_pop(rec.a, &cl);
    CU_ASSERT_FATAL(p11c_session_recv(rec.b, confirm, cl) == P11C_OK);
    CU_ASSERT(p11c_session_established(rec.b));

    pt_pair_init(&p, NULL, P11C_POLICY_STRICT, pt_key(NULL, "alice_p256"),
                 pt_key(NULL, "bob_p384"));
    pt_pair_new_alice(&p, NULL, NULL, 1);
    CU_ASSERT_FATAL(p11c_session_start(p.a) == P11C_OK);
    own = pt_pop(p.a, &ol);
    CU_ASSERT_EQUAL(p11c_session_recv(p.a, reply, rl), P11C_ERR_SIGNATURE);
    OPENSSL_free(own);
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, hello, hl), P11C_OK);
    own = pt_pop(p.b, &ol);
    CU_ASSERT(own != NULL && (ol != rl || memcmp(own, reply, rl) != 0)); /* a fresh E */
    CU_ASSERT_EQUAL(p11c_session_recv(p.b, confirm, cl), P11C_ERR_SIGNATURE);
    CU_ASSERT(!p11c_session_established(p.b));
    OPENSSL_free(own);
    pt_pair_free(&p);
    OPENSSL_free(hello);
    OPENSSL_free(reply);
    OPENSSL_free(confirm);
    pt_pair_free(&rec);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_suite2", NULL, NULL);
    CU_add_test(s, "handshakes between every kind of key", test_handshakes);
    CU_add_test(s, "configurations the suites refuse", test_config);
    CU_add_test(s, "a suite the responder does not answer", test_suite_refused);
    CU_add_test(s, "key pool of P-256 session keys", test_keypool_suite2);
    CU_add_test(s, "strict EC public key decoder", test_ec_pub_decoder);
    CU_add_test(s, "strict ECDSA signature check", test_ecdsa_strict);
    CU_add_test(s, "attack: signature over the suite 0x01 label", test_attack_suite1_label);
    CU_add_test(s, "attack: EC key in suite 0x01", test_attack_ec_in_suite1);
    CU_add_test(s, "attack: P-384 or off-curve S", test_attack_bad_session_key);
    CU_add_test(s, "attack: REPLY with a bad E", test_attack_bad_e);
    CU_add_test(s, "attack: recorded session replayed", test_attack_recorded_session);
    return tu_main();
}
