/* Helpers for the provider tests: a token, OpenSSL configurations, loading. */
#ifndef P11C_PTU_H
#define P11C_PTU_H

#include <openssl/evp.h>

#include "p11chat_provider.h"
#include "testutil.h"

#define PTU_ALICE "pkcs11:token=p11chat-test;object=alice"
#define PTU_BOB   "pkcs11:token=p11chat-test;object=bob"

/*
 * Makes the private token `name` (with alice and bob) and writes into its
 * directory: openssl-default-first.cnf and openssl-p11chat-first.cnf (both
 * providers, SoftHSM2 module, PIN file, OAEP fallback on) and
 * openssl-nopin.cnf (no PIN) and openssl-nofallback.cnf (fallback off).
 * Returns the token directory.
 */
const char *ptu_setup(const char *name, int with_keys);
const char *ptu_dir(void);
/* Uses the token made by ptu_setup in another process (sets SOFTHSM2_CONF). */
void ptu_use_dir(const char *d);
/* Path of a file in the token directory (static buffer, one of four). */
const char *ptu_path(const char *file);
/* Configuration paths: 0 = default first, 1 = p11chat first, 2 = no PIN,
 * 3 = OAEP fallback off. */
const char *ptu_conf(int which);

/* A fresh library context loading that configuration; NULL on failure. */
OSSL_LIB_CTX *ptu_libctx(int which);
/* A fresh library context where the provider takes everything from the
 * environment (P11CHAT_* variables) and OSSL_PROVIDER_load. */
OSSL_LIB_CTX *ptu_libctx_env(void);
/* Frees the context (and unloads its providers). */
void ptu_libctx_free(OSSL_LIB_CTX *libctx);

/* First key at `uri` through OSSL_STORE (expect: 0, OSSL_STORE_INFO_PKEY or
 * OSSL_STORE_INFO_PUBKEY); NULL if none. */

/* 1 when the OpenSSL error queue holds `text` in a reason or its data; the
 * queue is emptied either way. */
int ptu_error_has(const char *text);

#endif
