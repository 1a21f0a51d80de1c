/*
 * Internal interfaces of libp11chat: the bounded cursor, key helpers, the
 * record layer and the handshake pieces. Also used by the test suite to
 * check each deterministic value of the protocol on its own; nothing here is
 * part of the public interface.
 */
#ifndef P11C_INTERNAL_H
#define P11C_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11chat.h"

/* Not exported from the shared library; the tests link the static one. */
#pragma GCC visibility push(hidden)

#define P11C_SEC_LEN      64
#define P11C_KEY_LEN      32
#define P11C_IV_LEN       16
#define P11C_MAC_LEN      32
#define P11C_HDR_LEN      24
#define P11C_REC_OVERHEAD (P11C_HDR_LEN + P11C_IV_LEN + P11C_MAC_LEN)
#define P11C_PSS_SALT     32
#define P11C_SEQ_LIMIT    UINT64_C(0x100000000) /* seq never reaches 2^32 */

/* Handshake message types. */
#define P11C_MSG_HELLO   0x01
#define P11C_MSG_REPLY   0x02
#define P11C_MSG_CONFIRM 0x03
#define P11C_MSG_FINISH  0x04
/* Record types. */
#define P11C_REC_DATA  0x10
#define P11C_REC_ACK   0x11
#define P11C_REC_CLOSE 0x12
#define P11C_DIR_ALICE 0x00
#define P11C_DIR_BOB   0x01

/* ---- Bounded cursors (cursor.c) ------------------------------------------ */

/* Reading: every read checks what is left first; a short read sets `bad`. */
typedef struct p11c_rcur {
    const uint8_t *p;
    size_t left;
    int bad;
} P11C_RCUR;

void p11c_rcur_init(P11C_RCUR *c, const uint8_t *buf, size_t len);
int p11c_rcur_u8(P11C_RCUR *c, uint8_t *v);
int p11c_rcur_u32(P11C_RCUR *c, uint32_t *v);
int p11c_rcur_u64(P11C_RCUR *c, uint64_t *v);
int p11c_rcur_bytes(P11C_RCUR *c, size_t n, const uint8_t **out);
/* vec(x) of at most `max` bytes: P11C_ERR_DECODE when it runs past the end,
 * P11C_ERR_FIELD_SIZE when it is longer than max. */
p11c_err p11c_rcur_vec(P11C_RCUR *c, size_t max, const uint8_t **out, size_t *len);

/* Writing into a growing buffer; an allocation failure sets `bad` (sticky). */
typedef struct p11c_wbuf {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int bad;
} P11C_WBUF;

void p11c_wbuf_init(P11C_WBUF *w);
int p11c_wbuf_reserve(P11C_WBUF *w, size_t more);
void p11c_wbuf_u8(P11C_WBUF *w, uint8_t v);
void p11c_wbuf_u32(P11C_WBUF *w, uint32_t v);
void p11c_wbuf_u64(P11C_WBUF *w, uint64_t v);
void p11c_wbuf_bytes(P11C_WBUF *w, const void *p, size_t n);
void p11c_wbuf_vec(P11C_WBUF *w, const uint8_t *p, size_t n);
/* Wipes and frees the contents. */
void p11c_wbuf_cleanup(P11C_WBUF *w);

void p11c_put_u32(uint8_t *p, uint32_t v);
void p11c_put_u64(uint8_t *p, uint64_t v);
uint32_t p11c_get_u32(const uint8_t *p);
uint64_t p11c_get_u64(const uint8_t *p);

/* ---- Strict DER (der.c) --------------------------------------------------- */

/* A canonical DER length (at most two bytes); 0 on anything else. */
int p11c_der_read_len(P11C_RCUR *c, size_t *n);
/* A minimal, positive INTEGER; out and n get the magnitude without the sign byte. */
int p11c_der_read_uint(P11C_RCUR *c, const uint8_t **out, size_t *n);

/* ---- Public keys of either kind (pubkey.c) -------------------------------- */

/* Kinds of key a field may hold (a bit set). */
#define P11C_KIND_RSA  0x01u /* RSAPublicKey, 2048/3072/4096 bits, e = 65537 */
#define P11C_KIND_P256 0x02u /* SubjectPublicKeyInfo, prime256v1, uncompressed */
#define P11C_KIND_P384 0x04u /* SubjectPublicKeyInfo, secp384r1, uncompressed */
#define P11C_KIND_EC   (P11C_KIND_P256 | P11C_KIND_P384)
#define P11C_KIND_ANY  (P11C_KIND_RSA | P11C_KIND_EC)

/* The kind of a key (0 when it is neither RSA nor EC on P-256/P-384, or its
 * curve cannot be read). */
unsigned p11c_key_kind(const EVP_PKEY *key);
/*
 * Decodes pub(K) of one of `kinds`, told apart by the first element of the
 * outer SEQUENCE (INTEGER: RSAPublicKey, SEQUENCE: SubjectPublicKeyInfo).
 * P11C_ERR_KEY for anything else; `key` NULL: checks the bytes only (the
 * curve point is checked only when the key is made).
 */
p11c_err p11c_pub_decode(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der, size_t len,
                         unsigned kinds, EVP_PKEY **key);
/* Sign(K, m) of spec section 10: PSS for RSA, ECDSA (SHA-256 on P-256,
 * SHA-384 on P-384, DER ECDSA-Sig-Value) for EC. */
p11c_err p11c_sig_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                       size_t tbslen, uint8_t **sig, size_t *siglen);
/* P11C_ERR_SIGNATURE when the signature does not verify. */
p11c_err p11c_sig_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, const uint8_t *sig, size_t siglen);

/* ---- EC keys (pub_ec.c, ecdsa.c) ------------------------------------------ */

/* What the protocol knows of each curve it accepts. */
typedef struct p11c_ec_curve {
    unsigned kind;       /* P11C_KIND_P256 or P11C_KIND_P384 */
    const char *group;   /* OpenSSL's group name */
    const char *nist;    /* the other name a provider may give it */
    const char *md;      /* the ECDSA digest */
    size_t coord;        /* bytes of a coordinate (and of the order n) */
    const uint8_t *spki; /* the SubjectPublicKeyInfo up to the point */
    size_t spki_len;
    const uint8_t *order; /* n, big-endian, coord bytes */
} P11C_EC_CURVE;

/* The curve of one kind (P11C_KIND_P256 or P11C_KIND_P384), or NULL. */
const P11C_EC_CURVE *p11c_ec_curve(unsigned kind);
/* pub(K) of an EC key on P-256 or P-384: the SubjectPublicKeyInfo DER. */
p11c_err p11c_ec_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len);
/* P11C_KIND_P256, P11C_KIND_P384, or 0. */
unsigned p11c_ec_kind(const EVP_PKEY *key);
/* The strict SubjectPublicKeyInfo decoder: one of `kinds` (EC ones), named
 * curve, uncompressed point on the curve, canonical DER; P11C_ERR_KEY else. */
p11c_err p11c_ec_key_from_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der,
                              size_t len, unsigned kinds, EVP_PKEY **key);
/* A fresh EC key on P-256 (in libctx under propq: software, or a token object). */
p11c_err p11c_ec_session_key_make(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY **key);
p11c_err p11c_ecdsa_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, uint8_t **sig, size_t *siglen);
/* Rejects non-canonical DER and r or s outside [1, n-1] before verifying. */
p11c_err p11c_ecdsa_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                           const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen);

/* ---- RSA keys (keys.c) ---------------------------------------------------- */

/* pub(K) of an RSA key: the DER RSAPublicKey. */
p11c_err p11c_rsa_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len);

/*
 * Checks that `der` is the canonical DER RSAPublicKey of a 2048, 3072 or
 * 4096-bit modulus with e = 65537 and, when `key` is not NULL, makes the key
 * (in libctx under propq) and checks that it encodes back to the same bytes.
 */
p11c_err p11c_key_from_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der, size_t len,
                           EVP_PKEY **key);
p11c_err p11c_pss_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                       size_t tbslen, uint8_t **sig, size_t *siglen);
/* P11C_ERR_SIGNATURE when the signature does not verify. */
p11c_err p11c_pss_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, const uint8_t *sig, size_t siglen);
p11c_err p11c_oaep_encrypt(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen);
/* Decrypts into sec; P11C_ERR_SECRET unless the result is exactly 64 bytes. */
p11c_err p11c_oaep_decrypt_sec(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                               const uint8_t *in, size_t inlen, uint8_t sec[P11C_SEC_LEN]);
/* A fresh RSA-2048 session key, e = 65537. */
p11c_err p11c_session_key_make(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY **key);

/* ---- Key transport, one file per suite (kex.c, kex_oaep.c, kex_ecdh.c) ---- */

/*
 * What a suite changes (spec section 10): the kinds of key, how S is made,
 * and how Sec reaches the initiator. Everything else of the handshake is the
 * same for every suite and calls through this table.
 */
typedef struct p11c_kex {
    uint8_t suite;
    unsigned long_term; /* the kinds A and B may be */
    unsigned session;   /* the kind S must be */
    /* A fresh S in libctx under propq (software, or a token object). */
    p11c_err (*make_s)(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY **key);
    /* Responder: Sec, and the REPLY field that carries it (EncSec or pub(E))
     * into s->enc_sec; s->S is the initiator's pub(S). */
    p11c_err (*respond)(P11C_SESSION *s, uint8_t sec[P11C_SEC_LEN]);
    /* Initiator: Sec from that field with s->S. */
    p11c_err (*receive)(P11C_SESSION *s, const uint8_t *field, size_t len,
                        uint8_t sec[P11C_SEC_LEN]);
} P11C_KEX;

extern const P11C_KEX p11c_kex_oaep; /* suite 0x01 */
extern const P11C_KEX p11c_kex_ecdh; /* suite 0x02 */
/* The suite's table, or NULL for an unknown suite. */
const P11C_KEX *p11c_kex_find(int suite);

/* Z: the ECDH shared secret (the x-coordinate, 32 bytes) of priv and peer. */
p11c_err p11c_ecdh_z(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *priv, EVP_PKEY *peer,
                     uint8_t z[32]);
/* Sec = HMAC-SHA-512("P11C" || u8(1) || u8(2) || "Sec" || vec(pub(S)) || vec(pub(E)), Z). */
p11c_err p11c_ecdh_sec(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t z[32],
                       const uint8_t *pub_s, size_t pub_s_len, const uint8_t *pub_e,
                       size_t pub_e_len, uint8_t sec[P11C_SEC_LEN]);

/* ---- HMAC-SHA256 (hmac.c): every MAC of the protocol ----------------------- */

/* A context keyed with `key` (any length, 0 included); NULL on failure. */
EVP_MAC_CTX *p11c_hmac_new(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *key,
                           size_t keylen);
/* out = HMAC(key, a || b); either part may be empty. */
p11c_err p11c_hmac(EVP_MAC_CTX *ctx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                   uint8_t out[P11C_MAC_LEN]);
/* Compares the first taglen (1 .. 32) bytes of HMAC(key, a || b) with tag in
 * constant time: P11C_OK, P11C_ERR_MAC, or P11C_ERR_CRYPTO when HMAC failed. */
p11c_err p11c_hmac_verify(EVP_MAC_CTX *ctx, const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen, const uint8_t *tag, size_t taglen);

/* ---- Key schedule (kdf.c) ------------------------------------------------ */

p11c_err p11c_kdf(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t sec[P11C_SEC_LEN],
                  uint8_t enc_key[P11C_KEY_LEN], uint8_t mac_key[P11C_KEY_LEN]);

/* ---- Signed inputs (hello.c, reply.c, confirm.c) ------------------------- */

p11c_err p11c_tbs_a(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_a, size_t pub_a_len,
                    const uint8_t *pub_s, size_t pub_s_len, const uint8_t *id_a, size_t id_a_len);
p11c_err p11c_tbs_b(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_b, size_t pub_b_len,
                    const uint8_t *enc_sec, size_t enc_sec_len, const uint8_t *pub_a,
                    size_t pub_a_len, const uint8_t *pub_s, size_t pub_s_len, const uint8_t *id_a,
                    size_t id_a_len, const uint8_t *id_b, size_t id_b_len);
p11c_err p11c_tbs_c(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_a, size_t pub_a_len,
                    const uint8_t *enc_sec, size_t enc_sec_len, const uint8_t *pub_b,
                    size_t pub_b_len, const uint8_t *id_a, size_t id_a_len, const uint8_t *id_b,
                    size_t id_b_len);

/* ---- Record layer (record.c) --------------------------------------------- */

typedef enum {
    P11C_OPEN_AUTO = 0, /* the faster of the two on this machine */
    P11C_OPEN_CFB = 1,  /* EVP's CFB-128 decryption */
    P11C_OPEN_ECB = 2,  /* AES-ECB over IV || C (all blocks at once), then XOR */
} p11c_open_mode;

/* Per-direction cipher and MAC contexts, keyed once per session. */
typedef struct p11c_rec {
    EVP_CIPHER_CTX *enc;     /* AES-256-CFB128, encrypt */
    EVP_CIPHER_CTX *dec_cfb; /* AES-256-CFB128, decrypt */
    EVP_CIPHER_CTX *dec_ecb; /* AES-256-ECB, encrypt, no padding */
    EVP_MAC_CTX *mac;        /* HMAC-SHA256 keyed with MACKey */
    p11c_open_mode mode;
} P11C_REC;

typedef struct p11c_rec_hdr {
    uint8_t type;
    uint8_t dir;
    uint32_t len;
    uint64_t seq;
    uint64_t ack;
} P11C_REC_HDR;

p11c_err p11c_rec_init(P11C_REC *r, OSSL_LIB_CTX *libctx, const char *propq,
                       const uint8_t enc_key[P11C_KEY_LEN], const uint8_t mac_key[P11C_KEY_LEN]);
void p11c_rec_cleanup(P11C_REC *r);
void p11c_rec_set_open_mode(P11C_REC *r, p11c_open_mode mode);
/* header || IV || C || MAC into a fresh buffer. */
p11c_err p11c_rec_seal(P11C_REC *r, const P11C_REC_HDR *h, const uint8_t iv[P11C_IV_LEN],
                       const uint8_t *m, uint8_t **out, size_t *outlen);
/* Length, version, type, reserved byte (no key needed). */
p11c_err p11c_rec_parse(const uint8_t *rec, size_t len, P11C_REC_HDR *h);
/* Constant-time MAC check. */
p11c_err p11c_rec_verify(P11C_REC *r, const uint8_t *rec, size_t len);
/* Decrypts C of a parsed, verified record into a fresh buffer (NULL when len is 0). */
p11c_err p11c_rec_decrypt(P11C_REC *r, const uint8_t *rec, const P11C_REC_HDR *h, uint8_t **m);
/* HMAC(MACKey, label || digest) for key confirmation. */
p11c_err p11c_rec_confirm(P11C_REC *r, const char *label, const uint8_t digest[32],
                          uint8_t out[P11C_MAC_LEN]);

/* ---- Test hooks ------------------------------------------------------------ */

/*
 * Replaces the randomized values of one session with recorded ones so that a
 * recorded transcript can be reproduced byte for byte. Pointers are borrowed.
 */
typedef struct p11c_test_hooks {
    /* Suite 0x01, P11C_SEC_LEN bytes: the responder's Sec instead of a random
     * one; the initiator takes it instead of OAEP-decrypting EncSec with S. */
    const uint8_t *sec;
    const uint8_t *enc_sec;
    size_t enc_sec_len; /* instead of OAEP-Enc(S, Sec) */
    const uint8_t *sig_a;
    size_t sig_a_len;
    const uint8_t *sig_b;
    size_t sig_b_len;
    const uint8_t *sig_c;
    size_t sig_c_len;
    EVP_PKEY *e_key;    /* suite 0x02: the responder's E instead of a fresh one */
    const uint8_t *ivs; /* n_ivs record IVs of 16 bytes, used in order */
    size_t n_ivs;
    p11c_open_mode open_mode;
} P11C_TEST_HOOKS;

void p11c_session_set_test_hooks(P11C_SESSION *s, const P11C_TEST_HOOKS *h);
/* A deep copy of a session whose queues are empty (NULL otherwise, or when
 * memory runs out): its handshake state, transcript and record contexts are
 * its own, the configuration's key and trust store stay borrowed. Lets a
 * harness make a session once and feed each input to a fresh copy. */
P11C_SESSION *p11c_session_test_dup(const P11C_SESSION *s);
/* Moves the record counter (to test the 2^32 limit). */
void p11c_session_test_set_send_seq(P11C_SESSION *s, uint64_t seq);

#pragma GCC visibility pop

#endif
