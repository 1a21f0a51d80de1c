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

/* ---- The openssl command ---- */

/* Runs `cmd` in the token directory with configuration `which` (as
 * ptu_conf); its output (stdout and stderr) in *out. */
int ptu_run_conf(char **out, int which, const char *cmd);
/* The same with the plain default provider only (no p11chat anywhere). */
int ptu_run_default(char **out, const char *cmd);
/* 1 when out has nothing that looks like an error or a crash. */
int ptu_clean(const char *out);
int ptu_count_in(const char *out, const char *what);
/* 1 when two files of the token directory are identical. */
int ptu_same_files(const char *a, const char *b);
/* Writes msg.txt (a line of text) into the token directory. */
void ptu_write_msg(void);

/* Runs with the provider (configuration which) or the default provider
 * alone, and asserts a clean success. */
#define PTU_OK_CONF(which, cmd)                                                                    \
    do {                                                                                           \
        char *o_ = NULL;                                                                           \
        int rc_ = ptu_run_conf(&o_, (which), cmd);                                                 \
        if (rc_ != 0 || !ptu_clean(o_))                                                            \
            fprintf(stderr, "\n[order %d] %s\n=> %d\n%s\n", (which), cmd, rc_, o_);                \
        CU_ASSERT_EQUAL(rc_, 0);                                                                   \
        CU_ASSERT_TRUE(ptu_clean(o_));                                                             \
        free(o_);                                                                                  \
    } while (0)
#define PTU_OK_DEFAULT(cmd)                                                                        \
    do {                                                                                           \
        char *o_ = NULL;                                                                           \
        int rc_ = ptu_run_default(&o_, cmd);                                                       \
        if (rc_ != 0 || !ptu_clean(o_))                                                            \
            fprintf(stderr, "\n[default] %s\n=> %d\n%s\n", cmd, rc_, o_);                          \
        CU_ASSERT_EQUAL(rc_, 0);                                                                   \
        CU_ASSERT_TRUE(ptu_clean(o_));                                                             \
        free(o_);                                                                                  \
    } while (0)

/* 1 when the OpenSSL error queue holds `text` in a reason or its data; the
 * queue is emptied either way. */
int ptu_error_has(const char *text);

/* ---- Wycheproof vector counts ---- */

typedef struct {
    int valid_pass, valid_fail, invalid_pass, invalid_fail, acceptable_pass, acceptable_fail;
    int skipped;
} PTU_COUNTS;

/* Counts test `t` (its "result" and "tcId") of `file` as passed (ok) or
 * failed; a valid vector failing or an invalid one passing is printed. */
void ptu_count(PTU_COUNTS *c, const json_t *t, int ok, const char *file);
/* Prints the counts of `file`. */
void ptu_print_counts(const char *file, const PTU_COUNTS *c);
/* Prints the counts and asserts them: expect is {valid passed, invalid
 * failed, acceptable passed, acceptable failed, skipped}; no valid vector
 * failed and no invalid one passed. */
void ptu_check_counts(const char *file, const PTU_COUNTS *c, const int expect[5]);
/* Every test counted, whatever its outcome. */
size_t ptu_counts_total(const PTU_COUNTS *c);

#endif
