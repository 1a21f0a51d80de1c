/*
 * The record channel after the handshake (spec section 6): sending DATA,
 * ACK and CLOSE; receiving with the check order of the spec, the strict and
 * window sequence policies, acknowledgements and the closing exchange.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "session.h"

static p11c_err send_record(P11C_SESSION *s, uint8_t type, const uint8_t *m, size_t len)
{
    P11C_REC_HDR h;
    uint8_t iv[P11C_IV_LEN], *out = NULL;
    size_t outlen = 0;
    p11c_err ret;

    if (s->iv_used < s->hooks.n_ivs) {
        memcpy(iv, s->hooks.ivs + P11C_IV_LEN * s->iv_used++, P11C_IV_LEN);
    } else {
        if (s->iv_left == 0) {
            if (RAND_bytes_ex(s->libctx, s->iv_pool, sizeof(s->iv_pool), 0) != 1)
                return p11c_session_fail(s, P11C_ERR_CRYPTO);
            s->iv_left = sizeof(s->iv_pool) / P11C_IV_LEN;
        }
        s->iv_left--;
        memcpy(iv, s->iv_pool + P11C_IV_LEN * s->iv_left, P11C_IV_LEN);
        /* Not left behind in memory once used. */
        memset(s->iv_pool + P11C_IV_LEN * s->iv_left, 0, P11C_IV_LEN);
    }
    h.type = type;
    h.dir = s->my_dir;
    h.len = (uint32_t)len;
    h.seq = s->send_seq;
    h.ack = s->recv_ack;
    ret = p11c_rec_seal(&s->rec, &h, iv, m, &out, &outlen);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);
    ret = p11c_session_queue(s, out, outlen);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);
    s->send_seq++;
    return P11C_OK;
}

/* Sends are refused, without harm to the session, outside the established phase. */
static p11c_err can_send(const P11C_SESSION *s)
{
    if (s == NULL)
        return P11C_ERR_ARG;
    if (s->state == ST_FAILED)
        return P11C_ERR_FAILED;
    if (s->state != ST_ESTABLISHED || s->close_sent)
        return P11C_ERR_STATE;
    return P11C_OK;
}

p11c_err p11c_session_send_data(P11C_SESSION *s, const uint8_t *data, size_t len)
{
    p11c_err ret = can_send(s);

    if (ret != P11C_OK)
        return ret;
    if (data == NULL && len > 0)
        return P11C_ERR_ARG;
    /* The last number below 2^32 is kept for CLOSE. */
    if (len > P11C_MAX_DATA || s->send_seq >= P11C_SEQ_LIMIT - 1)
        return P11C_ERR_LIMIT;
    return send_record(s, P11C_REC_DATA, data, len);
}

p11c_err p11c_session_send_ack(P11C_SESSION *s)
{
    p11c_err ret = can_send(s);

    if (ret != P11C_OK)
        return ret;
    if (s->send_seq >= P11C_SEQ_LIMIT - 1)
        return P11C_ERR_LIMIT;
    return send_record(s, P11C_REC_ACK, NULL, 0);
}

p11c_err p11c_session_send_close(P11C_SESSION *s, const char *reason)
{
    p11c_err ret = can_send(s);
    size_t len = reason == NULL ? 0 : strlen(reason);

    if (ret != P11C_OK)
        return ret;
    if (len > P11C_MAX_CLOSE_REASON)
        return P11C_ERR_LIMIT;
    if (!p11c_close_reason_valid((const uint8_t *)reason, len))
        return P11C_ERR_ARG;
    ret = send_record(s, P11C_REC_CLOSE, (const uint8_t *)reason, len);
    if (ret == P11C_OK)
        s->close_sent = 1;
    return ret;
}

/* A record that fails a check: fatal under strict, reported under window. */
static p11c_err reject(P11C_SESSION *s, p11c_err why)
{
    P11C_EVENT ev;

    if (s->policy == P11C_POLICY_STRICT)
        return p11c_session_fail(s, why);
    memset(&ev, 0, sizeof(ev));
    ev.type = P11C_EV_REJECTED;
    ev.error = why;
    /* A rejection nobody hears about would look like silence: fail instead. */
    return p11c_session_event(s, &ev) == P11C_OK ? P11C_OK : p11c_session_fail(s, P11C_ERR_MEMORY);
}

/* Window: was `seq` (below recv_next) accepted already? */
static int window_seen(const P11C_SESSION *s, uint64_t seq)
{
    uint64_t age = s->recv_next - 1 - seq;

    if (age == 0)
        return 1;
    if (age > P11C_WINDOW)
        return 1; /* too old to tell: treated as seen */
    return (s->recv_bits >> (age - 1)) & 1;
}

static void window_mark(P11C_SESSION *s, uint64_t seq)
{
    if (seq >= s->recv_next) {
        if (s->recv_next > 0) {
            uint64_t d = seq - (s->recv_next - 1); /* >= 1: the old newest is now d back */
            s->recv_bits = d >= 64 ? 0 : s->recv_bits << d;
            if (d <= 64)
                s->recv_bits |= UINT64_C(1) << (d - 1);
        }
        s->recv_next = seq + 1;
    } else {
        s->recv_bits |= UINT64_C(1) << (s->recv_next - 1 - seq - 1);
    }
}

static p11c_err deliver(P11C_SESSION *s, const P11C_REC_HDR *h, uint8_t *m, int late)
{
    P11C_EVENT ev;
    p11c_err ret;

    memset(&ev, 0, sizeof(ev));
    ev.late = late;
    ev.seq = h->seq;
    ev.count = h->ack;
    ev.data = m;
    ev.len = m == NULL ? 0 : h->len;
    switch (h->type) {
    case P11C_REC_DATA:
        ev.type = P11C_EV_DATA;
        return p11c_session_event(s, &ev);
    case P11C_REC_ACK:
        ev.type = P11C_EV_ACK;
        return p11c_session_event(s, &ev);
    default:
        break;
    }
    /* CLOSE: report, answer with our own CLOSE unless sent, and end. */
    if (!p11c_close_reason_valid(m, ev.len)) {
        OPENSSL_clear_free(m, ev.len);
        return p11c_session_fail(s, P11C_ERR_DECODE);
    }
    ev.type = P11C_EV_CLOSE;
    ret = p11c_session_event(s, &ev);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);
    s->close_recv = 1;
    if (!s->close_sent) {
        ret = send_record(s, P11C_REC_CLOSE, NULL, 0);
        if (ret != P11C_OK)
            return ret;
        s->close_sent = 1;
    }
    s->state = ST_DONE;
    /* EncKey and MACKey are erased when the session ends. */
    p11c_rec_cleanup(&s->rec);
    s->rec_ready = 0;
    return P11C_OK;
}

p11c_err p11c_channel_recv(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    P11C_REC_HDR h;
    P11C_EVENT ev;
    p11c_err ret;
    uint8_t *m = NULL;
    uint64_t missing = 0;
    int newer;

    /* Length, version, type, reserved byte, direction, MAC: nothing before the
     * MAC is trusted, nothing of a failed record is decrypted. */
    ret = p11c_rec_parse(msg, len, &h);
    if (ret == P11C_OK && h.dir != (s->my_dir ^ 1))
        ret = P11C_ERR_DIRECTION;
    if (ret == P11C_OK)
        ret = p11c_rec_verify(&s->rec, msg, len);
    if (ret == P11C_ERR_CRYPTO)
        return p11c_session_fail(s, ret);
    if (ret != P11C_OK)
        return reject(s, ret);

    /* Authentic from here on: a peer that breaks the rules ends the session. */
    if (h.seq >= P11C_SEQ_LIMIT)
        return p11c_session_fail(s, P11C_ERR_LIMIT);
    newer = h.seq >= s->recv_next;
    if (s->policy == P11C_POLICY_STRICT) {
        if (h.seq < s->recv_next)
            return p11c_session_fail(s, P11C_ERR_REPLAY);
        if (h.seq > s->recv_next)
            return p11c_session_fail(s, P11C_ERR_SEQ);
    } else if (newer) {
        missing = h.seq - s->recv_next;
    } else if (window_seen(s, h.seq)) {
        return reject(s, P11C_ERR_REPLAY);
    }
    /* Acks never exceed what we sent and never go back (a late record under
     * the window policy naturally carries an older ack). */
    if (h.ack > s->send_seq || (newer && h.ack < s->peer_ack))
        return p11c_session_fail(s, P11C_ERR_ACK);

    ret = p11c_rec_decrypt(&s->rec, msg, &h, &m);
    if (ret != P11C_OK)
        return p11c_session_fail(s, ret);

    if (s->policy == P11C_POLICY_STRICT) {
        s->recv_next = h.seq + 1;
        s->recv_ack = s->recv_next;
    } else {
        window_mark(s, h.seq);
        /* ack counts the records received without a gap: a record lost for
         * good (fallen out of the window) holds it where it is. */
        while (s->recv_ack < s->recv_next && s->recv_next - 1 - s->recv_ack <= P11C_WINDOW &&
               window_seen(s, s->recv_ack))
            s->recv_ack++;
    }
    if (newer && h.ack > s->peer_ack)
        s->peer_ack = h.ack;

    if (missing > 0) {
        memset(&ev, 0, sizeof(ev));
        ev.type = P11C_EV_MISSING;
        ev.seq = h.seq - missing;
        ev.count = missing;
        ret = p11c_session_event(s, &ev);
        if (ret != P11C_OK) {
            OPENSSL_clear_free(m, h.len);
            return p11c_session_fail(s, ret);
        }
    }
    /* Accepted older than the newest: the reader must not take arrival
     * order for the order the peer wrote in. */
    ret = deliver(s, &h, m, !newer);
    if (ret != P11C_OK && s->state != ST_FAILED)
        return p11c_session_fail(s, ret);
    return ret;
}
