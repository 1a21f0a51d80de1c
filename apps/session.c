/*
 * The session as the user sees it, whatever carries it (TCP or a chat
 * program): what is shown for each event, and the count of our messages the
 * peer confirmed.
 */
#include "app.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "p11chat_provider.h"

volatile int app_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    /* A second interrupt ends at once; the first closes cleanly. */
    if (app_interrupted)
        _exit(130);
    app_interrupted = 1;
}

void app_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int app_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* S in the token, on the token of our long-term key when that is one: RSA-2048
 * for suite 0x01, P-256 for suite 0x02. */
static EVP_PKEY *token_session_key(void *arg)
{
    APP_CHAT *c = arg;
    EVP_PKEY *pkey = NULL;
    const APP_KEYTYPE *t =
        app_keytype_find(p11c_session_suite(c->s) == P11C_SUITE_2 ? "ec:p256" : "rsa:2048");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(c->ossl.libctx, t->alg, P11CHAT_PROVIDER_PROPQ);
    size_t bits = 0;
    int persistent = 0;
    char usage[] = "decrypt"; /* S only ever decrypts Sec */
    OSSL_PARAM params[] = {
        app_keytype_param(t, &bits),
        OSSL_PARAM_int(P11CHAT_PKEY_PARAM_PERSISTENT, &persistent),
        OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_USAGE, usage, 0),
        OSSL_PARAM_END,
        OSSL_PARAM_END,
    };
    if (c->token_uri != NULL)
        params[3] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_URI, c->token_uri, 0);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_params(ctx, params) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0) {
        app_ossl_msg("cannot make the session key in the token");
        c->reported = 1;
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int app_chat_init(APP_CHAT *c, const APP_CHAT_OPTS *o, p11c_role role)
{
    memset(c, 0, sizeof(*c));
    c->role = role;
    c->verbose = o->verbose;
    c->raw = o->raw;
    c->accept_unknown = o->accept_unknown;
    c->tty = isatty(STDIN_FILENO);
    c->status = APP_FAIL;
    if (app_ossl_init(&c->ossl) != 0)
        return -1;
    c->ossl.pin_source = o->pin_source;
    /* Many tokens (SoftHSM2 among them) do OAEP only with SHA-1. Decrypting
     * Sec with a session key S made in the token then needs the provider's
     * fallback (raw RSA in the token, OAEP decoded on the host); this costs
     * nothing here, as Sec comes to the host anyway to derive the keys.
     * The provider reads this when it is loaded: set it first. */
    if (o->token_session && getenv("P11CHAT_OAEP_FALLBACK") == NULL)
        setenv("P11CHAT_OAEP_FALLBACK", "yes", 1);

    const char *path = app_trust_path(o->trust);
    if (path == NULL || (c->trust = app_trust_load(path)) == NULL)
        return -1;
    c->trust_path = path;
    c->peer = o->peer;
    c->key = app_key_load(&c->ossl, o->key, 1);
    if (c->key == NULL || app_key_check(&c->ossl, c->key, o->key) != 0)
        return -1;
    if (o->token_session && app_ossl_need_provider(&c->ossl) != 0)
        return -1;

    P11C_CONFIG cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.role = role;
    cfg.libctx = c->ossl.libctx;
    /* With the provider loaded, prefer the default provider for the work a
     * token has no reason to do (peer keys, HMAC, AES); token keys still
     * sign and decrypt in the token. */
    cfg.propq = c->ossl.provider_loaded ? "?provider=default" : NULL;
    cfg.key = c->key;
    cfg.identity = o->id;
    cfg.trust = c->trust;
    cfg.known_only = o->known_only;
    cfg.expected_peer = o->peer;
    cfg.policy = o->text ? P11C_POLICY_WINDOW : (p11c_policy)o->policy;
    cfg.text_transport = o->text;
    cfg.suite = o->suite;
    cfg.session_key_propq = "provider=default";
    if (o->token_session) {
        if (app_is_uri(o->key) && (c->token_uri = app_uri_token(o->key)) == NULL)
            return -1;
        cfg.session_key_fn = token_session_key;
        cfg.session_key_arg = c;
    }
    c->cfg = cfg;
    c->s = app_chat_session_new(c);
    return c->s == NULL ? -1 : 0;
}

P11C_SESSION *app_chat_session_new(APP_CHAT *c)
{
    p11c_err e;
    P11C_SESSION *s = p11c_session_new(&c->cfg, &e);
    if (s == NULL)
        app_ossl_msg("cannot start the session: %s", p11c_strerror(e));
    return s;
}

void app_chat_free(APP_CHAT *c)
{
    p11c_session_free(c->s);
    p11c_trust_free(c->trust);
    EVP_PKEY_free(c->key);
    free(c->token_uri);
    free(c->sender);
    app_buf_free(&c->held);
    free(c->ctl);
    if (c->ossl.libctx != NULL)
        app_ossl_free(&c->ossl);
    memset(c, 0, sizeof(*c));
}

static int note_ctl(APP_CHAT *c, uint64_t seq)
{
    if (c->nctl == c->capctl) {
        size_t cap = c->capctl ? 2 * c->capctl : 16;
        uint64_t *n = realloc(c->ctl, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        c->ctl = n;
        c->capctl = cap;
    }
    c->ctl[c->nctl++] = seq;
    return 0;
}

uint64_t app_chat_confirmed(const APP_CHAT *c)
{
    uint64_t acked = p11c_session_acked(c->s);
    uint64_t ctl = 0;
    for (size_t i = 0; i < c->nctl && c->ctl[i] < acked; i++)
        ctl++;
    return acked - ctl;
}

void app_line_too_long(size_t len)
{
    app_msg("line of %zu bytes not sent: a message holds at most %d bytes", len, P11C_MAX_DATA);
}

int app_chat_send_line(APP_CHAT *c, const uint8_t *line, size_t len)
{
    if (c->asking) {
        app_held_answer(c, line, len);
        return 0;
    }
    if (c->max_data != 0 && len > c->max_data) {
        /* Refused before it becomes a record: no number is spent on it. */
        app_msg("line of %zu bytes not sent: with %s a message holds at most %zu bytes", len,
                c->max_why != NULL ? c->max_why : "this line limit", c->max_data);
        return -1;
    }
    if (!c->established)
        return app_held_add(c, line, len);
    p11c_err e = p11c_session_send_data(c->s, line, len);
    if (e != P11C_OK) {
        if (e == P11C_ERR_LIMIT && len > P11C_MAX_DATA)
            app_line_too_long(len);
        else
            app_ossl_msg("message not sent: %s", p11c_strerror(e));
        app_chat_events(c);
        return -1;
    }
    c->records++;
    c->data_sent++;
    c->rx_unacked = 0;
    return 0;
}

void app_chat_ack(APP_CHAT *c)
{
    if (c->rx_unacked == 0 || c->close_sent || c->finished || !c->established)
        return;
    if (p11c_session_send_ack(c->s) != P11C_OK) {
        app_chat_events(c);
        return;
    }
    note_ctl(c, c->records);
    c->records++;
    c->rx_unacked = 0;
}

int app_chat_close(APP_CHAT *c)
{
    if (c->close_sent || c->finished)
        return 0;
    if (!c->established) {
        /* Nothing to close yet: CLOSE follows the held lines once the
         * session is up. */
        c->close_wanted = 1;
        return 0;
    }
    if (c->asking)
        app_held_drop(c, "input ended before an answer");
    p11c_err e = p11c_session_send_close(c->s, NULL);
    if (e != P11C_OK) {
        app_msg("cannot send CLOSE: %s", p11c_strerror(e));
        app_chat_events(c);
        return -1;
    }
    note_ctl(c, c->records);
    c->records++;
    c->close_sent = 1;
    return 0;
}

void app_chat_recv(APP_CHAT *c, const uint8_t *msg, size_t len)
{
    if (c->finished)
        return;
    p11c_session_recv(c->s, msg, len);
    app_chat_events(c);
}

void app_chat_transport_end(APP_CHAT *c)
{
    if (c->finished)
        return;
    if (!c->established) {
        app_msg("the connection ended during the handshake (the peer may have refused us; "
                "its side says why)");
        app_suite_handshake_ended(c);
        c->finished = 1;
        c->status = APP_FAIL;
        return;
    }
    p11c_session_transport_end(c->s);
    app_chat_events(c);
    if (!c->finished) {
        /* The library reported nothing: still a truncated transport. */
        app_msg("the connection ended without CLOSE: the conversation may be truncated");
        c->finished = 1;
        c->status = APP_TRUNC;
    }
}

void app_chat_hs_rejected(APP_CHAT *c, const P11C_EVENT *ev)
{
    if ((ev->error == P11C_ERR_TRUST_MISMATCH || ev->error == P11C_ERR_UNKNOWN_PEER) &&
        ev->peer_id[0] != '\0') {
        if (ev->error == P11C_ERR_TRUST_MISMATCH)
            app_msg("WARNING: a handshake in the chat does not match the trust store:");
        app_show_refused(c, ev);
        app_msg("that handshake was dropped; still waiting for the peer");
    } else {
        app_msg("dropped a handshake message that is not from the peer: %s. Still waiting.",
                p11c_strerror(ev->error));
    }
}

/* One received message, one line: "alice> text", or the text alone (--raw). */
static void show_message(APP_CHAT *c, const P11C_EVENT *ev)
{
    char *text = app_escape(ev->data, ev->len), *line = NULL;
    const char *name = c->sender != NULL ? c->sender : "?";
    size_t n = 0;

    if (text != NULL) {
        line = malloc(strlen(name) + strlen(text) + 40);
        if (line != NULL && c->raw)
            n = (size_t)sprintf(line, "%s\n", text);
        else if (line != NULL && ev->late)
            n = (size_t)sprintf(line, "[late #%llu] %s> %s\n", (unsigned long long)ev->seq, name,
                                text);
        else if (line != NULL)
            n = (size_t)sprintf(line, "%s> %s\n", name, text);
    }
    if (line == NULL)
        app_msg("out of memory: a message from the peer is not shown");
    else if (app_write_all(STDOUT_FILENO, line, n) != 0) {
        app_msg("cannot write to standard output: %s", strerror(errno));
        c->finished = 1;
        c->status = APP_FAIL;
    }
    if (text != NULL)
        OPENSSL_cleanse(text, strlen(text));
    if (line != NULL)
        OPENSSL_cleanse(line, n);
    free(text);
    free(line);
}

/* A late record (window policy) was one reported missing: say it came. */
static void show_late(APP_CHAT *c, const P11C_EVENT *ev)
{
    if (!ev->late)
        return;
    if (c->missing > 0)
        c->missing--;
    app_msg("%s #%llu, reported missing, has arrived late%s (%llu still missing)",
            ev->type == P11C_EV_DATA ? "message" : "record", (unsigned long long)ev->seq,
            ev->type == P11C_EV_DATA && !c->raw ? ", shown marked [late]" : "",
            (unsigned long long)c->missing);
}

static void show_closed(APP_CHAT *c, const char *how)
{
    app_msg("%s; the peer confirmed %llu of the %llu messages we sent", how,
            (unsigned long long)app_chat_confirmed(c), (unsigned long long)c->data_sent);
}

void app_chat_events(APP_CHAT *c)
{
    P11C_EVENT ev;
    while (p11c_session_next_event(c->s, &ev)) {
        switch (ev.type) {
        case P11C_EV_ESTABLISHED: {
            char hex[2 * P11C_FP_LEN + 1];
            c->established = 1;
            free(c->sender);
            c->sender = app_sender_name(ev.peer_id);
            p11c_fingerprint_hex(ev.fp, hex);
            if (ev.trust == P11C_TRUSTED)
                app_status(p11c_trust_result_name(ev.trust), ev.peer_id, ev.short_fp,
                           "secure session");
            else
                app_status(p11c_trust_result_name(ev.trust), ev.peer_id, ev.short_fp,
                           "secure session, but check the fingerprint %s with the peer another "
                           "way, then 'p11chat trust add'",
                           hex);
            app_suite_established(c);
            app_held_release(c, &ev);
            break;
        }
        case P11C_EV_DATA:
            show_late(c, &ev);
            show_message(c, &ev);
            c->rx_unacked++;
            c->rx_last = app_now_ms();
            break;
        case P11C_EV_ACK:
            show_late(c, &ev);
            if (c->verbose)
                app_msg("the peer confirmed %llu of the %llu messages we sent",
                        (unsigned long long)app_chat_confirmed(c),
                        (unsigned long long)c->data_sent);
            break;
        case P11C_EV_MISSING:
            c->missing += ev.count;
            app_msg("%llu message(s) from the peer missing (from number %llu)",
                    (unsigned long long)ev.count, (unsigned long long)ev.seq);
            break;
        case P11C_EV_REJECTED:
            if (c->established)
                app_msg("rejected a message that is not from the peer: %s",
                        p11c_strerror(ev.error));
            else
                app_chat_hs_rejected(c, &ev);
            break;
        case P11C_EV_CLOSE:
            c->close_received = 1;
            if (ev.len > 0) {
                char *reason = app_escape(ev.data, ev.len);
                app_msg("the peer closed the session: %s", reason ? reason : "");
                free(reason);
            }
            if (!c->close_sent) {
                /* Our answering CLOSE is queued by the session itself. */
                if (!p11c_session_closed(c->s) && app_chat_close(c) != 0)
                    break;
                c->close_sent = 1;
                show_closed(c, "closed by the peer");
            } else {
                show_closed(c, "session closed");
            }
            c->finished = 1;
            c->status = APP_OK;
            break;
        case P11C_EV_TRUNCATED:
            app_msg("the connection ended without CLOSE: the conversation may be truncated "
                    "(the peer confirmed %llu of the %llu messages we sent)",
                    (unsigned long long)app_chat_confirmed(c), (unsigned long long)c->data_sent);
            c->finished = 1;
            c->status = APP_TRUNC;
            break;
        case P11C_EV_ERROR:
            if ((ev.error == P11C_ERR_TRUST_MISMATCH || ev.error == P11C_ERR_UNKNOWN_PEER) &&
                ev.peer_id[0] != '\0')
                app_show_refused(c, &ev);
            else if (c->reported)
                ERR_clear_error();
            else if (ERR_peek_error() != 0)
                app_ossl_msg("session failed: %s", p11c_strerror(ev.error));
            else
                app_msg("session failed: %s", p11c_strerror(ev.error));
            c->finished = 1;
            c->status = APP_FAIL;
            break;
        }
        p11c_event_clear(&ev);
    }
    if (!c->finished && p11c_session_error(c->s) != P11C_OK) {
        app_msg("session failed: %s", p11c_strerror(p11c_session_error(c->s)));
        c->finished = 1;
        c->status = APP_FAIL;
    }
}
