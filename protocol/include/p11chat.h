/*
 * libp11chat: the P11C protocol (docs/protocol.md, spec: P11C v1).
 *
 * The library does no I/O and no PKCS#11. The caller feeds each received
 * message (transport framing already removed) into a session, then takes out
 * the messages to send and the events to show, in the manner of BearSSL's
 * engine. Keys are EVP_PKEYs from any provider; every EVP call uses the
 * configured OSSL_LIB_CTX and property query. Errors are sticky: the call
 * that fails a session returns the cause, every later call P11C_ERR_FAILED,
 * and p11c_session_error() keeps giving the cause.
 *
 * OpenSSL's error queue: on P11C_ERR_CRYPTO (and P11C_ERR_SECRET) the queue
 * holds what the failing EVP operation and its provider raised, e.g. the
 * p11chat provider's "C_Sign ...: CKR_DEVICE_ERROR"; the library never clears
 * it on a failure. Only an answer that is expected and handled (a signature
 * that does not verify) drops the entries its own call raised, never older
 * ones. Read or clear the queue after a failed call, on the same thread.
 */
#ifndef P11CHAT_H
#define P11CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

#define P11C_VERSION          1
#define P11C_SUITE_1          0x01 /* RSA keys, OAEP key transport (spec section 4) */
#define P11C_SUITE_2          0x02 /* RSA or EC keys, ephemeral ECDH (spec section 10) */
#define P11C_SUITE            P11C_SUITE_1
#define P11C_MAX_FIELD        8192  /* longest handshake field */
#define P11C_MAX_DATA         65536 /* longest DATA plaintext */
#define P11C_MAX_CLOSE_REASON 255
#define P11C_MAX_IDENTITY     255
#define P11C_MAX_FRAME        131072 /* longest stream frame body */
#define P11C_FP_LEN           32     /* SHA-256 */
#define P11C_SHORT_FP_LEN     19     /* "xxxx:xxxx:xxxx:xxxx" without NUL */
#define P11C_WINDOW           64
#define P11C_RECORD_BYTES     72 /* what a record adds to its message: header, IV, MAC */

/* Every way a call or a session can fail; p11c_strerror() explains each. */
typedef enum {
    P11C_OK = 0,
    P11C_ERR_ARG,            /* bad argument or configuration */
    P11C_ERR_MEMORY,         /* allocation failed */
    P11C_ERR_CRYPTO,         /* an EVP operation failed: OpenSSL's error queue says why */
    P11C_ERR_STATE,          /* not allowed in this state (before the handshake, after close) */
    P11C_ERR_FAILED,         /* the session failed earlier; see p11c_session_error() */
    P11C_ERR_DECODE,         /* malformed message: missing field, trailing bytes */
    P11C_ERR_VERSION,        /* unknown protocol version */
    P11C_ERR_TYPE,           /* unexpected or unknown message type */
    P11C_ERR_SUITE,          /* unknown suite, or one this side does not accept */
    P11C_ERR_FIELD_SIZE,     /* a field longer than the protocol allows */
    P11C_ERR_KEY,            /* key not of a kind the suite allows (RSA 2048/3072/4096 with
                              * e = 65537; in suite 0x02 also EC P-256/P-384), or bad DER */
    P11C_ERR_IDENTITY,       /* identity empty, too long, not UTF-8, or with characters it
                              * may not hold (control, format, separator, edge space) */
    P11C_ERR_SIGNATURE,      /* a handshake signature does not verify */
    P11C_ERR_SECRET,         /* Sec did not decrypt to exactly 64 bytes (queue: why, if known) */
    P11C_ERR_CONFIRM,        /* key confirmation failed */
    P11C_ERR_TRUST_MISMATCH, /* peer's identity or fingerprint bound to another */
    P11C_ERR_UNKNOWN_PEER,   /* peer not in the trust store and known-peers-only */
    P11C_ERR_RECORD_LENGTH,  /* record length inconsistent or beyond its type's bound */
    P11C_ERR_RECORD_HEADER,  /* bad version, type or reserved byte in a record */
    P11C_ERR_DIRECTION,      /* record carries our own direction: reflection */
    P11C_ERR_MAC,            /* record MAC does not verify */
    P11C_ERR_REPLAY,         /* record number already seen or too old */
    P11C_ERR_SEQ,            /* record number skipped or reordered (strict policy) */
    P11C_ERR_ACK,            /* ack beyond what we sent, or decreasing */
    P11C_ERR_EARLY_RECORD,   /* record before the handshake completed */
    P11C_ERR_LIMIT,          /* message too long, or record numbers exhausted */
    P11C_ERR_FRAME,          /* bad stream frame or text line */
    P11C_ERR_TRUST_FILE,     /* trust store file unreadable, malformed or unwritable */
} p11c_err;

const char *p11c_strerror(p11c_err err);

typedef enum { P11C_INITIATOR = 0, P11C_RESPONDER = 1 } p11c_role;
typedef enum { P11C_POLICY_STRICT = 0, P11C_POLICY_WINDOW = 1 } p11c_policy;
typedef enum {
    P11C_TRUSTED = 0,
    P11C_UNKNOWN = 1,
    P11C_MISMATCH = 2,
} p11c_trust_result;

/* "trusted", "NOT IN TRUST STORE", "MISMATCH" */
const char *p11c_trust_result_name(p11c_trust_result r);

/* ---- Fingerprints (spec section 2) --------------------------------------- */

/* pub(K): the DER RSAPublicKey of an RSA key, the DER SubjectPublicKeyInfo
 * (named curve, uncompressed point) of an EC key on P-256 or P-384.
 * *der is OPENSSL_malloc'ed. */
p11c_err p11c_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len);
/* fp(K) = SHA-256(pub(K)) */
p11c_err p11c_fingerprint(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *key,
                          uint8_t fp[P11C_FP_LEN]);
p11c_err p11c_fingerprint_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der,
                              size_t len, uint8_t fp[P11C_FP_LEN]);
/* "3f2a:9c01:77be:d410" into out (P11C_SHORT_FP_LEN + 1 bytes) */
void p11c_fingerprint_short(const uint8_t fp[P11C_FP_LEN], char out[P11C_SHORT_FP_LEN + 1]);
/* 64 lowercase hex characters into out (65 bytes) */
void p11c_fingerprint_hex(const uint8_t fp[P11C_FP_LEN], char out[2 * P11C_FP_LEN + 1]);
/* Parses 64 hex characters (colons allowed between pairs or groups). */
p11c_err p11c_fingerprint_parse(const char *hex, uint8_t fp[P11C_FP_LEN]);

/* 1 when `id` (len bytes) is a valid identity (spec section 3): 1 to 255
 * bytes of UTF-8, no control, format (Unicode Cf) or separator characters,
 * no space at either end. */
int p11c_identity_valid(const uint8_t *id, size_t len);
/* 1 when `reason` is a valid CLOSE reason (spec section 6): empty, or at
 * most 255 bytes under the rules for identities, edge spaces allowed. */
int p11c_close_reason_valid(const uint8_t *reason, size_t len);
/* 1 when code point cp may stand in an identity or a CLOSE reason. */
int p11c_identity_char_ok(uint32_t cp);
/* 1 when cp is a format character (Unicode general category Cf). */
int p11c_char_format(uint32_t cp);
/* The Unicode version the table of format characters comes from. */
const char *p11c_format_unicode_version(void);

/* ---- Trust store (spec section 7) ---------------------------------------- */

typedef struct p11c_trust P11C_TRUST;

P11C_TRUST *p11c_trust_new(void);
void p11c_trust_free(P11C_TRUST *t);
/*
 * Loads a trust file: one entry a line, "IDENTITY FINGERPRINT" where
 * FINGERPRINT is 64 hex digits (the last field) and IDENTITY is everything
 * before it, trimmed; '#' starts a comment line; blank lines are ignored.
 * A missing file is an empty store. On a malformed line: P11C_ERR_TRUST_FILE
 * and *bad_line (if given) is its number.
 */
p11c_err p11c_trust_load(P11C_TRUST *t, const char *path, unsigned *bad_line);
/* Writes atomically (temporary file, fsync, rename): never half-written. */
p11c_err p11c_trust_save(const P11C_TRUST *t, const char *path);
/* Adds or replaces the entry for `identity`. */
p11c_err p11c_trust_add(P11C_TRUST *t, const char *identity, const uint8_t fp[P11C_FP_LEN]);
/* P11C_OK, or P11C_ERR_ARG when there is no such identity. */
p11c_err p11c_trust_remove(P11C_TRUST *t, const char *identity);
p11c_trust_result p11c_trust_check(const P11C_TRUST *t, const uint8_t *identity, size_t idlen,
                                   const uint8_t fp[P11C_FP_LEN]);
size_t p11c_trust_count(const P11C_TRUST *t);
/* Entry i (0 .. count-1), in the order of the file. */
const char *p11c_trust_entry(const P11C_TRUST *t, size_t i, const uint8_t **fp);
/* The line of the file entry i was loaded from (0: added since, or no entry). */
unsigned p11c_trust_entry_line(const P11C_TRUST *t, size_t i);
/* What makes a MISMATCH: the entry that binds `identity` to another
 * fingerprint (*by_id) and the one that binds `fp` to another identity
 * (*by_fp), as entry numbers; -1 when there is none. */
void p11c_trust_conflicts(const P11C_TRUST *t, const uint8_t *identity, size_t idlen,
                          const uint8_t fp[P11C_FP_LEN], long *by_id, long *by_fp);

/* ---- Sessions (spec sections 4-6, 8) ------------------------------------- */

typedef struct p11c_session P11C_SESSION;

/*
 * Supplies a fresh session key S for one handshake (a pool, for instance).
 * Ownership passes to the session, which frees it as soon as it has done
 * its work. Return NULL to fail the handshake.
 */
typedef EVP_PKEY *(*p11c_session_key_fn)(void *arg);

typedef struct p11c_config {
    p11c_role role;
    OSSL_LIB_CTX *libctx;    /* NULL: the default library context */
    const char *propq;       /* for every fetch; NULL: none */
    EVP_PKEY *key;           /* our long-term key (borrowed; must outlive the session) */
    const char *identity;    /* our identity (UTF-8, NUL-terminated) */
    const P11C_TRUST *trust; /* borrowed; NULL: an empty store */
    int known_only;          /* refuse peers that are not in the trust store */
    /* The one peer wanted (spec section 7): any other, trusted or not, is
     * refused with P11C_ERR_UNKNOWN_PEER. NULL: any peer the rules allow. */
    const char *expected_peer;
    p11c_policy policy;
    /* Where S is made when no session_key_fn is given: the property query for
     * EVP_PKEY_keygen ("provider=p11chat" for an ephemeral token object).
     * NULL: software (the propq above). */
    const char *session_key_propq;
    p11c_session_key_fn session_key_fn; /* optional: take S from here instead */
    void *session_key_arg;
    /* Initiator: the suite of the HELLO (P11C_SUITE_1 or P11C_SUITE_2); 0:
     * suite 0x02 when our key is EC, else 0x01. Responder: 0 answers either
     * suite; P11C_SUITE_1 or P11C_SUITE_2 accepts only that one. In suite
     * 0x02 the session key (from session_key_fn too) is EC P-256, and the
     * responder's ephemeral E is made where S would be. */
    int suite;
    /* Over a text transport (a chat room, spec section 9.1) anyone can write
     * a handshake message: one that is rejected is dropped (a REJECTED event
     * says why) and the handshake goes on waiting in its state. 0 (streams):
     * every rejection ends the session. */
    int text_transport;
} P11C_CONFIG;

/* NULL when the configuration is invalid or memory ran out; *err says which. */
P11C_SESSION *p11c_session_new(const P11C_CONFIG *cfg, p11c_err *err);
/* Wipes every secret and frees. NULL is a no-op. */
void p11c_session_free(P11C_SESSION *s);

/* Initiator: makes S and queues HELLO. Responder: nothing to do (P11C_OK). */
p11c_err p11c_session_start(P11C_SESSION *s);
/*
 * Feeds one received message (handshake message or record). Produces output
 * messages and events. Returns P11C_OK when the message was accepted or
 * rejected without ending the session (a REJECTED event says so: a record
 * under the window policy, a handshake message over a text transport, which
 * then leaves no trace in the session); otherwise the session has failed and
 * the error is returned.
 */
p11c_err p11c_session_recv(P11C_SESSION *s, const uint8_t *msg, size_t len);
/* The transport ended: a TRUNCATED event unless a CLOSE was received. */
p11c_err p11c_session_transport_end(P11C_SESSION *s);

/* Queue records; refused before the handshake completes, after CLOSE, or
 * beyond the limits (the session stays usable after a refused send). */
p11c_err p11c_session_send_data(P11C_SESSION *s, const uint8_t *data, size_t len);
p11c_err p11c_session_send_ack(P11C_SESSION *s);
p11c_err p11c_session_send_close(P11C_SESSION *s, const char *reason);

/*
 * Takes the next message to send (framing not included). Returns 1 and sets
 * *msg (OPENSSL_malloc'ed, caller frees with OPENSSL_free) and *len, or 0
 * when there is none.
 */
int p11c_session_pop_output(P11C_SESSION *s, uint8_t **msg, size_t *len);

typedef enum {
    P11C_EV_ESTABLISHED = 1, /* peer_id, fp, short_fp, trust */
    P11C_EV_DATA,            /* seq, data, len; late */
    P11C_EV_ACK,             /* count: how many of our records the peer has accepted; late */
    P11C_EV_MISSING,         /* seq: first missing number, count: how many */
    P11C_EV_REJECTED,        /* error: why (window policy, or a handshake message over a text
                              * transport; the session goes on). For a handshake message
                              * refused on trust (P11C_ERR_TRUST_MISMATCH,
                              * P11C_ERR_UNKNOWN_PEER): peer_id (the identity it claimed),
                              * fp, short_fp, trust */
    P11C_EV_CLOSE,           /* count acknowledged; data/len: the reason (may be empty); late */
    P11C_EV_TRUNCATED,       /* the transport ended without CLOSE */
    P11C_EV_ERROR,           /* error: why (the session has failed); for a peer refused
                              * (P11C_ERR_TRUST_MISMATCH, P11C_ERR_UNKNOWN_PEER) also
                              * peer_id, fp, short_fp and trust: who it was */
} p11c_event_type;

typedef struct p11c_event {
    p11c_event_type type;
    p11c_err error;
    uint64_t seq;
    uint64_t count;
    uint8_t *data; /* owned by the event; freed (and wiped) by p11c_event_clear() */
    size_t len;
    char peer_id[P11C_MAX_IDENTITY + 1];
    uint8_t fp[P11C_FP_LEN];
    char short_fp[P11C_SHORT_FP_LEN + 1];
    p11c_trust_result trust;
    /* Window policy: the record (number seq) is older than the newest seen,
     * one reported missing before; show it as late (spec section 9.1). */
    int late;
} P11C_EVENT;

/* Returns 1 and fills *ev with the next event, or 0 when there is none. */
int p11c_session_next_event(P11C_SESSION *s, P11C_EVENT *ev);
void p11c_event_clear(P11C_EVENT *ev);

int p11c_session_established(const P11C_SESSION *s);
/* CLOSE sent and received, the transport ended, or failed */
int p11c_session_closed(const P11C_SESSION *s);
p11c_err p11c_session_error(const P11C_SESSION *s);
uint64_t p11c_session_acked(const P11C_SESSION *s); /* our records the peer confirmed */
/* The suite of the session: the initiator's from the start, the responder's
 * once a HELLO was accepted (0 before). */
int p11c_session_suite(const P11C_SESSION *s);

/* ---- Session-key pool (spec section 8) ----------------------------------- */

/*
 * Keeps up to `size` fresh session keys ready, made ahead of time by a
 * background thread (RSA-2048, e = 65537, EVP_PKEY_keygen in `libctx` under
 * `propq`: NULL for software, "provider=p11chat" for ephemeral token
 * objects). The thread runs at the lowest priority (nice 19), so it refills
 * the pool with the CPU time handshakes leave. Each key is handed out once
 * and never reused, so forward secrecy is kept. NULL on a bad argument or
 * when the thread cannot start; *err (if given) says which.
 */
typedef struct p11c_keypool P11C_KEYPOOL;
P11C_KEYPOOL *p11c_keypool_new(OSSL_LIB_CTX *libctx, const char *propq, size_t size, p11c_err *err);
/* The same for the session keys of `suite`: RSA-2048 for P11C_SUITE_1, EC
 * P-256 for P11C_SUITE_2 (P11C_ERR_ARG for any other). */
P11C_KEYPOOL *p11c_keypool_new_suite(OSSL_LIB_CTX *libctx, const char *propq, int suite,
                                     size_t size, p11c_err *err);
/* After fork(), a child never gets a key made in its parent: its first call
 * discards the inherited keys, and it makes each key when it is taken.
 * Stops the thread and frees (destroys) every key not handed out. NULL: no-op. */
void p11c_keypool_free(P11C_KEYPOOL *pool);
/*
 * A p11c_session_key_fn: pass p11c_keypool_take as session_key_fn and the
 * pool as session_key_arg. Returns a ready key; when none is ready, makes one
 * in the calling thread rather than wait for the pool's. NULL when that
 * generation failed, with the reason in the caller's OpenSSL error queue
 * (the pool, paused by a failure of its own, then tries again).
 */
EVP_PKEY *p11c_keypool_take(void *pool);
/* Keys ready now (for tests and benchmarks). */
size_t p11c_keypool_ready(P11C_KEYPOOL *pool);

/* ---- Framing (spec section 9) -------------------------------------------- */

/* Stream: u32(len) || message. */
p11c_err p11c_frame_stream(const uint8_t *msg, size_t len, uint8_t **out, size_t *outlen);

/*
 * Incremental stream decoder with bounded memory: feed bytes as they come,
 * take complete messages out. A length above P11C_MAX_FRAME is an error.
 */
typedef struct p11c_stream P11C_STREAM;
P11C_STREAM *p11c_stream_new(void);
void p11c_stream_free(P11C_STREAM *st);
p11c_err p11c_stream_feed(P11C_STREAM *st, const uint8_t *buf, size_t len);
/* 1 and a message (OPENSSL_free it), 0 when none is complete. */
int p11c_stream_next(P11C_STREAM *st, uint8_t **msg, size_t *len);
/* Bytes of an incomplete frame held: nonzero at end of stream = truncated. */
size_t p11c_stream_pending(const P11C_STREAM *st);

/*
 * Text: "?P11C:" base64 "." when it fits in max_line bytes (0: no limit),
 * otherwise fragments "?P11C,id,k,n,piece," each at most max_line bytes
 * (P11C_ERR_LIMIT when that needs more than 64 pieces or max_line is too
 * small). Calls `line` once per line (no newline), in order.
 */
p11c_err p11c_text_encode(const uint8_t *msg, size_t len, size_t max_line,
                          p11c_err (*line)(const char *text, size_t textlen, void *arg), void *arg);

/*
 * The longest message (bytes, framing excluded) that p11c_text_encode carries
 * in lines of at most max_line bytes (0: no limit): P11C_MAX_FRAME at most,
 * 0 when not even a short one fits. A record of DATA holds
 * P11C_RECORD_BYTES less.
 */
size_t p11c_text_capacity(size_t max_line);

typedef struct p11c_text P11C_TEXT;
P11C_TEXT *p11c_text_new(void);
void p11c_text_free(P11C_TEXT *tx);

typedef enum {
    P11C_TEXT_NONE = 0, /* a P11C fragment was stored; nothing complete yet */
    P11C_TEXT_MESSAGE,  /* *msg holds a complete P11C message */
    P11C_TEXT_PLAIN,    /* not a P11C line: show as unencrypted text */
    P11C_TEXT_BAD,      /* looked like P11C but is malformed: dropped */
    P11C_TEXT_CUT,      /* a P11C line or piece that ends before its end mark: the chat
                         * cut it short (its lines are shorter than the sender's) */
} p11c_text_kind;

/*
 * Reads one line from the chat program (no newline). The P11C part may
 * stand anywhere in the line (chat programs prefix sender names).
 * For P11C_TEXT_MESSAGE, *msg (OPENSSL_free it) and *len are set.
 */
p11c_text_kind p11c_text_read(P11C_TEXT *tx, const char *line, size_t linelen, uint8_t **msg,
                              size_t *len);

#ifdef __cplusplus
}
#endif

#endif
