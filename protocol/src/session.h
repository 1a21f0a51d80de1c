/* The session object shared by the handshake and record files. */
#ifndef P11C_SESSION_H
#define P11C_SESSION_H

#include "p11c_internal.h"

#pragma GCC visibility push(hidden)

/* Handshake states; the table in session.c says which message each expects. */
typedef enum {
    ST_INIT = 0,     /* initiator before p11c_session_start */
    ST_WAIT_HELLO,   /* responder */
    ST_WAIT_REPLY,   /* initiator, HELLO sent */
    ST_WAIT_CONFIRM, /* responder, REPLY sent */
    ST_WAIT_FINISH,  /* initiator, CONFIRM sent */
    ST_ESTABLISHED,  /* records flow */
    ST_DONE,         /* CLOSE received, or the transport ended */
    ST_FAILED,       /* sticky */
} p11c_state;

typedef struct out_msg {
    struct out_msg *next;
    uint8_t *buf;
    size_t len;
} OUT_MSG;

typedef struct ev_node {
    struct ev_node *next;
    P11C_EVENT ev;
} EV_NODE;

struct p11c_session {
    /* configuration */
    p11c_role role;
    OSSL_LIB_CTX *libctx;
    char *propq;
    EVP_PKEY *key;
    char *identity;
    size_t idlen;
    const P11C_TRUST *trust;
    int known_only;
    char *expected_peer; /* NULL: any */
    p11c_policy policy;
    int text_transport; /* a rejected handshake message is dropped (section 9.1) */
    char *sk_propq;
    p11c_session_key_fn sk_fn;
    void *sk_arg;
    int suite_only; /* responder: the one suite accepted, 0: any */

    p11c_state state;
    p11c_err err;
    uint8_t *own_pub;
    size_t own_pub_len;

    /* handshake */
    const P11C_KEX *kex; /* the suite's key transport: from the start (initiator) or the HELLO */
    EVP_PKEY *S;         /* initiator: destroyed as soon as Sec is made */
    uint8_t *s_pub;
    size_t s_pub_len;
    uint8_t *peer_pub;
    size_t peer_pub_len;
    EVP_PKEY *peer_key;
    uint8_t peer_id[P11C_MAX_IDENTITY];
    size_t peer_idlen;
    uint8_t *enc_sec; /* REPLY's key transport field: EncSec (0x01) or pub(E) (0x02) */
    size_t enc_sec_len;
    EVP_MD_CTX *transcript; /* SHA-256 over the handshake messages so far */
    uint8_t peer_fp[P11C_FP_LEN];
    p11c_trust_result trust_res;

    /* records */
    P11C_REC rec;
    int rec_ready;
    uint8_t my_dir;
    uint64_t send_seq;  /* records sent */
    uint64_t recv_next; /* strict: the next seq expected; window: newest seen + 1 */
    uint64_t recv_bits; /* window: bit i-1 set when newest - i was seen (i = 1..64) */
    uint64_t recv_ack;  /* the ack we send: peer records received in order */
    uint64_t peer_ack;  /* the highest ack the peer sent us */
    int close_sent;
    int close_recv;

    OUT_MSG *out_head, *out_tail;
    EV_NODE *ev_head, *ev_tail;

    OUT_MSG *out_spare; /* the last node popped, for the next queued message */

    /* Record IVs drawn 256 at a time: one DRBG call (and its fork check, a
     * system call) per 256 records instead of one per record. */
    uint8_t iv_pool[256 * P11C_IV_LEN];
    size_t iv_left;

    P11C_TEST_HOOKS hooks;
    size_t iv_used;
};

/* session.c */
p11c_err p11c_session_fail(P11C_SESSION *s, p11c_err err);
p11c_err p11c_session_queue(P11C_SESSION *s, uint8_t *msg, size_t len); /* takes msg */
p11c_err p11c_session_event(P11C_SESSION *s, const P11C_EVENT *ev);     /* takes ev->data */
p11c_err p11c_session_established_event(P11C_SESSION *s);
p11c_err p11c_session_peer_check(P11C_SESSION *s, const uint8_t *pub, size_t publen,
                                 const uint8_t *id, size_t idlen);
p11c_err p11c_session_keys(P11C_SESSION *s, uint8_t sec[P11C_SEC_LEN]);
p11c_err p11c_session_sign(P11C_SESSION *s, const uint8_t *tbs, size_t len, const uint8_t *hook,
                           size_t hooklen, uint8_t **sig, size_t *siglen);
p11c_err p11c_session_transcript(P11C_SESSION *s, const uint8_t *msg, size_t len);
p11c_err p11c_session_transcript_peek(P11C_SESSION *s, const uint8_t *extra, size_t len,
                                      uint8_t digest[32]);

/* suite.c: the initiator's choice (0: by the kind of our key) or the
 * responder's restriction, checked against our key; the HELLO's suite taken. */
p11c_err p11c_session_suite_init(P11C_SESSION *s, int suite);
p11c_err p11c_session_suite_accept(P11C_SESSION *s, uint8_t suite);

/* One vec() field of a handshake message. */
typedef struct p11c_field {
    const uint8_t *p;
    size_t len;
} P11C_FIELD;

/* Starts reading a handshake message: version and type byte, checked
 * (P11C_ERR_DECODE, P11C_ERR_VERSION, P11C_ERR_TYPE). */
p11c_err p11c_hs_open(P11C_RCUR *c, const uint8_t *msg, size_t len, uint8_t type);
/* Reads n vec() fields of at most P11C_MAX_FIELD bytes that end the message. */
p11c_err p11c_hs_fields(P11C_RCUR *c, P11C_FIELD *f, size_t n);
/* "P11C" || u8(1) || u8(suite) || which: the start of every signed input. */
void p11c_tbs_label(P11C_WBUF *w, uint8_t suite, char which);
/* Verifies a handshake signature of the peer's key with its own kind. */
p11c_err p11c_session_verify(P11C_SESSION *s, const P11C_WBUF *tbs, const uint8_t *sig,
                             size_t siglen);
/* Adds a built handshake message to the transcript and queues it (takes msg->buf). */
p11c_err p11c_hs_send(P11C_SESSION *s, P11C_WBUF *msg);

/* hello.c, reply.c, confirm.c, finish.c: write builds and queues; read consumes. */
p11c_err p11c_hello_write(P11C_SESSION *s);
p11c_err p11c_hello_read(P11C_SESSION *s, const uint8_t *msg, size_t len);
p11c_err p11c_reply_write(P11C_SESSION *s);
p11c_err p11c_reply_read(P11C_SESSION *s, const uint8_t *msg, size_t len);
p11c_err p11c_confirm_write(P11C_SESSION *s);
p11c_err p11c_confirm_read(P11C_SESSION *s, const uint8_t *msg, size_t len);
/* Confirm_B over the transcript HELLO || REPLY || CONFIRM. */
p11c_err p11c_confirm_b(P11C_SESSION *s, uint8_t out[P11C_MAC_LEN]);
p11c_err p11c_finish_write(P11C_SESSION *s, const uint8_t confirm_b[P11C_MAC_LEN]);
p11c_err p11c_finish_read(P11C_SESSION *s, const uint8_t *msg, size_t len);

/* channel.c: records after the handshake. */
p11c_err p11c_channel_recv(P11C_SESSION *s, const uint8_t *msg, size_t len);

#pragma GCC visibility pop

#endif
