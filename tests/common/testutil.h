/* Helpers shared by every CUnit suite: vector files, hex, private tokens. */
#ifndef P11C_TESTUTIL_H
#define P11C_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <openssl/evp.h>

/* Absolute path of a file under tests/vectors/ ("protocol/keys.json"). */
const char *tu_vector_path(const char *rel);

/* Parses a vector file; aborts the test program if it cannot. */
json_t *tu_vector_load(const char *rel);

/* Decodes hex into a fresh buffer (freed with free()); aborts on bad hex. */
uint8_t *tu_unhex(const char *hex, size_t *len);
/* Hex of the JSON string member `key` of `obj`. */
uint8_t *tu_json_hex(const json_t *obj, const char *key, size_t *len);
/* The string member `key` of `obj`; aborts if absent. */
const char *tu_json_str(const json_t *obj, const char *key);

/*
 * A private SoftHSM2 token for this test program: runs tests/token/mktoken.sh
 * into build/tests/tokens/NAME.PID, sets SOFTHSM2_CONF for this process and
 * its children, and returns the token directory. The token is labelled
 * "p11chat-test", user PIN "1234", SO PIN "12345678", keys "alice" (id 01)
 * and "bob" (id 02). With with_keys = 0 the token holds no keys.
 */
const char *tu_token_make(const char *name, int with_keys);

/*
 * The token implementation under test: P11C_TEST_TOKEN=nss makes the token
 * of tu_token_make an NSS softokn database (tests/token/mknss.sh: the same
 * label, PIN and key labels; the keys come with certificates, and
 * DIR/alice.pub.der, DIR/bob.pub.der hold their public keys as made by
 * openssl) and sets P11CHAT_PKCS11_MODULE and
 * P11CHAT_PKCS11_MODULE_INIT_ARGS for the programs the test runs;
 * otherwise SoftHSM2.
 */
const char *tu_token_kind(void); /* "softhsm" or "nss" */
int tu_token_is_nss(void);
/* The module of that token, and its C_Initialize arguments (NULL: none). */
const char *tu_token_module(void);
const char *tu_token_init_args(void);

/*
 * A real `p11-kit server` exporting the tokens of `module` that match
 * `token_uri` on the Unix socket `sock`, in a process group of its own, its
 * output appended to `log`. Returns its pid once the socket exists, or -1.
 * tu_p11kit_server_kill ends it and every process it started (SIGKILL to
 * the group) and waits for it; -1 is a no-op.
 */
int tu_p11kit_server_start(const char *module, const char *sock, const char *token_uri,
                           const char *log);
void tu_p11kit_server_kill(int pid);
/* p11-kit-client.so, or NULL (with the reason on stderr) when it or the
 * p11-kit command is missing. */
const char *tu_p11kit_client(void);

/* Token constants matching mktoken.sh. */
#define TU_TOKEN_LABEL "p11chat-test"
#define TU_USER_PIN    "1234"
#define TU_SO_PIN      "12345678"

/*
 * The first key `uri` names, loaded through OSSL_STORE in `libctx` as any
 * OpenSSL application would (a private key, else a public one); `expect`
 * is passed to OSSL_STORE_expect when nonzero. NULL when there is none.
 */
EVP_PKEY *tu_store_load(OSSL_LIB_CTX *libctx, const char *uri, int expect);

/* Paths fixed at build time. */
const char *tu_softhsm_module(void); /* the SoftHSM2 module file */
const char *tu_provider_dir(void);   /* directory holding p11chat.so */
const char *tu_apps_dir(void);       /* directory holding the p11chat command */

/*
 * Runs a shell command line; returns its exit status (or -1). Output goes to
 * `out` (may be NULL), a NUL-terminated buffer the caller frees, holding
 * stdout and stderr together.
 */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Runs the registered CUnit suites in basic mode and returns the process exit
 * status: 0 when every assertion passed and at least one test ran.
 */
int tu_main(void);

#endif
