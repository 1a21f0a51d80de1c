/* Shared set-up for the libFuzzer targets: fixed keys, sessions, draining. */
#ifndef P11C_FUZZ_COMMON_H
#define P11C_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11c_internal.h"
#include "p11chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The keys of tests/vectors/protocol/keys.json, loaded once. */
typedef struct {
    EVP_PKEY *alice, *bob, *session, *carol;
    P11C_TRUST *trust; /* Alice and Bob with their fingerprints */
} fz_keys;

const fz_keys *fz_init(void);

/* A session as in the vectors: Alice initiates, Bob responds; S is always
 * keys.json's session key (no key generation per input). */
P11C_SESSION *fz_session(p11c_role role, p11c_policy policy);
/* The same with test hooks (borrowed: they must outlive the handshake). */
P11C_SESSION *fz_session_hooked(p11c_role role, p11c_policy policy, const P11C_TEST_HOOKS *h);

/* tests/vectors/protocol/handshake.json, loaded once: the four messages and
 * the recorded values that let the test hooks (P11C_TEST_HOOKS) reproduce
 * them byte for byte without a private-key operation. */
typedef struct {
    uint8_t *hello, *reply, *confirm, *finish, *sec;
    size_t hello_len, reply_len, confirm_len, finish_len;
    const uint8_t *sig_a, *sig_b, *sig_c, *enc_sec; /* point into the messages */
    size_t sig_a_len, sig_b_len, sig_c_len, enc_sec_len;
} fz_vectors;

const fz_vectors *fz_vectors_get(void);

/* Hooks with the recorded signatures of one side: Alice's Sig_A and Sig_C, or
 * Bob's Sig_B, EncSec and Sec; the rest zero. */
void fz_hooks_recorded(P11C_TEST_HOOKS *h, p11c_role role);

/* A fresh copy of a session made once (p11c_session_test_dup); aborts on failure. */
P11C_SESSION *fz_copy(const P11C_SESSION *s);

/* Pops every output message; with `keep`, the last one is returned
 * (OPENSSL_free it) and *len set. */
uint8_t *fz_drain_output(P11C_SESSION *s, size_t *len);
/* Takes every event; returns how many were of `type` (0: none counted). */
int fz_drain_events(P11C_SESSION *s, p11c_event_type type);

/* Moves every output message of `from` into `to`; returns the last error. */
p11c_err fz_pump(P11C_SESSION *from, P11C_SESSION *to);

/* Aborts with a message: a broken invariant is a finding. */
void fz_fail(const char *what) __attribute__((noreturn));

#endif
