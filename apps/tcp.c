/*
 * listen and connect: one P11C session over TCP with stream framing, in a
 * poll() loop over standard input and the socket.
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST_MAX 1025 /* NI_MAXHOST */
#define SERV_MAX 32

#include <openssl/crypto.h>

/* An ACK goes out when the peer's messages have waited this long for any
 * record of ours to confirm them. */
#define ACK_DELAY_MS 1000
/* listen: connections in their handshake at once; more wait in the kernel's queue. */
#define MAX_PENDING 8
/* Standard input is not read while this much is waiting for the socket. */
#define OUT_HIGH (1u << 20)

static const char tcp_usage[] =
    "usage: p11chat listen [HOST:]PORT --key KEY --id NAME [OPTIONS]\n"
    "       p11chat connect HOST:PORT --key KEY --id NAME [OPTIONS]\n"
    "\n"
    "One end-to-end encrypted session over TCP. 'listen' waits for a peer\n"
    "(PORT 0 picks a free port; the address is shown on stderr), running the\n"
    "handshake of each connection on its own: one that is silent or fails is\n"
    "dropped and the next one can succeed. 'connect' starts the handshake.\n"
    "Each line of standard input is one message; each message received is one\n"
    "line of standard output, 'NAME> message' with the peer's identity as NAME\n"
    "(quoted unless it is only letters, digits and ._@+-), control characters\n"
    "and bytes that are not UTF-8 escaped. Status lines on standard error start\n"
    "with the verdict on the peer ('trusted:', 'NOT IN TRUST STORE:',\n"
    "'MISMATCH:'). Lines typed before the session is established are sent only\n"
    "to a trusted peer (or, for one not in the trust store, once you agree).\n"
    "End of input (or Ctrl-C) closes the session; the peer's CLOSE is awaited\n"
    "and the number of our messages it confirmed is shown. Exit status: 0\n"
    "closed cleanly, 1 failure, 2 usage, 3 connection ended without CLOSE\n"
    "(truncated).\n"
    "\n";

static const char tcp_usage_own[] =
    "  --policy strict|window    record order policy (default strict)\n"
    "  --timeout SECONDS         for the handshake and the wait for CLOSE (30)\n";

static const struct option chat_opts[] = {
    APP_CHAT_LONGOPTS,
    {"policy", required_argument, NULL, 'P'},
    {"timeout", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Splits [HOST:]PORT ("[::1]:80", "localhost:80", "80") in place. */
static int split_hostport(char *s, char **host, char **port)
{
    char *colon;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        *close = '\0';
        *host = s + 1;
        *port = close + 2;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if (strchr(s, ':') != colon)
            return -1; /* an IPv6 address needs brackets */
        *colon = '\0';
        *host = s;
        *port = colon + 1;
    } else {
        *host = NULL;
        *port = s;
    }
    unsigned long v;
    if (app_parse_uint(*port, 0, 65535, &v) != 0)
        return -1;
    if (*host != NULL && **host == '\0')
        *host = NULL;
    return 0;
}

static void addr_string(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
    char h[HOST_MAX], p[SERV_MAX];
    if (getnameinfo(sa, len, h, sizeof(h), p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, outlen, "?");
        return;
    }
    snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
}

static int tcp_listen(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        app_msg("cannot resolve '%s': %s", host ? host : "*", gai_strerror(rc));
        return -1;
    }
    /* Without a host, one IPv6 socket that also takes IPv4 when possible. */
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
            if (host == NULL && (pass == 0) != (ai->ai_family == AF_INET6))
                continue;
            if (host != NULL && pass == 1)
                break;
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0)
                continue;
            int one = 1, zero = 0;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (ai->ai_family == AF_INET6 && host == NULL)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, MAX_PENDING) != 0) {
                rc = errno;
                close(fd);
                fd = -1;
                errno = rc;
            }
        }
    }
    if (fd < 0)
        app_msg("cannot listen on %s%s%s: %s", host ? host : "", host ? ":" : "port ", port,
                strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char a[HOST_MAX + SERV_MAX + 4];
        getsockname(fd, (struct sockaddr *)&ss, &len);
        addr_string((struct sockaddr *)&ss, len, a, sizeof(a));
        app_msg("listening on %s", a);
    }
    return fd;
}

static int tcp_connect(const char *host, const char *port, unsigned timeout)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc, err = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        app_msg("cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (errno == EINPROGRESS) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                socklen_t l = sizeof(err);
                err = ETIMEDOUT;
                if (poll(&p, 1, (int)timeout * 1000) == 1)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
            }
            if (err != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        app_msg("cannot connect to %s:%s: %s", host, port, strerror(err));
        return -1;
    }
    app_msg(strchr(host, ':') != NULL ? "connected to [%s]:%s" : "connected to %s:%s", host, port);
    return fd;
}

/* ---- The loop --------------------------------------------------------------- */

typedef struct tcp_io {
    int fd;
    P11C_STREAM *st;
    APP_BUF out; /* framed bytes waiting for the socket */
    uint8_t *in; /* a line of standard input being read */
    size_t inlen;
    size_t discarding; /* bytes of an over-long line being thrown away */
    int in_eof;
    int sock_eof;
} TCP_IO;

/* Frames every message the session has for the peer into out. */
static int frame_output(P11C_SESSION *s, APP_BUF *out)
{
    uint8_t *msg, *framed;
    size_t len, flen;
    while (p11c_session_pop_output(s, &msg, &len)) {
        p11c_err e = p11c_frame_stream(msg, len, &framed, &flen);
        OPENSSL_free(msg);
        if (e != P11C_OK) {
            app_msg("cannot frame a message: %s", p11c_strerror(e));
            return -1;
        }
        int r = app_buf_add(out, framed, flen);
        OPENSSL_free(framed);
        if (r != 0) {
            app_msg("out of memory");
            return -1;
        }
    }
    return 0;
}

static int pump_output(APP_CHAT *c, TCP_IO *io)
{
    return c->s == NULL ? 0 : frame_output(c->s, &io->out);
}

/* ---- listen: handshakes with every connection until one completes ---------- */

/* A connection whose handshake is under way, with a session of its own: a
 * silent or slow one holds no other back, and is dropped at its deadline. */
typedef struct pending {
    int fd;
    P11C_STREAM *st;
    P11C_SESSION *s;
    APP_BUF out;
    int64_t deadline;
    char addr[HOST_MAX + SERV_MAX + 4];
} PENDING;

typedef struct listener {
    int lfd;
    PENDING p[MAX_PENDING];
    size_t n;
    unsigned timeout;
} LISTENER;

static void pending_free(PENDING *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p11c_stream_free(p->st);
    p11c_session_free(p->s);
    app_buf_free(&p->out);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}

/* Drops connection i (said on stderr), keeps listening. */
static void pending_drop(LISTENER *ls, size_t i, const char *why)
{
    app_msg("dropped the connection from %s%s%s; still listening", ls->p[i].addr, why ? ": " : "",
            why ? why : "");
    pending_free(&ls->p[i]);
    ls->p[i] = ls->p[--ls->n];
    ls->p[ls->n].fd = -1;
}

static void pending_accept(APP_CHAT *c, LISTENER *ls)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept(ls->lfd, (struct sockaddr *)&ss, &len);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            app_msg("accept failed: %s", strerror(errno));
        return;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    PENDING *p = &ls->p[ls->n];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    addr_string((struct sockaddr *)&ss, len, p->addr, sizeof(p->addr));
    app_msg("connection from %s", p->addr);
    p->st = p11c_stream_new();
    p->s = app_chat_session_new(c);
    p->deadline = app_now_ms() + (int64_t)ls->timeout * 1000;
    ls->n++;
    if (p->st == NULL || p->s == NULL)
        pending_drop(ls, ls->n - 1, "out of memory");
}

/*
 * Input on connection i: fed to its own session, shown through c with c->s
 * lent for the moment. 1 when that session is established (the peer is
 * ours), 0 otherwise (connection i may have been dropped).
 */
static int pending_read(APP_CHAT *c, LISTENER *ls, size_t i)
{
    PENDING *p = &ls->p[i];
    uint8_t buf[16384], *msg;
    size_t len;
    ssize_t n = read(p->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        pending_drop(ls, i, "it ended the connection during the handshake");
        return 0;
    }
    if (p11c_stream_feed(p->st, buf, (size_t)n) != P11C_OK) {
        pending_drop(ls, i, "it sent a malformed frame");
        return 0;
    }
    c->s = p->s;
    while (!c->finished && p11c_stream_next(p->st, &msg, &len)) {
        app_chat_recv(c, msg, len);
        OPENSSL_free(msg);
    }
    c->s = NULL;
    if (frame_output(p->s, &p->out) != 0)
        c->finished = 1;
    if (c->established)
        return 1;
    if (c->finished) {
        /* Its handshake failed (said on stderr): the next one may be ours. */
        c->finished = 0;
        c->status = APP_FAIL;
        c->reported = 0;
        pending_drop(ls, i, NULL);
    }
    return 0;
}

static void pending_write(LISTENER *ls, size_t i)
{
    PENDING *p = &ls->p[i];
    ssize_t n = write(p->fd, p->out.b + p->out.off, p->out.len - p->out.off);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) {
        pending_drop(ls, i, strerror(errno));
        return;
    }
    p->out.off += (size_t)n;
}

/* The connection whose session is established becomes the conversation; the
 * others and the listening socket are closed. */
static void listener_adopt(APP_CHAT *c, LISTENER *ls, size_t i, TCP_IO *io)
{
    PENDING *p = &ls->p[i];
    c->s = p->s;
    p->s = NULL;
    io->fd = p->fd;
    p->fd = -1;
    p11c_stream_free(io->st);
    io->st = p->st;
    p->st = NULL;
    app_buf_free(&io->out);
    io->out = p->out;
    memset(&p->out, 0, sizeof(p->out));
    for (size_t k = 0; k < ls->n; k++)
        pending_free(&ls->p[k]);
    ls->n = 0;
    close(ls->lfd);
    ls->lfd = -1;
}

/* Sends each complete line in io->in; keeps the rest. */
static void take_lines(APP_CHAT *c, TCP_IO *io)
{
    size_t start = 0;
    for (size_t i = 0; i < io->inlen && !c->finished; i++) {
        if (io->in[i] != '\n')
            continue;
        if (io->discarding) {
            app_line_too_long(io->discarding + (i - start));
            io->discarding = 0;
        } else {
            app_chat_send_line(c, io->in + start, i - start);
        }
        start = i + 1;
    }
    memmove(io->in, io->in + start, io->inlen - start);
    io->inlen -= start;
    if (io->inlen > P11C_MAX_DATA) {
        /* No newline within the limit: this line cannot be one message. */
        io->discarding += io->inlen;
        io->inlen = 0;
    }
}

static void read_stdin(APP_CHAT *c, TCP_IO *io)
{
    ssize_t n = read(STDIN_FILENO, io->in + io->inlen, P11C_MAX_DATA + 1 - io->inlen);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        app_msg("cannot read standard input: %s", strerror(errno));
        n = 0;
    }
    if (n == 0) {
        io->in_eof = 1;
        if (io->discarding)
            app_line_too_long(io->discarding + io->inlen);
        else if (io->inlen > 0)
            app_chat_send_line(c, io->in, io->inlen);
        io->inlen = io->discarding = 0;
        app_chat_close(c);
        return;
    }
    io->inlen += (size_t)n;
    take_lines(c, io);
}

static void read_socket(APP_CHAT *c, TCP_IO *io)
{
    uint8_t buf[65536];
    ssize_t n = read(io->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        io->sock_eof = 1;
        app_chat_transport_end(c);
        return;
    }
    p11c_err e = p11c_stream_feed(io->st, buf, (size_t)n);
    if (e != P11C_OK) {
        app_msg("the peer sent a malformed frame: %s", p11c_strerror(e));
        c->finished = 1;
        c->status = APP_FAIL;
        return;
    }
    uint8_t *msg;
    size_t len;
    while (!c->finished && p11c_stream_next(io->st, &msg, &len)) {
        app_chat_recv(c, msg, len);
        OPENSSL_free(msg);
    }
}

static int write_socket(APP_CHAT *c, TCP_IO *io)
{
    ssize_t n = write(io->fd, io->out.b + io->out.off, io->out.len - io->out.off);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        /* The peer is gone: what we still had for it is lost. */
        io->out.off = io->out.len = 0;
        io->sock_eof = 1;
        app_chat_transport_end(c);
        return -1;
    }
    io->out.off += (size_t)n;
    return 0;
}

/*
 * listen until one connection completes its handshake (then it is in io and
 * c->s: 0), reading standard input meanwhile (the lines are held). -1 when
 * interrupted or poll() failed.
 */
static int listen_phase(APP_CHAT *c, LISTENER *ls, TCP_IO *io)
{
    for (;;) {
        if (app_interrupted) {
            app_msg("interrupted before the session was established");
            return -1;
        }
        struct pollfd p[MAX_PENDING + 2];
        nfds_t np = 0;
        int64_t now = app_now_ms(), deadline = -1;
        int il = -1, iu = -1;
        for (size_t i = 0; i < ls->n; i++) {
            p[np].fd = ls->p[i].fd;
            p[np].events = POLLIN | (ls->p[i].out.off < ls->p[i].out.len ? POLLOUT : 0);
            p[np++].revents = 0;
            if (deadline < 0 || ls->p[i].deadline < deadline)
                deadline = ls->p[i].deadline;
        }
        if (ls->n < MAX_PENDING) {
            il = (int)np;
            p[np].fd = ls->lfd;
            p[np].events = POLLIN;
            p[np++].revents = 0;
        }
        if (!io->in_eof) {
            iu = (int)np;
            p[np].fd = STDIN_FILENO;
            p[np].events = POLLIN;
            p[np++].revents = 0;
        }
        int wait = deadline < 0 ? -1 : deadline > now ? (int)(deadline - now) : 0;
        int r = poll(p, np, wait);
        if (r < 0 && errno != EINTR) {
            app_msg("poll failed: %s", strerror(errno));
            return -1;
        }
        now = app_now_ms();
        /* From the last: a dropped connection takes the place of the last one. */
        for (size_t i = ls->n; i-- > 0;) {
            short ev = r > 0 ? p[i].revents : 0;
            if (ev & POLLOUT)
                pending_write(ls, i);
            if (i < ls->n && ls->p[i].fd == p[i].fd && (ev & (POLLIN | POLLHUP | POLLERR)) &&
                pending_read(c, ls, i)) {
                listener_adopt(c, ls, i, io);
                return 0;
            }
            if (i < ls->n && ls->p[i].fd == p[i].fd && now >= ls->p[i].deadline) {
                char why[64];
                snprintf(why, sizeof(why), "no completed handshake within %u s", ls->timeout);
                pending_drop(ls, i, why);
            }
        }
        if (r > 0 && il >= 0 && (p[il].revents & POLLIN))
            pending_accept(c, ls);
        if (r > 0 && iu >= 0 && (p[iu].revents & (POLLIN | POLLHUP | POLLERR)))
            read_stdin(c, io);
    }
}

static int chat_loop(APP_CHAT *c, int fd, LISTENER *ls, unsigned timeout, int initiator)
{
    TCP_IO io;
    memset(&io, 0, sizeof(io));
    io.fd = fd;
    io.st = p11c_stream_new();
    io.in = malloc(P11C_MAX_DATA + 1);
    int64_t hs_deadline = app_now_ms() + (int64_t)timeout * 1000;
    APP_TIMERS t = {.timeout = timeout, .ack_delay = ACK_DELAY_MS};

    if (io.st == NULL || io.in == NULL) {
        app_msg("out of memory");
        goto end;
    }
    if (ls != NULL && listen_phase(c, ls, &io) != 0)
        goto end;
    fd = io.fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (initiator) {
        p11c_err e = p11c_session_start(c->s);
        if (e != P11C_OK) {
            if (!c->reported)
                app_ossl_msg("cannot start the handshake: %s", p11c_strerror(e));
            goto end;
        }
        app_chat_events(c);
    }

    for (;;) {
        if (pump_output(c, &io) != 0) {
            c->finished = 1;
            c->status = APP_FAIL;
            break;
        }
        int pending = io.out.off < io.out.len && !io.sock_eof;
        if (c->finished && !pending)
            break;
        if (app_interrupted && !io.in_eof && c->established) {
            io.in_eof = 1;
            app_chat_close(c);
            continue;
        }
        if (app_interrupted && !c->established) {
            app_msg("interrupted before the session was established");
            c->finished = 1;
            c->status = APP_FAIL;
            break;
        }
        app_timers_arm(&t, c);

        struct pollfd p[2];
        nfds_t np = 0;
        p[np].fd = fd;
        p[np].events = (c->finished ? 0 : POLLIN) | (pending ? POLLOUT : 0);
        p[np++].revents = 0;
        /* Read before the session too: those lines are held (held.c). */
        int want_in =
            !c->finished && !io.in_eof && !c->close_sent && io.out.len - io.out.off < OUT_HIGH;
        if (want_in) {
            p[np].fd = STDIN_FILENO;
            p[np].events = POLLIN;
            p[np++].revents = 0;
        }
        int64_t now = app_now_ms(), deadline = -1;
        if (!c->established)
            deadline = hs_deadline;
        else if (t.close_deadline != 0)
            deadline = t.close_deadline;
        else if (c->finished)
            deadline = app_timers_flush(&t, now);

        int r = app_poll(c, &t, p, np, deadline, now);
        if (r < 0)
            break;
        now = app_now_ms();
        if (r == 0) {
            /* Before the handshake is done nothing can wait for an ACK. */
            if (!c->established && now >= hs_deadline) {
                app_msg("no completed handshake within %u s", timeout);
                c->status = APP_FAIL;
                break;
            }
            if (app_timers_expired(&t, c, now))
                break;
            continue;
        }
        if (p[0].revents & POLLOUT)
            write_socket(c, &io);
        if (!c->finished && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            read_socket(c, &io);
        if (np > 1 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !c->finished)
            read_stdin(c, &io);
    }
end:
    if (io.fd >= 0) {
        shutdown(io.fd, SHUT_WR);
        close(io.fd);
    }
    if (io.in != NULL)
        OPENSSL_cleanse(io.in, P11C_MAX_DATA + 1);
    free(io.in);
    app_buf_free(&io.out);
    p11c_stream_free(io.st);
    return app_chat_exit(c);
}

static int cmd_tcp(int argc, char **argv, int listening)
{
    const char *cmd = listening ? "listen" : "connect";
    APP_CHAT_OPTS o;
    memset(&o, 0, sizeof(o));
    o.timeout = 30;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":k:i:t:h", chat_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(tcp_usage, stdout);
            fputs(app_chat_help, stdout);
            fputs(tcp_usage_own, stdout);
            return APP_OK;
        }
        if (c == ':')
            return app_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
        if (c == '?')
            return app_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        int r = app_chat_option(cmd, c, optarg, &o);
        if (r < 0)
            return APP_USAGE;
    }
    if (optind >= argc)
        return app_usage(cmd, listening ? "[HOST:]PORT is required" : "HOST:PORT is required");
    if (optind + 1 < argc)
        return app_usage(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (app_chat_check(cmd, &o) != APP_OK)
        return APP_USAGE;

    char *hp = strdup(argv[optind]), *host, *port;
    if (hp == NULL)
        return APP_FAIL;
    if (split_hostport(hp, &host, &port) != 0 || (!listening && host == NULL) ||
        (!listening && strcmp(port, "0") == 0)) {
        free(hp);
        return app_usage(cmd, "'%s' is not %s", argv[optind],
                         listening ? "[HOST:]PORT" : "HOST:PORT");
    }

    APP_CHAT chat;
    LISTENER ls;
    int ret = APP_FAIL, fd = -1;
    memset(&ls, 0, sizeof(ls));
    ls.lfd = -1;
    app_signals_install();
    if (app_chat_init(&chat, &o, listening ? P11C_RESPONDER : P11C_INITIATOR) != 0)
        goto end;
    if (listening) {
        ls.lfd = tcp_listen(host, port);
        if (ls.lfd < 0)
            goto end;
        fcntl(ls.lfd, F_SETFL, fcntl(ls.lfd, F_GETFL) | O_NONBLOCK);
        ls.timeout = o.timeout;
        /* Each connection gets a session of its own. */
        p11c_session_free(chat.s);
        chat.s = NULL;
        ret = chat_loop(&chat, -1, &ls, o.timeout, 0);
    } else {
        fd = tcp_connect(host, port, o.timeout);
        if (fd < 0)
            goto end;
        ret = chat_loop(&chat, fd, NULL, o.timeout, 1);
    }
end:
    for (size_t i = 0; i < ls.n; i++)
        pending_free(&ls.p[i]);
    if (ls.lfd >= 0)
        close(ls.lfd);
    app_chat_free(&chat);
    free(hp);
    return ret;
}

int cmd_listen(int argc, char **argv)
{
    return cmd_tcp(argc, argv, 1);
}

int cmd_connect(int argc, char **argv)
{
    return cmd_tcp(argc, argv, 0);
}

/* For the other transports that reach a server over TCP (irc.c). */
int app_split_hostport(char *s, char **host, char **port)
{
    return split_hostport(s, host, port);
}

int app_tcp_connect(const char *host, const char *port, unsigned timeout)
{
    return tcp_connect(host, port, timeout);
}
