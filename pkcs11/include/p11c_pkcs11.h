/*
 * pkcs11/: the only code in p11chat that calls PKCS#11, always through
 * p11-kit (module loading and RFC 7512 URI parsing).
 *
 * Error domain: every function that can fail returns a CK_RV (CKR_OK on
 * success) and, when given a P11C_ERR, fills it with the failing call and a
 * context a person can act on ("token 'ci', key 'alice'"). PINs never appear
 * in that context, nor in any log. Errors of our own (URI, matching, PIN
 * sources) use the vendor-defined P11C_CKR_* values below; p11c_rv_name()
 * names both kinds from one table.
 *
 * Threads: a module, its tokens and its keys may be used from any number of
 * threads at once. Fork: after fork() the child re-initialises the module on
 * first use and never reuses the parent's sessions; keys loaded before the
 * fork find their objects again in the child (token objects only: session
 * objects die with the parent's sessions).
 */
#ifndef P11C_PKCS11_H
#define P11C_PKCS11_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

/* Errors of our own, in the vendor-defined CK_RV range. */
#define P11C_CKR_BASE            (CKR_VENDOR_DEFINED | 0x50310000UL)
#define P11C_CKR_URI_MALFORMED   (P11C_CKR_BASE + 1) /* not a pkcs11: URI p11-kit accepts */
#define P11C_CKR_URI_UNSUPPORTED (P11C_CKR_BASE + 2) /* parses, but asks for what we lack */
#define P11C_CKR_NO_TOKEN        (P11C_CKR_BASE + 3) /* no token matches the URI */
#define P11C_CKR_TOKEN_AMBIGUOUS (P11C_CKR_BASE + 4) /* several tokens match */
#define P11C_CKR_NO_KEY          (P11C_CKR_BASE + 5) /* no key matches the URI */
#define P11C_CKR_KEY_AMBIGUOUS   (P11C_CKR_BASE + 6) /* two different keys match */
#define P11C_CKR_NO_PIN          (P11C_CKR_BASE + 7) /* login needed, no PIN known */
#define P11C_CKR_PIN_SOURCE      (P11C_CKR_BASE + 8) /* pin-source file unreadable */
#define P11C_CKR_MODULE_LOAD     (P11C_CKR_BASE + 9) /* p11-kit could not load the module */
#define P11C_CKR_NOT_RSA         (P11C_CKR_BASE + 10) /* not a key of a kind we use (RSA, EC, EdDSA) */
#define P11C_CKR_KEY_EXISTS      (P11C_CKR_BASE + 11) /* label or id already taken */
#define P11C_CKR_NO_PRIVATE      (P11C_CKR_BASE + 12) /* operation needs the private half */
#define P11C_CKR_SESSION_LIMIT   (P11C_CKR_BASE + 13) /* pool exhausted, token allows no more */
#define P11C_CKR_PIN_FINAL_TRY   (P11C_CKR_BASE + 20) /* one PIN try left: not spent */

/* "CKR_PIN_INCORRECT", "P11C_NO_KEY", or "CKR_0x%08lx" for unknown values. */
const char *p11c_rv_name(CK_RV rv);

/* "CKM_RSA_PKCS_PSS" or "mechanism 0x%lx" into buf. */
const char *p11c_mech_name(CK_MECHANISM_TYPE mech, char *buf, size_t len);

typedef struct p11c_err {
    CK_RV rv;
    const char *func; /* "C_Sign", "C_Login", "p11_kit_uri_parse", ... (static) */
    char what[512];   /* what was asked for; never a PIN */
} P11C_ERR;

/* "C_Sign on token 'ci', key 'alice': CKR_PIN_EXPIRED" into buf. */
const char *p11c_err_string(const P11C_ERR *err, char *buf, size_t len);

/* ---- Modules ------------------------------------------------------------ */

typedef struct p11c_module P11C_MODULE;
typedef struct p11c_token P11C_TOKEN; /* owned by its module */

/*
 * Loads and initialises (for multi-threaded use) a module. `spec` is NULL or
 * "" for p11-kit's proxy module, a path containing '/' for that file, or else
 * the name of a module registered with p11-kit ("softhsm2").
 */
CK_RV p11c_module_load(const char *spec, P11C_MODULE **out, P11C_ERR *err);
/* The same, passing `init_args` (NULL or "": none) to the module's
 * C_Initialize as CK_C_INITIALIZE_ARGS.pReserved, the string modules such as
 * NSS softokn read their parameters from ("configdir='sql:DIR' ..."). Kept
 * for every later re-initialisation. */
CK_RV p11c_module_load_args(const char *spec, const char *init_args, P11C_MODULE **out,
                            P11C_ERR *err);
/* Closes every session and finalises the module (not in a forked child that
 * never used it). NULL is a no-op. */
void p11c_module_free(P11C_MODULE *m);
/* The PIN used for tokens of this module when the URI gives none. Copied;
 * the copy is wiped on free. NULL forgets it. */
CK_RV p11c_module_set_pin(P11C_MODULE *m, const char *pin);
/*
 * Private keys are used through a session copy (C_CopyObject with CKA_TOKEN
 * false: still in the token, as sensitive and as unextractable) when the
 * token allows it, because some tokens, SoftHSM2 among them, re-read a token
 * object's stored attributes on every use. The copy is made on a key's first
 * private operation, on the token's keeper session, and destroyed when the
 * key is freed or destroyed; it is not an error when the token refuses (the
 * token object is used). A key deleted from the token by another program
 * stays usable through its copy until freed. 0 turns copying off for copies
 * not yet made; the default is on.
 */
void p11c_module_set_key_copies(P11C_MODULE *m, int on);
/* Times the module was re-opened because its token went away underneath
 * (CKR_DEVICE_ERROR, CKR_TOKEN_NOT_PRESENT, CKR_CRYPTOKI_NOT_INITIALIZED,
 * CKR_SESSION_HANDLE_INVALID from every session: a remote token's server
 * restarted, a reader unplugged). A private-key operation that meets one
 * re-opens the module (C_Finalize, C_Initialize), finds its key again and
 * logs in again, up to 3 times with a short pause, then fails saying the
 * token is gone. Only what the token answered CKR_OK is reported done. */
unsigned long p11c_module_recoveries(const P11C_MODULE *m);
/* Counts PKCS#11 calls made through this module (for bench/ and tests). */
unsigned long p11c_module_call_count(const P11C_MODULE *m);

/*
 * PINs when nothing names one. A login takes, in this order: the URI's PIN,
 * the PIN kept for the token, the module's PIN (p11c_module_set_pin), then
 * asks `fn` (an application's prompt or passphrase callback): CKR_OK with a
 * PIN in *pin (allocated with malloc; wiped and freed by the caller), or any
 * other value when it has none (err may say why). fn is called with no lock
 * of ours held, from whichever thread needs the login.
 */
typedef CK_RV p11c_pin_ask_fn(void *arg, const P11C_TOKEN *t, char **pin, P11C_ERR *err);
void p11c_module_set_pin_ask(P11C_MODULE *m, p11c_pin_ask_fn *fn, void *arg);
/* A PIN that logged in once, asked or given to p11c_token_login, is kept
 * for its token (and wiped when the module is freed) so that later logins
 * (after fork, a logout, a per-use key) ask nothing. 0: never kept (and
 * what was kept is wiped now); the default is 1. */
void p11c_module_set_pin_cache(P11C_MODULE *m, int on);
/* When the token reports CKF_USER_PIN_FINAL_TRY, a login is refused with
 * P11C_CKR_PIN_FINAL_TRY (a wrong PIN would lock the token) unless allowed
 * here. Default 0. */
void p11c_module_set_pin_final_try(P11C_MODULE *m, int allow);

/* Reads a PIN from a pin-source (RFC 7512): a file path, "file:" allowed,
 * one trailing newline dropped. *pin is released with p11c_pin_free. */
CK_RV p11c_pin_from_source(const char *source, char **pin, P11C_ERR *err);
/* Wipes, then frees. NULL is a no-op. */
void p11c_pin_free(char *pin);

/* ---- Tokens ------------------------------------------------------------- */

/*
 * The one token matching the token and slot attributes of `uri` (token,
 * serial, manufacturer, model, slot-id, slot-description, ...). A URI that
 * names no token attribute matches every token: with several present that
 * is P11C_CKR_TOKEN_AMBIGUOUS.
 */
CK_RV p11c_token_find(P11C_MODULE *m, const char *uri, P11C_TOKEN **out, P11C_ERR *err);
const char *p11c_token_label(const P11C_TOKEN *t);
/* Logs in as user (once per token; again after CKR_USER_NOT_LOGGED_IN).
 * pin: NULL for the kept, the module's, or the asked PIN; a PIN given here
 * is kept for the token (p11c_module_set_pin_cache). Before a PIN is spent,
 * it is refused when empty or blank around (P11C_CKR_PIN_SOURCE), and the
 * token's state is read: a locked PIN or a last try (see
 * p11c_module_set_pin_final_try) is refused without trying. */
CK_RV p11c_token_login(P11C_TOKEN *t, const char *pin, P11C_ERR *err);
/* Asks C_GetMechanismInfo (cached): CKR_OK when the token offers `mech`
 * with all of `flags` (CKF_SIGN, CKF_DECRYPT, ...), CKR_MECHANISM_INVALID
 * otherwise. */
CK_RV p11c_token_mechanism(P11C_TOKEN *t, CK_MECHANISM_TYPE mech, CK_FLAGS flags,
                           CK_MECHANISM_INFO *info, P11C_ERR *err);
CK_RV p11c_token_random(P11C_TOKEN *t, uint8_t *buf, size_t len, P11C_ERR *err);
/* Upper bound of the session pool (the token's ulMaxSessionCount, or a
 * default of 64 when the token says "effectively infinite"). Sessions are
 * opened on demand up to the bound and reused; a session whose state is
 * unknown after an error is closed, not reused. An ephemeral key holds one
 * session of the pool for its lifetime, and so does the keeper of private
 * key copies (p11c_module_set_key_copies), made only when the pool has at
 * least 4 sessions. When all are in use, callers wait
 * (see p11c_token_set_session_wait). */
CK_ULONG p11c_token_max_sessions(const P11C_TOKEN *t);
/* For tests: override the pool bound (0 restores the token's). */
void p11c_token_set_max_sessions(P11C_TOKEN *t, CK_ULONG max);
/* When every session of the pool is in use, a caller waits up to `ms`
 * milliseconds (default 2000) for one to come back, then fails with
 * P11C_CKR_SESSION_LIMIT. */
void p11c_token_set_session_wait(P11C_TOKEN *t, unsigned int ms);

/* ---- Keys --------------------------------------------------------------- */

typedef struct p11c_key P11C_KEY; /* reference counted */

typedef enum {
    P11C_WANT_ANY = 0, /* the pair, or whichever half exists */
    P11C_WANT_PRIVATE,
    P11C_WANT_PUBLIC,
} p11c_want;

/*
 * Loads the key named by `uri`: RSA, EC (P-256, P-384, P-521) or Edwards
 * (Ed25519, Ed448). The private and public halves of one key
 * pair (same CKA_ID, or same label when ids are absent) are one key. A URI
 * without type= names the pair; type=private / type=public restrict it.
 * PIN: the URI's pin-value, its pin-source (a file path, "file:" allowed),
 * else the module's PIN. Loading a public key needs no PIN and no login:
 * the private half is then found (with login) on first use. Object handles
 * are found once and cached. Distinct errors: P11C_CKR_URI_MALFORMED,
 * P11C_CKR_NO_TOKEN, P11C_CKR_NO_KEY, P11C_CKR_KEY_AMBIGUOUS, each naming
 * what was searched for in err->what.
 */
CK_RV p11c_key_load(P11C_MODULE *m, const char *uri, p11c_want want, P11C_KEY **out, P11C_ERR *err);
/*
 * Every key (of the kinds above) on the tokens matching `uri` (object attributes optional),
 * one callback per key (pair); the callback takes a reference. Returns the
 * first error, or CKR_OK (also when nothing matched).
 */
CK_RV p11c_key_enum(P11C_MODULE *m, const char *uri, void (*cb)(P11C_KEY *key, void *arg),
                    void *arg, P11C_ERR *err);

P11C_KEY *p11c_key_up_ref(P11C_KEY *k);
/* Drops a reference; the last one destroys an ephemeral session key in the
 * token and releases its session. NULL is a no-op. */
void p11c_key_free(P11C_KEY *k);

/* 1 if the private half exists. Logs in and looks for it when a PIN is
 * known (URI, module) or the token is logged in; else 0 unless the private
 * handle is already known. type=public keys: always 0. */
int p11c_key_has_private(P11C_KEY *k);
int p11c_key_is_ephemeral(const P11C_KEY *k);
unsigned int p11c_key_bits(const P11C_KEY *k);
/* Big-endian modulus and public exponent, owned by the key. */
void p11c_key_public(const P11C_KEY *k, const uint8_t **n, size_t *nlen, const uint8_t **e,
                     size_t *elen);
const char *p11c_key_label(const P11C_KEY *k); /* "" when none */
/* CKK_RSA, CKK_EC or CKK_EC_EDWARDS. */
CK_KEY_TYPE p11c_key_type(const P11C_KEY *k);
/* "P-256", "P-384", "P-521", "Ed25519" or "Ed448"; NULL for RSA keys. */
const char *p11c_key_curve(const P11C_KEY *k);
/* The public point, raw (04||X||Y for EC, the 32 or 57 bytes of an Edwards
 * key), whichever form the token stores CKA_EC_POINT in. Owned by the key. */
void p11c_key_ec_point(const P11C_KEY *k, const uint8_t **pt, size_t *len);
/* Bytes of a signature: the modulus size, or r||s (EC), or R||S (EdDSA). */
size_t p11c_key_sig_len(const P11C_KEY *k);
const uint8_t *p11c_key_id(const P11C_KEY *k, size_t *len);
P11C_TOKEN *p11c_key_token(const P11C_KEY *k);
/* A pkcs11: URI naming this key again: the token's label, serial,
 * manufacturer and model, the key's label and id, type=public for a public
 * key alone (or when public_only); never a PIN. *out is released with free(). */
CK_RV p11c_key_uri(const P11C_KEY *k, int public_only, char **out, P11C_ERR *err);

/* Mechanism and its parameters for sign and decrypt. Zero fields are never
 * sent to the token as zero: the caller fills what the mechanism needs. */
typedef struct p11c_mech {
    CK_MECHANISM_TYPE type;   /* CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS, CKM_RSA_PKCS,
                                 CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_RSA_X_509 ... */
    CK_MECHANISM_TYPE hash;   /* PSS and OAEP: CKM_SHA_1, CKM_SHA256, ... */
    CK_RSA_PKCS_MGF_TYPE mgf; /* PSS and OAEP: CKG_MGF1_SHA1, CKG_MGF1_SHA256, ... */
    CK_ULONG salt_len;        /* PSS */
    const uint8_t *label;     /* OAEP, may be NULL */
    size_t label_len;
} P11C_MECH;

/* Signs `in` (a digest for the bare mechanisms, the message for the
 * hash-and-sign ones and CKM_EDDSA). *siglen: in, the buffer size; out, the
 * length. CKM_ECDSA gives r||s, each as long as the curve's field. */
CK_RV p11c_key_sign(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                    uint8_t *sig, size_t *siglen, P11C_ERR *err);
/* Decrypts; *outlen: in, the buffer size; out, the length. */
CK_RV p11c_key_decrypt(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen, P11C_ERR *err);

/*
 * Generates an RSA key pair (2048, 3072 or 4096 bits, e = 65537) on `t`.
 * persistent (bit 0): token objects with `label` and `id` (P11C_CKR_KEY_EXISTS
 * when either is taken; a NULL id gets 16 random bytes from the token).
 * Otherwise: session objects (CKA_TOKEN false, sensitive, not extractable)
 * that vanish when the key is freed or its session ends. Either signs and
 * decrypts, unless P11C_GEN_SIGN_ONLY is added to persistent (a P11C
 * long-term key: it can never serve as a decryption oracle) or
 * P11C_GEN_DECRYPT_ONLY (a P11C session key S).
 */
#define P11C_GEN_DECRYPT_ONLY 2
#define P11C_GEN_SIGN_ONLY    4
CK_RV p11c_key_generate(P11C_TOKEN *t, unsigned int bits, const char *label, const uint8_t *id,
                        size_t idlen, int persistent, P11C_KEY **out, P11C_ERR *err);

/*
 * ECDH (CKM_ECDH1_DERIVE, no KDF) of an EC key with the peer's uncompressed
 * point: the shared x coordinate, as long as the curve's field, into out
 * (NULL: *outlen gets that length). The secret passes through a session
 * object that is read once and destroyed before this returns.
 */
CK_RV p11c_key_derive(P11C_KEY *k, const uint8_t *peer, size_t peerlen, uint8_t *out,
                      size_t *outlen, P11C_ERR *err);

/*
 * Generates an EC ("P-256", "P-384", "P-521") or Edwards ("Ed25519",
 * "Ed448") key pair on `t`; persistent, label and id as for RSA, and the
 * flags: P11C_GEN_SIGN_ONLY (CKA_DERIVE false), P11C_GEN_DECRYPT_ONLY (for
 * EC keys: derive only, CKA_SIGN false; refused for Edwards keys) and
 * P11C_GEN_PER_USE (CKA_ALWAYS_AUTHENTICATE: the PIN for every use).
 */
#define P11C_GEN_PER_USE 8
CK_RV p11c_key_generate_ec(P11C_TOKEN *t, const char *curve, const char *label, const uint8_t *id,
                           size_t idlen, int persistent, P11C_KEY **out, P11C_ERR *err);
/* Imports an EC or Edwards key (for tests and migration): the raw public
 * point, and the private value (big-endian scalar, or the Edwards seed) when
 * priv is not NULL. */
CK_RV p11c_key_import_ec(P11C_TOKEN *t, const char *curve, const uint8_t *priv, size_t privlen,
                         const uint8_t *point, size_t pointlen, const char *label,
                         const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                         P11C_ERR *err);

/* RSA components, big-endian. Public only when d is NULL. */
typedef struct p11c_rsa_parts {
    const uint8_t *n, *e, *d, *p, *q, *dp, *dq, *qinv;
    size_t nlen, elen, dlen, plen, qlen, dplen, dqlen, qinvlen;
} P11C_RSA_PARTS;

/* Imports an RSA key with C_CreateObject (for tests and migration). */
CK_RV p11c_key_import(P11C_TOKEN *t, const P11C_RSA_PARTS *parts, const char *label,
                      const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                      P11C_ERR *err);

/*
 * Keys that want the PIN for every use (CKA_ALWAYS_AUTHENTICATE true, as PIV
 * and OpenPGP signature keys): each sign and decrypt logs in with
 * CKU_CONTEXT_SPECIFIC right after its Init, with the URI's, kept, module or
 * asked PIN (a protected authentication path gets none). This makes such a
 * key, as p11c_key_generate does (tokens set the attribute at creation
 * only; SoftHSM2 refuses to change it later).
 */
CK_RV p11c_key_generate_per_use(P11C_TOKEN *t, unsigned int bits, const char *label,
                                const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                                P11C_ERR *err);
/* Context-specific logins made through this module (for bench/ and tests). */
unsigned long p11c_module_context_logins(const P11C_MODULE *m);

/* ---- Certificates ------------------------------------------------------- */

/* One X.509 certificate of a token, valid during the callback only. */
typedef struct p11c_cert {
    const uint8_t *der; /* CKA_VALUE */
    size_t derlen;
    const char *label; /* "" when none */
    const uint8_t *id;
    size_t idlen;
    const char *token; /* the token's label */
} P11C_CERT;

typedef void p11c_cert_cb(const P11C_CERT *cert, void *arg);

/*
 * Every X.509 certificate on the tokens matching `uri` whose label and id
 * match the URI's (none given: all of them), without a login. A URI with
 * object= and neither id= nor type= that matches no certificate label
 * finds the certificate of the key of that label, by the key's CKA_ID. A
 * URI with type= other than cert finds none. CKR_OK also when none matched.
 */
CK_RV p11c_cert_enum(P11C_MODULE *m, const char *uri, p11c_cert_cb *cb, void *arg, P11C_ERR *err);

/* Destroys the key's objects in the token (both halves). The key stays
 * allocated until freed but every later use fails. */
CK_RV p11c_key_destroy(P11C_KEY *k, P11C_ERR *err);

#endif
