/* Shared set-up for the libFuzzer targets: fixed keys, sessions, draining. */
#ifndef P11C_FUZZ_COMMON_H
#define P11C_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

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
