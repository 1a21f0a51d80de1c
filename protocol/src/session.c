/*
 * The session: configuration, the handshake state table, the output and
 * event queues, and the helpers the message files share.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "session.h"

typedef p11c_err (*read_fn)(P11C_SESSION *s, const uint8_t *msg, size_t len);

/* Which message each handshake state accepts, who reads it, and what follows. */
static const struct {
    p11c_state state;
    uint8_t expect;
    read_fn read;
    p11c_state next;
} handshake_table[] = {
    {ST_WAIT_HELLO, P11C_MSG_HELLO, p11c_hello_read, ST_WAIT_CONFIRM},
    {ST_WAIT_REPLY, P11C_MSG_REPLY, p11c_reply_read, ST_WAIT_FINISH},
    {ST_WAIT_CONFIRM, P11C_MSG_CONFIRM, p11c_confirm_read, ST_ESTABLISHED},
    {ST_WAIT_FINISH, P11C_MSG_FINISH, p11c_finish_read, ST_ESTABLISHED},
};

static char *dup_or_null(const char *str, int *ok)
{
    char *d;

    if (str == NULL)
        return NULL;
    d = OPENSSL_strdup(str);
    if (d == NULL)
        *ok = 0;
    return d;
}

P11C_SESSION *p11c_session_new(const P11C_CONFIG *cfg, p11c_err *err)
{
    p11c_err ret = P11C_ERR_ARG;
    P11C_SESSION *s = NULL;
    EVP_MD *md = NULL;
    int ok = 1;

    if (cfg == NULL || cfg->key == NULL || cfg->identity == NULL ||
        (cfg->role != P11C_INITIATOR && cfg->role != P11C_RESPONDER) ||
        (cfg->policy != P11C_POLICY_STRICT && cfg->policy != P11C_POLICY_WINDOW))
        goto end;
    if (!p11c_identity_valid((const uint8_t *)cfg->identity, strlen(cfg->identity)) ||
        (cfg->expected_peer != NULL &&
         !p11c_identity_valid((const uint8_t *)cfg->expected_peer, strlen(cfg->expected_peer)))) {
        ret = P11C_ERR_IDENTITY;
        goto end;
    }
    ret = P11C_ERR_MEMORY;
    s = OPENSSL_zalloc(sizeof(*s));
    if (s == NULL)
        goto end;
    s->role = cfg->role;
    s->libctx = cfg->libctx;
    s->propq = dup_or_null(cfg->propq, &ok);
    s->sk_propq = dup_or_null(cfg->session_key_propq, &ok);
    s->identity = dup_or_null(cfg->identity, &ok);
    s->expected_peer = dup_or_null(cfg->expected_peer, &ok);
    if (!ok)
        goto end;
    s->idlen = strlen(s->identity);
    s->key = cfg->key;
    s->trust = cfg->trust;
    s->known_only = cfg->known_only != 0;
    s->policy = cfg->policy;
    s->text_transport = cfg->text_transport != 0;
    s->sk_fn = cfg->session_key_fn;
    s->sk_arg = cfg->session_key_arg;
    s->my_dir = cfg->role == P11C_INITIATOR ? P11C_DIR_ALICE : P11C_DIR_BOB;
    s->state = cfg->role == P11C_INITIATOR ? ST_INIT : ST_WAIT_HELLO;
    ret = p11c_pub_der(cfg->key, &s->own_pub, &s->own_pub_len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_suite_init(s, cfg->suite);
    if (ret != P11C_OK)
        goto end;
    ret = P11C_ERR_CRYPTO;
    md = EVP_MD_fetch(s->libctx, "SHA256", s->propq);
    s->transcript = EVP_MD_CTX_new();
    if (md == NULL || s->transcript == NULL || !EVP_DigestInit_ex2(s->transcript, md, NULL))
        goto end;
    ret = P11C_OK;
end:
    EVP_MD_free(md);
    if (ret != P11C_OK) {
        p11c_session_free(s);
        s = NULL;
    }
    if (err != NULL)
        *err = ret;
    return s;
}

/* Everything secret or handshake-only; called on failure, at the end and by free. */
static void wipe_secrets(P11C_SESSION *s)
{
    EVP_PKEY_free(s->S);
    s->S = NULL;
    EVP_MD_CTX_free(s->transcript);
    s->transcript = NULL;
    if (s->rec_ready)
        p11c_rec_cleanup(&s->rec);
    s->rec_ready = 0;
}

void p11c_session_free(P11C_SESSION *s)
{
    if (s == NULL)
        return;
    wipe_secrets(s);
    while (s->out_head != NULL) {
        OUT_MSG *o = s->out_head;
        s->out_head = o->next;
        OPENSSL_free(o->buf);
        OPENSSL_free(o);
    }
    OPENSSL_free(s->out_spare);
    while (s->ev_head != NULL) {
        EV_NODE *e = s->ev_head;
        s->ev_head = e->next;
        p11c_event_clear(&e->ev);
        OPENSSL_free(e);
    }
    EVP_PKEY_free(s->peer_key);
    OPENSSL_free(s->own_pub);
    OPENSSL_free(s->s_pub);
    OPENSSL_free(s->peer_pub);
    OPENSSL_free(s->enc_sec);
    OPENSSL_free(s->propq);
    OPENSSL_free(s->sk_propq);
    OPENSSL_free(s->identity);
    OPENSSL_free(s->expected_peer);
    OPENSSL_clear_free(s, sizeof(*s));
}

p11c_err p11c_session_event(P11C_SESSION *s, const P11C_EVENT *ev)
{
    EV_NODE *n = OPENSSL_zalloc(sizeof(*n));

    if (n == NULL) {
        OPENSSL_clear_free(ev->data, ev->len);
        return P11C_ERR_MEMORY;
    }
    n->ev = *ev;
    if (s->ev_tail != NULL)
        s->ev_tail->next = n;
    else
        s->ev_head = n;
    s->ev_tail = n;
    return P11C_OK;
}

p11c_err p11c_session_fail(P11C_SESSION *s, p11c_err err)
{
    P11C_EVENT ev;

    if (s->state == ST_FAILED)
        return P11C_ERR_FAILED;
    wipe_secrets(s);
    s->state = ST_FAILED;
    s->err = err;
    memset(&ev, 0, sizeof(ev));
    ev.type = P11C_EV_ERROR;
    ev.error = err;
    if ((err == P11C_ERR_TRUST_MISMATCH || err == P11C_ERR_UNKNOWN_PEER) && s->peer_idlen > 0) {
        /* Who was refused, so that the user can be told. */
        memcpy(ev.peer_id, s->peer_id, s->peer_idlen);
        memcpy(ev.fp, s->peer_fp, P11C_FP_LEN);
        p11c_fingerprint_short(s->peer_fp, ev.short_fp);
        ev.trust = s->trust_res;
    }
    (void)p11c_session_event(s, &ev);
    /* OpenSSL's queue is left as the failing operation left it: on
     * P11C_ERR_CRYPTO it is what says why (a token's CKR, for instance). */
    return err;
}

p11c_err p11c_session_queue(P11C_SESSION *s, uint8_t *msg, size_t len)
{
    OUT_MSG *o = s->out_spare;

    if (o != NULL)
        s->out_spare = NULL;
    else if ((o = OPENSSL_malloc(sizeof(*o))) == NULL) {
        OPENSSL_free(msg);
        return P11C_ERR_MEMORY;
    }
    o->next = NULL;
    o->buf = msg;
    o->len = len;
    if (s->out_tail != NULL)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    return P11C_OK;
}

p11c_err p11c_session_established_event(P11C_SESSION *s)
{
    P11C_EVENT ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = P11C_EV_ESTABLISHED;
    memcpy(ev.peer_id, s->peer_id, s->peer_idlen);
    memcpy(ev.fp, s->peer_fp, P11C_FP_LEN);
    p11c_fingerprint_short(s->peer_fp, ev.short_fp);
    ev.trust = s->trust_res;
    /* The transcript hash is of no further use once both confirmations are done. */
    EVP_MD_CTX_free(s->transcript);
    s->transcript = NULL;
    return p11c_session_event(s, &ev);
}

p11c_err p11c_session_peer_check(P11C_SESSION *s, const uint8_t *pub, size_t publen,
                                 const uint8_t *id, size_t idlen)
{
    p11c_err ret = p11c_fingerprint_der(s->libctx, s->propq, pub, publen, s->peer_fp);

    if (ret != P11C_OK)
        return ret;
    /* The claimed identity is kept even when refused: to name a peer that is
     * refused, and a rejection over a text transport (section 9.1). */
    memcpy(s->peer_id, id, idlen);
    s->peer_idlen = idlen;
    s->trust_res = p11c_trust_check(s->trust, id, idlen, s->peer_fp);
    if (s->trust_res == P11C_MISMATCH)
        return P11C_ERR_TRUST_MISMATCH;
    if (s->trust_res == P11C_UNKNOWN && s->known_only)
        return P11C_ERR_UNKNOWN_PEER;
    /* Not the peer asked for, trusted or not: as if unknown under known-only. */
    if (s->expected_peer != NULL &&
        (s->trust_res != P11C_TRUSTED || strlen(s->expected_peer) != idlen ||
         memcmp(s->expected_peer, id, idlen) != 0))
        return P11C_ERR_UNKNOWN_PEER;
    s->peer_pub = OPENSSL_memdup(pub, publen);
    if (s->peer_pub == NULL)
        return P11C_ERR_MEMORY;
    s->peer_pub_len = publen;
    return P11C_OK;
}

p11c_err p11c_session_keys(P11C_SESSION *s, uint8_t sec[P11C_SEC_LEN])
{
    uint8_t enc[P11C_KEY_LEN], mac[P11C_KEY_LEN];
    p11c_err ret = p11c_kdf(s->libctx, s->propq, sec, enc, mac);

    /* Sec is erased as soon as both keys exist. */
    OPENSSL_cleanse(sec, P11C_SEC_LEN);
    if (ret == P11C_OK)
        ret = p11c_rec_init(&s->rec, s->libctx, s->propq, enc, mac);
    OPENSSL_cleanse(enc, sizeof(enc));
    OPENSSL_cleanse(mac, sizeof(mac));
    if (ret != P11C_OK)
        return ret;
    s->rec_ready = 1;
    if (s->hooks.open_mode != P11C_OPEN_AUTO)
        p11c_rec_set_open_mode(&s->rec, s->hooks.open_mode);
    return P11C_OK;
}

p11c_err p11c_session_sign(P11C_SESSION *s, const uint8_t *tbs, size_t len, const uint8_t *hook,
                           size_t hooklen, uint8_t **sig, size_t *siglen)
{
    if (hook != NULL) {
        *sig = OPENSSL_memdup(hook, hooklen);
        *siglen = hooklen;
        return *sig == NULL ? P11C_ERR_MEMORY : P11C_OK;
    }
    return p11c_sig_sign(s->libctx, s->propq, s->key, tbs, len, sig, siglen);
}

p11c_err p11c_session_verify(P11C_SESSION *s, const P11C_WBUF *tbs, const uint8_t *sig,
                             size_t siglen)
{
    return p11c_sig_verify(s->libctx, s->propq, s->peer_key, tbs->buf, tbs->len, sig, siglen);
}

p11c_err p11c_session_transcript(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    if (s->transcript == NULL || !EVP_DigestUpdate(s->transcript, msg, len))
        return P11C_ERR_CRYPTO;
    return P11C_OK;
}

p11c_err p11c_session_transcript_peek(P11C_SESSION *s, const uint8_t *extra, size_t len,
                                      uint8_t digest[32])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;

    if (c == NULL || s->transcript == NULL || !EVP_MD_CTX_copy_ex(c, s->transcript) ||
        (len > 0 && !EVP_DigestUpdate(c, extra, len)) || !EVP_DigestFinal_ex(c, digest, &n) ||
        n != 32)
        goto end;
    ret = P11C_OK;
end:
    EVP_MD_CTX_free(c);
    return ret;
}

p11c_err p11c_hs_open(P11C_RCUR *c, const uint8_t *msg, size_t len, uint8_t type)
{
    uint8_t version, got;

    p11c_rcur_init(c, msg, len);
    if (!p11c_rcur_u8(c, &version) || !p11c_rcur_u8(c, &got))
        return P11C_ERR_DECODE;
    if (version != P11C_VERSION)
        return P11C_ERR_VERSION;
    return got == type ? P11C_OK : P11C_ERR_TYPE;
}

p11c_err p11c_hs_fields(P11C_RCUR *c, P11C_FIELD *f, size_t n)
{
    p11c_err ret;
    size_t i;

    for (i = 0; i < n; i++) {
        ret = p11c_rcur_vec(c, P11C_MAX_FIELD, &f[i].p, &f[i].len);
        if (ret != P11C_OK)
            return ret;
    }
    return c->left == 0 ? P11C_OK : P11C_ERR_DECODE;
}

void p11c_tbs_label(P11C_WBUF *w, uint8_t suite, char which)
{
    p11c_wbuf_bytes(w, "P11C", 4);
    p11c_wbuf_u8(w, P11C_VERSION);
    p11c_wbuf_u8(w, suite);
    p11c_wbuf_u8(w, (uint8_t)which);
}

p11c_err p11c_hs_send(P11C_SESSION *s, P11C_WBUF *msg)
{
    p11c_err ret;

    if (msg->bad)
        return P11C_ERR_MEMORY;
    ret = p11c_session_transcript(s, msg->buf, msg->len);
    if (ret != P11C_OK)
        return ret;
    ret = p11c_session_queue(s, msg->buf, msg->len);
    memset(msg, 0, sizeof(*msg)); /* the queue owns the buffer, or has freed it */
    return ret;
}

p11c_err p11c_session_start(P11C_SESSION *s)
{
    p11c_err ret;

    if (s == NULL)
        return P11C_ERR_ARG;
    if (s->state == ST_FAILED)
        return P11C_ERR_FAILED;
    if (s->role == P11C_RESPONDER)
        return s->state == ST_WAIT_HELLO ? P11C_OK : P11C_ERR_STATE;
    if (s->state != ST_INIT)
        return P11C_ERR_STATE;
    ret = p11c_hello_write(s);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);
    s->state = ST_WAIT_REPLY;
    return P11C_OK;
}

static P11C_SESSION *session_dup(const P11C_SESSION *s);

/* Rejections of section 4 and 7 that a third party in a chat room can cause
 * with a line of its own; anything else (memory, our own key) is our failure. */
static int droppable(p11c_err e)
{
    switch (e) {
    case P11C_ERR_DECODE:
    case P11C_ERR_VERSION:
    case P11C_ERR_TYPE:
    case P11C_ERR_SUITE:
    case P11C_ERR_FIELD_SIZE:
    case P11C_ERR_KEY:
    case P11C_ERR_IDENTITY:
    case P11C_ERR_SIGNATURE:
    case P11C_ERR_SECRET:
    case P11C_ERR_CONFIRM:
    case P11C_ERR_TRUST_MISMATCH:
    case P11C_ERR_UNKNOWN_PEER:
    case P11C_ERR_EARLY_RECORD:
        return 1;
    default:
        return 0;
    }
}

/* A dropped handshake message: reported, with who it claimed to be when it
 * was refused on trust. */
static p11c_err reject_event(P11C_SESSION *s, p11c_err why, const P11C_SESSION *tried)
{
    P11C_EVENT ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = P11C_EV_REJECTED;
    ev.error = why;
    if (tried != NULL && (why == P11C_ERR_TRUST_MISMATCH || why == P11C_ERR_UNKNOWN_PEER)) {
        memcpy(ev.peer_id, tried->peer_id, tried->peer_idlen);
        memcpy(ev.fp, tried->peer_fp, P11C_FP_LEN);
        p11c_fingerprint_short(tried->peer_fp, ev.short_fp);
        ev.trust = tried->trust_res;
    }
    return p11c_session_event(s, &ev);
}

/* s takes over the state of `d` (a copy that read a message), keeping its own
 * queued output and events in front of d's; d is freed with s's old state. */
static void adopt(P11C_SESSION *s, P11C_SESSION *d)
{
    OUT_MSG *oh = s->out_head, *ot = s->out_tail;
    EV_NODE *eh = s->ev_head, *et = s->ev_tail;
    P11C_SESSION tmp;

    s->out_head = s->out_tail = NULL;
    s->ev_head = s->ev_tail = NULL;
    memcpy(&tmp, s, sizeof(tmp));
    memcpy(s, d, sizeof(tmp));
    memcpy(d, &tmp, sizeof(tmp));
    OPENSSL_cleanse(&tmp, sizeof(tmp));
    if (oh != NULL) {
        ot->next = s->out_head;
        s->out_head = oh;
        if (s->out_tail == NULL)
            s->out_tail = ot;
    }
    if (eh != NULL) {
        et->next = s->ev_head;
        s->ev_head = eh;
        if (s->ev_tail == NULL)
            s->ev_tail = et;
    }
    p11c_session_free(d);
}

/*
 * Section 9.1: over a text transport the message is read by a copy of the
 * session. Accepted, the session becomes the copy; rejected, the copy is
 * dropped with everything the message did to it (S, which a failed
 * decryption destroys, included), and the session waits on as it was.
 */
static p11c_err handshake_text(P11C_SESSION *s, size_t i, p11c_err early, const uint8_t *msg,
                               size_t len)
{
    P11C_SESSION *d;
    p11c_err ret;

    if (early != P11C_OK)
        return reject_event(s, early, NULL);
    d = session_dup(s);
    if (d == NULL)
        return p11c_session_fail(s, P11C_ERR_MEMORY);
    ERR_set_mark();
    ret = handshake_table[i].read(d, msg, len);
    if (ret == P11C_OK) {
        ERR_clear_last_mark();
        d->state = handshake_table[i].next;
        adopt(s, d);
        return P11C_OK;
    }
    if (!droppable(ret)) {
        ERR_clear_last_mark();
        p11c_session_free(d);
        return p11c_session_fail(s, ret);
    }
    /* Someone else's line: what it raised in OpenSSL's queue goes with it. */
    ERR_pop_to_mark();
    ret = reject_event(s, ret, d);
    p11c_session_free(d);
    return ret == P11C_OK ? P11C_OK : p11c_session_fail(s, ret);
}

p11c_err p11c_session_recv(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    p11c_err ret, early = P11C_OK;
    size_t i, n = sizeof(handshake_table) / sizeof(handshake_table[0]);

    if (s == NULL || (msg == NULL && len > 0))
        return P11C_ERR_ARG;
    switch (s->state) {
    case ST_FAILED:
        return P11C_ERR_FAILED;
    case ST_INIT:
    case ST_DONE:
        return P11C_ERR_STATE;
    case ST_ESTABLISHED:
        return p11c_channel_recv(s, msg, len);
    default:
        break;
    }
    for (i = 0; i < n; i++)
        if (handshake_table[i].state == s->state)
            break;
    if (len < 2)
        early = P11C_ERR_DECODE;
    else if (msg[0] != P11C_VERSION)
        early = P11C_ERR_VERSION;
    else if (msg[1] >= P11C_REC_DATA && msg[1] <= P11C_REC_CLOSE)
        early = P11C_ERR_EARLY_RECORD;
    else if (i == n || msg[1] != handshake_table[i].expect)
        early = P11C_ERR_TYPE;
    if (s->text_transport && i < n)
        return handshake_text(s, i, early, msg, len);
    /* Any rejection during the handshake ends the session; nothing is sent back. */
    if (early != P11C_OK)
        return p11c_session_fail(s, early);
    ret = handshake_table[i].read(s, msg, len);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);
    s->state = handshake_table[i].next;
    return P11C_OK;
}

p11c_err p11c_session_transport_end(P11C_SESSION *s)
{
    P11C_EVENT ev;

    if (s == NULL)
        return P11C_ERR_ARG;
    if (s->state == ST_FAILED)
        return P11C_ERR_FAILED;
    if (s->state == ST_DONE && s->close_recv)
        return P11C_OK;
    if (s->state != ST_DONE) {
        memset(&ev, 0, sizeof(ev));
        ev.type = P11C_EV_TRUNCATED;
        s->state = ST_DONE;
        wipe_secrets(s);
        return p11c_session_event(s, &ev);
    }
    return P11C_OK;
}

int p11c_session_pop_output(P11C_SESSION *s, uint8_t **msg, size_t *len)
{
    OUT_MSG *o;

    if (s == NULL || msg == NULL || len == NULL || s->out_head == NULL)
        return 0;
    o = s->out_head;
    s->out_head = o->next;
    if (s->out_head == NULL)
        s->out_tail = NULL;
    *msg = o->buf;
    *len = o->len;
    if (s->out_spare == NULL)
        s->out_spare = o; /* a sender pops as it queues: one node serves */
    else
        OPENSSL_free(o);
    return 1;
}

int p11c_session_next_event(P11C_SESSION *s, P11C_EVENT *ev)
{
    EV_NODE *n;

    if (s == NULL || ev == NULL || s->ev_head == NULL)
        return 0;
    n = s->ev_head;
    s->ev_head = n->next;
    if (s->ev_head == NULL)
        s->ev_tail = NULL;
    *ev = n->ev;
    OPENSSL_free(n);
    return 1;
}

void p11c_event_clear(P11C_EVENT *ev)
{
    if (ev == NULL)
        return;
    OPENSSL_clear_free(ev->data, ev->len);
    memset(ev, 0, sizeof(*ev));
}

int p11c_session_established(const P11C_SESSION *s)
{
    return s != NULL && s->state == ST_ESTABLISHED;
}

int p11c_session_closed(const P11C_SESSION *s)
{
    return s != NULL && (s->state == ST_DONE || s->state == ST_FAILED);
}

p11c_err p11c_session_error(const P11C_SESSION *s)
{
    if (s == NULL)
        return P11C_ERR_ARG;
    return s->state == ST_FAILED ? s->err : P11C_OK;
}

uint64_t p11c_session_acked(const P11C_SESSION *s)
{
    return s == NULL ? 0 : s->peer_ack;
}

int p11c_session_suite(const P11C_SESSION *s)
{
    return s == NULL || s->kex == NULL ? 0 : s->kex->suite;
}

void p11c_session_set_test_hooks(P11C_SESSION *s, const P11C_TEST_HOOKS *h)
{
    s->hooks = *h;
    s->iv_used = 0;
    if (s->rec_ready && h->open_mode != P11C_OPEN_AUTO)
        p11c_rec_set_open_mode(&s->rec, h->open_mode);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len, int *ok)
{
    uint8_t *d;

    if (p == NULL)
        return NULL;
    d = OPENSSL_memdup(p, len);
    if (d == NULL)
        *ok = 0;
    return d;
}

static EVP_PKEY *pkey_ref(EVP_PKEY *k, int *ok)
{
    if (k == NULL)
        return NULL;
    if (!EVP_PKEY_up_ref(k)) {
        *ok = 0;
        return NULL;
    }
    return k;
}

static EVP_CIPHER_CTX *cipher_ctx_dup(const EVP_CIPHER_CTX *c, int *ok)
{
    EVP_CIPHER_CTX *d;

    if (c == NULL)
        return NULL;
    d = EVP_CIPHER_CTX_new();
    if (d == NULL || !EVP_CIPHER_CTX_copy(d, c)) {
        EVP_CIPHER_CTX_free(d);
        *ok = 0;
        return NULL;
    }
    return d;
}

/* A copy of s that shares nothing with it, without s's queued output and
 * events: what reads a handshake message over a text transport. */
static P11C_SESSION *session_dup(const P11C_SESSION *s)
{
    P11C_SESSION *d;
    int ok = 1;

    d = OPENSSL_memdup(s, sizeof(*s));
    if (d == NULL)
        return NULL;
    /* Nothing owned is shared: every owned pointer (a new one in session.h
     * belongs here too) is replaced before anything can fail. */
    d->out_head = d->out_tail = NULL;
    d->ev_head = d->ev_tail = NULL;
    d->propq = d->sk_propq = d->identity = d->expected_peer = NULL;
    d->own_pub = d->s_pub = d->peer_pub = d->enc_sec = NULL;
    d->S = d->peer_key = NULL;
    d->transcript = NULL;
    d->out_spare = NULL;
    memset(&d->rec, 0, sizeof(d->rec));
    d->rec_ready = 0;
    /* Fresh record IVs: a copy never reuses the ones its original drew. */
    OPENSSL_cleanse(d->iv_pool, sizeof(d->iv_pool));
    d->iv_left = 0;

    d->propq = dup_or_null(s->propq, &ok);
    d->sk_propq = dup_or_null(s->sk_propq, &ok);
    d->identity = dup_or_null(s->identity, &ok);
    d->expected_peer = dup_or_null(s->expected_peer, &ok);
    d->own_pub = dup_bytes(s->own_pub, s->own_pub_len, &ok);
    d->s_pub = dup_bytes(s->s_pub, s->s_pub_len, &ok);
    d->peer_pub = dup_bytes(s->peer_pub, s->peer_pub_len, &ok);
    d->enc_sec = dup_bytes(s->enc_sec, s->enc_sec_len, &ok);
    d->S = pkey_ref(s->S, &ok);
    d->peer_key = pkey_ref(s->peer_key, &ok);
    if (s->transcript != NULL && ((d->transcript = EVP_MD_CTX_new()) == NULL ||
                                  !EVP_MD_CTX_copy_ex(d->transcript, s->transcript)))
        ok = 0;
    if (s->rec_ready) {
        d->rec_ready = 1;
        d->rec.mode = s->rec.mode;
        d->rec.enc = cipher_ctx_dup(s->rec.enc, &ok);
        d->rec.dec_cfb = cipher_ctx_dup(s->rec.dec_cfb, &ok);
        d->rec.dec_ecb = cipher_ctx_dup(s->rec.dec_ecb, &ok);
        if (s->rec.mac != NULL && (d->rec.mac = EVP_MAC_CTX_dup(s->rec.mac)) == NULL)
            ok = 0;
    }
    if (!ok) {
        p11c_session_free(d);
        d = NULL;
    }
    return d;
}

P11C_SESSION *p11c_session_test_dup(const P11C_SESSION *s)
{
    if (s == NULL || s->out_head != NULL || s->ev_head != NULL)
        return NULL;
    return session_dup(s);
}

void p11c_session_test_set_send_seq(P11C_SESSION *s, uint64_t seq)
{
    s->send_seq = seq;
}
