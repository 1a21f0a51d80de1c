/*
 * A session carried in the lines of a chat, whatever the chat is (a wrapped
 * chat program, an IRC server): armoring and pieces, lines that are not the
 * peer's, echoes, pacing, the handshake's deadline, ACKs that do not fill
 * the room, and the poll() loop over standard input and the transport. The
 * transports (wrap.c, irc.c) only frame lines and read their own protocol.
 */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define OUT_HIGH      (1u << 20) /* stdin waits while this much waits for the transport */
#define WAITING_EVERY 15000      /* ms between "waiting for" notes */
#define MIN_LINE      64         /* the shortest line that still carries a handshake */

int app_room_option(const char *cmd, int opt, const char *arg, APP_ROOM_OPTS *ro)
{
    switch (opt) {
    case 'I':
        ro->initiate = 1;
        return 1;
    case 'M':
        if (app_parse_uint(arg, 0, 1u << 24, &ro->max_line) != 0 ||
            (ro->max_line != 0 && ro->max_line < MIN_LINE))
            return app_usage(cmd, "--max-line must be 0 (no limit) or %d to %u bytes, not '%s'",
                             MIN_LINE, 1u << 24, arg),
                   -1;
        ro->max_line_set = 1;
        return 1;
    case 'D':
        if (app_parse_uint(arg, 0, 10000, &ro->line_delay) != 0)
            return app_usage(cmd, "--line-delay must be 0 to 10000 ms, not '%s'", arg), -1;
        return 1;
    case 'H':
        if (app_parse_uint(arg, 1, 3600, &ro->hs_timeout) != 0)
            return app_usage(cmd, "--handshake-timeout must be 1 to 3600 seconds, not '%s'", arg),
                   -1;
        return 1;
    default:
        return 0;
    }
}

int app_room_init(APP_ROOM *r, const APP_CHAT_OPTS *o, const APP_ROOM_OPTS *ro,
                  const APP_ROOM_OPS *ops)
{
    APP_CHAT_OPTS text = *o;
    memset(r, 0, sizeof(*r));
    r->ops = ops;
    r->rfd = r->wfd = -1;
    r->initiate = ro->initiate;
    r->line_delay = (unsigned)ro->line_delay;
    r->burst = 1;
    r->hs_timeout = (unsigned)ro->hs_timeout;
    r->max_rline = 4u << 20;
    if (o->peer != NULL)
        snprintf(r->peer_label, sizeof(r->peer_label), "'%s'", o->peer);
    else
        snprintf(r->peer_label, sizeof(r->peer_label), "the peer");
    text.text = 1;
    if (app_chat_init(&r->chat, &text, ro->initiate ? P11C_INITIATOR : P11C_RESPONDER) != 0)
        return -1;
    r->tx = p11c_text_new();
    if (r->tx == NULL) {
        app_msg("out of memory");
        return -1;
    }
    return 0;
}

void app_room_set_max_line(APP_ROOM *r, size_t max_line, const char *why)
{
    r->max_line = max_line;
    if (max_line == 0) {
        r->chat.max_data = 0;
        return;
    }
    size_t cap = p11c_text_capacity(max_line);
    cap = cap > P11C_RECORD_BYTES ? cap - P11C_RECORD_BYTES : 0;
    r->chat.max_data = cap > P11C_MAX_DATA ? P11C_MAX_DATA : cap;
    snprintf(r->max_why, sizeof(r->max_why), "%s", why);
    r->chat.max_why = r->max_why;
}

void app_room_free(APP_ROOM *r)
{
    p11c_text_free(r->tx);
    app_buf_free(&r->out);
    app_buf_free(&r->rin);
    app_buf_free(&r->uin);
    app_chat_free(&r->chat);
}

int app_room_raw(APP_ROOM *r, const void *p, size_t n)
{
    if (app_buf_add(&r->out, p, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        r->out_lines += ((const char *)p)[i] == '\n';
    return 0;
}

/* ---- From the session to the transport ------------------------------------ */

static void digest(const uint8_t *msg, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(msg, len, out, &n, EVP_sha256(), NULL);
}

static p11c_err armor_line(const char *text, size_t len, void *arg)
{
    APP_ROOM *r = arg;
    return r->ops->put_line(r, text, len) == 0 ? P11C_OK : P11C_ERR_MEMORY;
}

static int pump_output(APP_ROOM *r)
{
    uint8_t *msg;
    size_t len;
    while (p11c_session_pop_output(r->chat.s, &msg, &len)) {
        digest(msg, len, r->echo[r->necho++ % ROOM_ECHO_RING]);
        p11c_err e = p11c_text_encode(msg, len, r->max_line, armor_line, r);
        OPENSSL_free(msg);
        if (e != P11C_OK) {
            app_msg("cannot armor a message: %s%s", p11c_strerror(e),
                    e == P11C_ERR_LIMIT ? " (raise --max-line)" : "");
            return -1;
        }
    }
    return 0;
}

/* When the next line may be written: `burst` lines at once, then one every
 * line_delay ms (a leaky bucket: lines written at the steady pace never
 * wait). */
static int64_t write_at(const APP_ROOM *r)
{
    int64_t slack = (int64_t)(r->burst > 0 ? r->burst - 1 : 0) * r->line_delay;
    return r->line_delay == 0 ? 0 : r->tat - slack;
}

static void write_out(APP_ROOM *r)
{
    size_t len = r->out.len - r->out.off;
    const uint8_t *nl = NULL;
    if (r->line_delay != 0) {
        /* One line a write: relays that read in blocks and mark each block
         * with the sender's name would otherwise cut lines apart. */
        nl = memchr(r->out.b + r->out.off, '\n', len);
        if (nl != NULL)
            len = (size_t)(nl - (r->out.b + r->out.off)) + 1;
    }
    ssize_t n = write(r->wfd, r->out.b + r->out.off, len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        r->out.off = r->out.len = 0;
        r->out_lines = 0;
        app_room_transport_end(r, NULL);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        r->out_lines -= r->out.b[r->out.off + (size_t)i] == '\n';
    r->out.off += (size_t)n;
    if (nl != NULL && (size_t)n == len) {
        int64_t now = app_now_ms();
        r->tat = (r->tat > now ? r->tat : now) + r->line_delay;
    }
}

/* ---- From the transport ----------------------------------------------------- */

static int is_echo(const APP_ROOM *r, const uint8_t *msg, size_t len)
{
    uint8_t d[32];
    digest(msg, len, d);
    size_t n = r->necho < ROOM_ECHO_RING ? r->necho : ROOM_ECHO_RING;
    for (size_t i = 0; i < n; i++)
        if (CRYPTO_memcmp(r->echo[i], d, 32) == 0)
            return 1;
    return 0;
}

void app_room_plain(APP_ROOM *r, const char *who, const char *line, size_t len)
{
    (void)r;
    char *text = app_escape((const uint8_t *)line, len);
    char *name = who != NULL ? app_escape((const uint8_t *)who, strlen(who)) : NULL;
    if (text == NULL || (who != NULL && name == NULL))
        goto end;
    size_t n = strlen(text), w = name != NULL ? strlen(name) + 3 : 0;
    char *out = malloc(n + w + 16);
    if (out != NULL) {
        size_t o = 14;
        memcpy(out, "[unencrypted] ", 14);
        if (name != NULL) {
            out[o++] = '<';
            memcpy(out + o, name, w - 3);
            o += w - 3;
            out[o++] = '>';
            out[o++] = ' ';
        }
        memcpy(out + o, text, n);
        out[o + n] = '\n';
        app_write_all(STDOUT_FILENO, out, o + n + 1);
    }
    free(out);
end:
    free(name);
    free(text);
}

void app_room_line(APP_ROOM *r, const char *who, const char *line, size_t len)
{
    uint8_t *msg = NULL;
    size_t mlen = 0;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    switch (p11c_text_read(r->tx, line, len, &msg, &mlen)) {
    case P11C_TEXT_MESSAGE:
        /* Our own message repeated by the chat is not the peer's. */
        if (!is_echo(r, msg, mlen)) {
            int was = r->chat.established;
            app_chat_recv(&r->chat, msg, mlen);
            if (!was && r->chat.established)
                snprintf(r->peer_who, sizeof(r->peer_who), "%s", who != NULL ? who : "");
        }
        OPENSSL_free(msg);
        break;
    case P11C_TEXT_PLAIN:
        app_room_plain(r, who, line, len);
        break;
    case P11C_TEXT_BAD:
        app_msg("dropped a malformed P11C line from the chat");
        break;
    case P11C_TEXT_CUT:
        if (r->max_line != 0)
            app_msg("WARNING: a P11C line of %zu bytes arrived cut short: the chat shortens "
                    "lines; the sender's lines must be shorter (here %s)",
                    len, r->max_why);
        else
            app_msg("WARNING: a P11C line of %zu bytes arrived cut short: the chat shortens "
                    "lines; the sender's lines must be shorter (--max-line)",
                    len);
        break;
    case P11C_TEXT_NONE:
        break;
    }
}

/* Reads what is there: > 0 when lines may follow, 0 at the end, -1 when
 * nothing more is ready. */
static ssize_t read_transport(APP_ROOM *r)
{
    uint8_t buf[65536];
    ssize_t n = read(r->rfd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return -1;
    if (n <= 0) {
        app_room_transport_end(r, NULL);
        return 0;
    }
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n && !r->chat.finished; i++) {
        if (buf[i] != '\n')
            continue;
        if (r->rdiscard) {
            r->rdiscard = 0;
        } else if (r->rin.len > 0) {
            if (app_buf_add(&r->rin, buf + start, i - start) == 0)
                r->ops->got_line(r, (const char *)r->rin.b, r->rin.len);
            r->rin.len = r->rin.off = 0;
        } else {
            r->ops->got_line(r, (const char *)buf + start, i - start);
        }
        start = i + 1;
    }
    if (start < (size_t)n && !r->rdiscard && !r->chat.finished) {
        if (r->rin.len + ((size_t)n - start) > r->max_rline) {
            app_msg("dropped a line of more than %zu bytes from %s", r->max_rline, r->ops->name);
            r->rdiscard = 1;
            r->rin.len = r->rin.off = 0;
        } else if (app_buf_add(&r->rin, buf + start, (size_t)n - start) != 0) {
            app_msg("out of memory");
            r->chat.finished = 1;
        }
    }
    return n;
}

void app_room_transport_end(APP_ROOM *r, const char *why)
{
    if (r->transport_eof)
        return;
    r->transport_eof = 1;
    if (r->rin.len > 0 && !r->rdiscard && !r->chat.finished)
        r->ops->got_line(r, (const char *)r->rin.b, r->rin.len);
    r->rin.len = r->rin.off = 0;
    if (r->chat.finished)
        return;
    if (!r->chat.established) {
        if (why != NULL)
            app_msg("%s before the session was established", why);
        else
            app_msg("%s ended before the session was established", r->ops->name);
        r->chat.finished = 1;
        r->chat.status = APP_FAIL;
        return;
    }
    if (why != NULL)
        app_msg("%s", why);
    app_chat_transport_end(&r->chat);
}

/* ---- From the user -------------------------------------------------------- */

static void user_bytes(APP_ROOM *r, const uint8_t *buf, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n && !r->chat.finished; i++) {
        if (buf[i] != '\n')
            continue;
        size_t part = i - start;
        if (r->udiscard) {
            app_line_too_long(r->udiscard + part);
            r->udiscard = 0;
        } else if (r->uin.len > 0) {
            if (app_buf_add(&r->uin, buf + start, part) == 0)
                app_chat_send_line(&r->chat, r->uin.b, r->uin.len);
            OPENSSL_cleanse(r->uin.b, r->uin.len);
            r->uin.len = r->uin.off = 0;
        } else {
            app_chat_send_line(&r->chat, buf + start, part);
        }
        start = i + 1;
    }
    size_t rest = n - start;
    if (r->udiscard) {
        r->udiscard += rest;
    } else if (r->uin.len + rest > P11C_MAX_DATA) {
        r->udiscard = r->uin.len + rest;
        OPENSSL_cleanse(r->uin.b, r->uin.len);
        r->uin.len = r->uin.off = 0;
    } else if (rest > 0) {
        app_buf_add(&r->uin, buf + start, rest);
    }
}

/* End of input: the last line, then CLOSE (once the session exists, after
 * the lines held for it). */
static void user_end(APP_ROOM *r)
{
    if (r->udiscard)
        app_line_too_long(r->udiscard + r->uin.len);
    else if (r->uin.len > 0)
        app_chat_send_line(&r->chat, r->uin.b, r->uin.len);
    r->uin.len = r->uin.off = r->udiscard = 0;
    app_chat_close(&r->chat);
}

static void read_user(APP_ROOM *r)
{
    uint8_t buf[65536];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        app_msg("cannot read standard input: %s", strerror(errno));
        n = 0;
    }
    if (n == 0) {
        r->user_eof = 1;
        if (!r->chat.established && r->chat.nheld == 0 && r->uin.len == 0 && !r->udiscard) {
            /* Nothing to say and no one to say it to: done. */
            app_msg("end of input before the session was established: nothing was sent");
            r->chat.finished = 1;
            r->chat.status = APP_FAIL;
            return;
        }
        user_end(r);
        return;
    }
    /* Before the session, lines are held for it (held.c). */
    user_bytes(r, buf, (size_t)n);
    OPENSSL_cleanse(buf, sizeof(buf));
}

/* ---- The loop ------------------------------------------------------------- */

static int start(APP_ROOM *r)
{
    r->started = 1;
    if (!r->initiate)
        return 0;
    p11c_err e = p11c_session_start(r->chat.s);
    if (e != P11C_OK) {
        if (!r->chat.reported)
            app_ossl_msg("cannot start the handshake: %s", p11c_strerror(e));
        r->chat.finished = 1;
        r->chat.status = APP_FAIL;
        return -1;
    }
    app_chat_events(&r->chat);
    return 0;
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a <= 0 ? b : b <= 0 ? a : a < b ? a : b;
}

int app_room_run(APP_ROOM *r, unsigned timeout)
{
    APP_CHAT *c = &r->chat;
    APP_TIMERS t = {.timeout = timeout,
                    .ack_delay = ROOM_ACK_QUIET_MS,
                    .ack_quiet = 1,
                    .ack_every = ROOM_ACK_EVERY};
    r->hs_deadline = app_now_ms() + (int64_t)r->hs_timeout * 1000;

    for (;;) {
        int64_t now = app_now_ms();
        if (r->ready && !r->started && start(r) != 0)
            break;
        if (pump_output(r) != 0) {
            c->finished = 1;
            c->status = APP_FAIL;
        }
        if (r->ops->ended != NULL && !r->transport_eof && r->ops->ended(r)) {
            /* What it wrote before it ended is still to be read; a program
             * it left behind that holds the pipe is not waited for. */
            while (!r->transport_eof && !c->finished && read_transport(r) > 0)
                ;
            app_room_transport_end(r, NULL);
        }
        int pending = r->out.off < r->out.len && !r->transport_eof;
        if (c->finished && !pending)
            break;
        if (app_interrupted && !r->user_eof) {
            r->user_eof = 1;
            if (!c->established) {
                app_msg("interrupted before the session was established");
                app_suite_handshake_ended(c);
                c->finished = 1;
                c->status = APP_FAIL;
                break;
            }
            app_chat_close(c);
            continue;
        }
        if (!c->established && !c->finished) {
            if (now >= r->hs_deadline) {
                app_msg("no peer completed the handshake within %u s (--handshake-timeout)",
                        r->hs_timeout);
                c->finished = 1;
                c->status = APP_FAIL;
                break;
            }
            if (r->started && now >= r->next_waiting) {
                app_msg("waiting for %s (the handshake times out in %lld s)", r->peer_label,
                        (long long)((r->hs_deadline - now + 999) / 1000));
                r->next_waiting = now + WAITING_EVERY;
            }
        }
        app_timers_arm(&t, c);

        struct pollfd p[3];
        nfds_t np = 0;
        int ir = -1, ow = -1, iu = -1;
        int64_t hold = pending ? write_at(r) : 0;
        if (hold <= now)
            hold = 0;
        if (!r->transport_eof && !c->finished) {
            ir = (int)np;
            p[np++] = (struct pollfd){.fd = r->rfd, .events = POLLIN};
        }
        if (pending && hold == 0) {
            if (ir >= 0 && r->wfd == r->rfd) {
                ow = ir;
                p[ir].events |= POLLOUT;
            } else {
                ow = (int)np;
                p[np++] = (struct pollfd){.fd = r->wfd, .events = POLLOUT};
            }
        }
        if (!c->finished && !c->close_sent && !r->user_eof && r->out.len - r->out.off < OUT_HIGH) {
            iu = (int)np;
            p[np++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        }
        int64_t deadline = 0;
        if (t.close_deadline != 0)
            deadline = t.close_deadline;
        if (c->finished)
            deadline = app_timers_flush(&t, now);
        deadline = earliest(deadline, hold);
        if (!c->established && !c->finished) {
            deadline = earliest(deadline, r->hs_deadline);
            if (r->started)
                deadline = earliest(deadline, r->next_waiting);
        }
        if (r->ops->ended != NULL)
            deadline = earliest(deadline, now + 500); /* a missed SIGCHLD costs half a second */
        int n = app_poll(c, &t, p, np, deadline > 0 ? deadline : -1, now);
        if (n < 0)
            break;
        if (n > 0) {
            if (ow >= 0 && (p[ow].revents & (POLLOUT | POLLERR | POLLHUP)))
                write_out(r);
            if (ir >= 0 && (p[ir].revents & (POLLIN | POLLHUP | POLLERR)) && !c->finished)
                read_transport(r);
            if (iu >= 0 && (p[iu].revents & (POLLIN | POLLHUP | POLLERR)) && !c->finished)
                read_user(r);
        }
        if (app_timers_expired(&t, c, app_now_ms()))
            break;
    }
    return app_chat_exit(c);
}
