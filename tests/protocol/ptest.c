#include "ptest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

EVP_PKEY *pt_key(OSSL_LIB_CTX *libctx, const char *name)
{
    static json_t *keys, *keys2;
    const char *pem;
    json_t *entry;
    BIO *bio;
    EVP_PKEY *k;

    if (keys == NULL)
        keys = tu_vector_load("protocol/keys.json");
    if (keys2 == NULL)
        keys2 = tu_vector_load("protocol/handshake_suite2.json");
    entry = json_object_get(json_object_get(keys, "keys"), name);
    /* The suite 0x02 keys are PEM strings of their own file. */
    pem = entry != NULL ? tu_json_str(entry, "private_pkcs8_pem")
                        : json_string_value(json_object_get(json_object_get(keys2, "keys"), name));
    if (pem == NULL) {
        fprintf(stderr, "no key %s in the vectors\n", name);
        exit(2);
    }
    bio = BIO_new_mem_buf(pem, -1);
    k = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, libctx, NULL);
    BIO_free(bio);
    if (k == NULL) {
        fprintf(stderr, "cannot load key %s\n", name);
        exit(2);
    }
    return k;
}

EVP_PKEY *pt_session_key_fn(void *arg)
{
    return pt_key(arg, "session");
}

EVP_PKEY *pt_session_p256_fn(void *arg)
{
    return pt_key(arg, "session_p256");
}

void pt_drain(P11C_SESSION *s, PT_EVENTS *e)
{
    P11C_EVENT ev;

    while (p11c_session_next_event(s, &ev)) {
        if (e->n < PT_MAX_EVENTS)
            e->ev[e->n++] = ev;
        else
            p11c_event_clear(&ev);
    }
}

void pt_events_clear(PT_EVENTS *e)
{
    for (size_t i = 0; i < e->n; i++)
        p11c_event_clear(&e->ev[i]);
    e->n = 0;
}

int pt_find(const PT_EVENTS *e, p11c_event_type type)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->ev[i].type == type)
            return (int)i;
    return -1;
}

uint8_t *pt_pop(P11C_SESSION *s, size_t *len)
{
    uint8_t *m = NULL;

    if (!p11c_session_pop_output(s, &m, len))
        return NULL;
    return m;
}

void pt_step(P11C_SESSION *s, const uint8_t *in, size_t inlen, const uint8_t *want, size_t wantlen)
{
    uint8_t *out;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(in == NULL ? p11c_session_start(s) : p11c_session_recv(s, in, inlen),
                          P11C_OK);
    out = pt_pop(s, &len);
    CU_ASSERT_PTR_NOT_NULL(out);
    CU_ASSERT(out != NULL && len == wantlen && memcmp(out, want, wantlen) == 0);
    OPENSSL_free(out);
}

p11c_err pt_deliver(P11C_SESSION *from, P11C_SESSION *to)
{
    p11c_err ret = P11C_OK;
    uint8_t *m;
    size_t len;

    while ((m = pt_pop(from, &len)) != NULL) {
        ret = p11c_session_recv(to, m, len);
        OPENSSL_free(m);
    }
    return ret;
}

void pt_pair_init(PT_PAIR *p, OSSL_LIB_CTX *libctx, p11c_policy policy, EVP_PKEY *ka, EVP_PKEY *kb)
{
    pt_pair_init_suite(p, libctx, policy, ka, kb, 0);
}

void pt_pair_init_suite(PT_PAIR *p, OSSL_LIB_CTX *libctx, p11c_policy policy, EVP_PKEY *ka,
                        EVP_PKEY *kb, int suite)
{
    P11C_CONFIG ca, cb;
    uint8_t fa[P11C_FP_LEN], fb[P11C_FP_LEN];
    p11c_err err;

    memset(p, 0, sizeof(*p));
    p->libctx = libctx;
    p->ka = ka != NULL ? ka : pt_key(libctx, "alice");
    p->kb = kb != NULL ? kb : pt_key(libctx, "bob");
    p->ta = p11c_trust_new();
    p->tb = p11c_trust_new();
    CU_ASSERT_FATAL(p11c_fingerprint(libctx, NULL, p->ka, fa) == P11C_OK);
    CU_ASSERT_FATAL(p11c_fingerprint(libctx, NULL, p->kb, fb) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(p->ta, "Bob", fb) == P11C_OK);
    CU_ASSERT_FATAL(p11c_trust_add(p->tb, "Alice", fa) == P11C_OK);
    memset(&ca, 0, sizeof(ca));
    ca.role = P11C_INITIATOR;
    ca.libctx = libctx;
    ca.key = p->ka;
    ca.identity = "Alice";
    ca.trust = p->ta;
    ca.policy = policy;
    ca.suite = suite;
    /* No slow key generation in most tests: S of the suite Alice will use. */
    ca.session_key_fn = suite == P11C_SUITE_2 || (suite == 0 && EVP_PKEY_is_a(p->ka, "EC"))
                            ? pt_session_p256_fn
                            : pt_session_key_fn;
    ca.session_key_arg = libctx;
    cb = ca;
    cb.role = P11C_RESPONDER;
    cb.key = p->kb;
    cb.identity = "Bob";
    cb.trust = p->tb;
    cb.suite = 0; /* a responder answers either suite */
    p->a = p11c_session_new(&ca, &err);
    CU_ASSERT_FATAL(p->a != NULL);
    p->b = p11c_session_new(&cb, &err);
    CU_ASSERT_FATAL(p->b != NULL);
}

int pt_pair_handshake(PT_PAIR *p)
{
    if (p11c_session_start(p->a) != P11C_OK || p11c_session_start(p->b) != P11C_OK)
        return 0;
    for (int round = 0; round < 4; round++) {
        if (pt_deliver(p->a, p->b) != P11C_OK)
            break;
        if (pt_deliver(p->b, p->a) != P11C_OK)
            break;
    }
    pt_drain(p->a, &p->ea);
    pt_drain(p->b, &p->eb);
    return p11c_session_established(p->a) && p11c_session_established(p->b);
}

void pt_pair_new_alice(PT_PAIR *p, p11c_session_key_fn fn, void *arg, int with_trust)
{
    P11C_CONFIG c = {0};

    p11c_session_free(p->a);
    c.role = P11C_INITIATOR;
    c.key = p->ka;
    c.identity = "Alice";
    c.trust = with_trust ? p->ta : NULL;
    c.session_key_fn = fn;
    c.session_key_arg = arg;
    p->a = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(p->a != NULL);
}

void pt_pair_free(PT_PAIR *p)
{
    p11c_session_free(p->a);
    p11c_session_free(p->b);
    p11c_trust_free(p->ta);
    p11c_trust_free(p->tb);
    EVP_PKEY_free(p->ka);
    EVP_PKEY_free(p->kb);
    pt_events_clear(&p->ea);
    pt_events_clear(&p->eb);
    memset(p, 0, sizeof(*p));
}
