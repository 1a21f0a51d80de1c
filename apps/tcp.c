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
/* Standard input is not read while this much is waiting for the socket. */
#define OUT_HIGH (1u << 20)

static const char tcp_usage[] =
    "usage: p11chat listen [HOST:]PORT --key KEY --id NAME [OPTIONS]\n"
    "       p11chat connect HOST:PORT --key KEY --id NAME [OPTIONS]\n"
    "\n"
    "One end-to-end encrypted session over TCP. 'listen' waits for one peer\n"
    "(PORT 0 picks a free port; the address is shown on stderr); 'connect'\n"
    "starts the handshake. Each line of standard input is one message; each\n"
    "message received is one line of standard output, with control characters\n"
    "and bytes that are not UTF-8 escaped. End of input (or Ctrl-C) closes the\n"
    "session; the peer's CLOSE is awaited and the number of our messages it\n"
    "confirmed is shown. Exit status: 0 closed cleanly, 1 failure, 2 usage,\n"
    "3 connection ended without CLOSE (truncated).\n"
    "\n"
    "  --key KEY                 our long-term key: pkcs11: URI or PEM file\n"
    "  --id NAME                 our identity, as the peer will see it\n"
    "  --pin-source FILE         the token PIN, read from FILE\n"
    "  --trust FILE              the trust store (see 'p11chat trust --help')\n"
    "  --known-only              refuse a peer that is not in the trust store\n"
    "  --policy strict|window    record order policy (default strict)\n"
    "  --session-key software|token\n"
    "                            where the one-time session key is made (default\n"
    "                            software; token: an ephemeral token object)\n"
    "  --timeout SECONDS         for the handshake and the wait for CLOSE (30)\n"
    "  --verbose                 also show the peer's confirmations as they come\n";

static const struct option chat_opts[] = {
    {"key", required_argument, NULL, 'k'},
    {"id", required_argument, NULL, 'i'},
    {"trust", required_argument, NULL, 't'},
    {"pin-source", required_argument, NULL, 'p'},
    {"known-only", no_argument, NULL, 'K'},
    {"policy", required_argument, NULL, 'P'},
    {"session-key", required_argument, NULL, 'S'},
    {"timeout", required_argument, NULL, 'T'},
    {"verbose", no_argument, NULL, 'v'},
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
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1) != 0) {
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

static int tcp_accept(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;
    do {
        fd = accept(lfd, (struct sockaddr *)&ss, &len);
    } while (fd < 0 && errno == EINTR && !app_interrupted);
    if (fd < 0) {
        if (app_interrupted)
            app_msg("interrupted before a peer connected");
        else
            app_msg("accept failed: %s", strerror(errno));
        return -1;
    }
    char a[HOST_MAX + SERV_MAX + 4];
    addr_string((struct sockaddr *)&ss, len, a, sizeof(a));
    app_msg("connection from %s", a);
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

/* Frames every message the session has for the peer. */
static int pump_output(APP_CHAT *c, TCP_IO *io)
{
    uint8_t *msg, *framed;
    size_t len, flen;
    while (p11c_session_pop_output(c->s, &msg, &len)) {
        p11c_err e = p11c_frame_stream(msg, len, &framed, &flen);
        OPENSSL_free(msg);
        if (e != P11C_OK) {
            app_msg("cannot frame a message: %s", p11c_strerror(e));
            return -1;
        }
        int r = app_buf_add(&io->out, framed, flen);
        OPENSSL_free(framed);
        if (r != 0) {
            app_msg("out of memory");
            return -1;
        }
    }
    return 0;
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

static int chat_loop(APP_CHAT *c, int fd, unsigned timeout, int initiator)
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
        int want_in = c->established && !c->finished && !io.in_eof && !c->close_sent &&
                      io.out.len - io.out.off < OUT_HIGH;
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
    if (o.key == NULL)
        return app_usage(cmd, "--key KEY is required");
    if (o.id == NULL)
        return app_usage(cmd, "--id NAME is required");
    if (!p11c_identity_valid((const uint8_t *)o.id, strlen(o.id)))
        return app_usage(cmd, "--id must be 1 to 255 bytes of UTF-8 without control characters");

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
    int ret = APP_FAIL, fd = -1, lfd = -1;
    app_signals_install();
    if (app_chat_init(&chat, &o, listening ? P11C_RESPONDER : P11C_INITIATOR) != 0)
        goto end;
    if (listening) {
        lfd = tcp_listen(host, port);
        if (lfd < 0)
            goto end;
        fd = tcp_accept(lfd);
        close(lfd);
    } else {
        fd = tcp_connect(host, port, o.timeout);
    }
    if (fd < 0)
        goto end;
    ret = chat_loop(&chat, fd, o.timeout, !listening);
    shutdown(fd, SHUT_WR);
    close(fd);
end:
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
