/* Helpers shared by the protocol test programs. */
#ifndef P11C_PTEST_H
#define P11C_PTEST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11chat.h"
#include "testutil.h"

/* A key from keys.json ("alice", "bob", "session", "carol3072") or from the keys of
 * handshake_suite2.json ("alice_p256", "bob_p384", "session_p256", ...), software, in libctx. */
EVP_PKEY *pt_key(OSSL_LIB_CTX *libctx, const char *name);

/* Collected events of one session. */
#define PT_MAX_EVENTS 256
typedef struct pt_events {
    P11C_EVENT ev[PT_MAX_EVENTS];
    size_t n;
} PT_EVENTS;

void pt_drain(P11C_SESSION *s, PT_EVENTS *e); /* appends */
void pt_events_clear(PT_EVENTS *e);
/* Index of the first event of `type`, or -1. */
int pt_find(const PT_EVENTS *e, p11c_event_type type);

/* One queued output message (caller frees with OPENSSL_free), or NULL. */
uint8_t *pt_pop(P11C_SESSION *s, size_t *len);
/*
 * One handshake step: starts s (in == NULL) or feeds it `in`, which must be
 * accepted, then checks that the one message it queued is exactly `want`.
 */
void pt_step(P11C_SESSION *s, const uint8_t *in, size_t inlen, const uint8_t *want, size_t wantlen);
/* Moves every queued message of `from` into `to`; returns the last recv result. */
p11c_err pt_deliver(P11C_SESSION *from, P11C_SESSION *to);

/* A pair of sessions. */
typedef struct pt_pair {
    OSSL_LIB_CTX *libctx; /* borrowed */
    EVP_PKEY *ka, *kb;
    P11C_TRUST *ta, *tb;
    P11C_SESSION *a, *b;
    PT_EVENTS ea, eb;
} PT_PAIR;

/*
 * alice and bob keys (or the given ones), each trusting the other, with the
 * policy; sessions made, not started. ka/kb may be NULL for keys.json alice/bob.
 */
void pt_pair_init(PT_PAIR *p, OSSL_LIB_CTX *libctx, p11c_policy policy, EVP_PKEY *ka, EVP_PKEY *kb);
/* The same with Alice in `suite` (0: by her key) and S of that suite; Bob answers either. */
void pt_pair_init_suite(PT_PAIR *p, OSSL_LIB_CTX *libctx, p11c_policy policy, EVP_PKEY *ka,
                        EVP_PKEY *kb, int suite);
/* Runs the handshake to completion; returns 1 when both are established. */
int pt_pair_handshake(PT_PAIR *p);
/* Replaces p->a by an Alice with the pair's key that takes S from fn(arg)
 * (fn NULL: made in software), with her trust store or (with_trust 0) none. */
void pt_pair_new_alice(PT_PAIR *p, p11c_session_key_fn fn, void *arg, int with_trust);
void pt_pair_free(PT_PAIR *p);

/* A session key provider returning a copy of keys.json "session" (arg: OSSL_LIB_CTX). */
EVP_PKEY *pt_session_key_fn(void *arg);
/* The same with handshake_suite2.json "session_p256". */
EVP_PKEY *pt_session_p256_fn(void *arg);

#endif
