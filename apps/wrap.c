/*
 * wrap: runs a line-based chat program as a child and carries one P11C
 * session inside its text (spec section 9, text framing). What the user
 * types goes to the child as armored lines; armored lines the child prints
 * are fed to the session; other lines are shown marked as unencrypted.
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Chat rooms are shared: confirm less eagerly than over TCP. */
#define ACK_DELAY_MS 2000
/* A line from the chat program longer than this is not ours: dropped. */
#define MAX_CHILD_LINE (4u << 20)
/* Messages we sent, remembered to ignore chat programs that echo them. */
#define ECHO_RING 64
#define OUT_HIGH  (1u << 20)

static const char wrap_usage[] =
    "usage: p11chat wrap [--initiate] --key KEY --id NAME [OPTIONS] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND, a line-based chat program (ncat, an IRC client in line mode...),\n"
    "and carries an end-to-end encrypted session inside its text. Each line typed\n"
    "on standard input is sent as armored text ('?P11C:...') to COMMAND's input;\n"
    "armored lines in COMMAND's output, anywhere in the line, are decrypted and\n"
    "shown as 'NAME> message'; other lines are shown as '[unencrypted] ...'.\n"
    "Status lines on standard error start with the verdict on the peer\n"
    "('trusted:', 'NOT IN TRUST STORE:'). One side starts the handshake with\n"
    "--initiate once the other is in the chat. The window policy is used: lost\n"
    "or injected lines do not end the session; late ones are marked\n"
    "'[late #N]'.\n"
    "\n"
    "  --initiate                send the first handshake message\n";

static const char wrap_usage_own[] =
    "  --max-line N              longest line COMMAND takes, prefix included;\n"
    "                            longer messages are cut into pieces (default: none)\n"
    "  --line-delay MS           wait MS between lines written to COMMAND (for relays\n"
    "                            that read in blocks, or limit floods; default 0)\n"
    "  --send-prefix TEXT        put TEXT before each line sent (a channel command)\n"
    "  --timeout SECONDS         the wait for the peer's CLOSE (30)\n";

static const struct option wrap_opts[] = {
    APP_CHAT_LONGOPTS,
    {"initiate", no_argument, NULL, 'I'},
    {"max-line", required_argument, NULL, 'M'},
    {"line-delay", required_argument, NULL, 'D'},
    {"send-prefix", required_argument, NULL, 'X'},
    {"timeout", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct wrap {
    APP_CHAT chat;
    P11C_TEXT *tx;
    pid_t child;
    int to_child, from_child;
    const char *prefix;
    size_t max_line;     /* for the armor, prefix already taken off */
    APP_BUF out;         /* lines for the child */
    unsigned line_delay; /* ms between lines written to the child */
    int64_t next_write;  /* no new line before this time (line_delay) */
    APP_BUF cin;         /* partial line from the child */
    size_t cdiscard;     /* bytes of an over-long child line being dropped */
    APP_BUF uin;         /* partial line from the user */
    size_t udiscard;
    int user_eof, child_eof;
    uint8_t echo[ECHO_RING][32];
    size_t necho;
} WRAP;

static p11c_err armor_line(const char *text, size_t len, void *arg)
{
    WRAP *w = arg;
    if ((w->prefix != NULL && app_buf_add(&w->out, w->prefix, strlen(w->prefix)) != 0) ||
        app_buf_add(&w->out, text, len) != 0 || app_buf_add(&w->out, "\n", 1) != 0)
        return P11C_ERR_MEMORY;
    return P11C_OK;
}

static void digest(const uint8_t *msg, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_Digest(msg, len, out, &n, EVP_sha256(), NULL);
}

static int pump_output(WRAP *w)
{
    uint8_t *msg;
    size_t len;
    while (p11c_session_pop_output(w->chat.s, &msg, &len)) {
        digest(msg, len, w->echo[w->necho++ % ECHO_RING]);
        p11c_err e = p11c_text_encode(msg, len, w->max_line, armor_line, w);
        OPENSSL_free(msg);
        if (e != P11C_OK) {
            app_msg("cannot armor a message: %s%s", p11c_strerror(e),
                    e == P11C_ERR_LIMIT ? " (raise --max-line)" : "");
            return -1;
        }
    }
    return 0;
}

static int is_echo(const WRAP *w, const uint8_t *msg, size_t len)
{
    uint8_t d[32];
    digest(msg, len, d);
    size_t n = w->necho < ECHO_RING ? w->necho : ECHO_RING;
    for (size_t i = 0; i < n; i++)
        if (CRYPTO_memcmp(w->echo[i], d, 32) == 0)
            return 1;
    return 0;
}

static void show_plain(const char *line, size_t len)
{
    char *text = app_escape((const uint8_t *)line, len);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    char *out = malloc(n + 16);
    if (out != NULL) {
        memcpy(out, "[unencrypted] ", 14);
        memcpy(out + 14, text, n);
        out[14 + n] = '\n';
        app_write_all(STDOUT_FILENO, out, n + 15);
    }
    free(out);
    free(text);
}

static void child_line(WRAP *w, const char *line, size_t len)
{
    uint8_t *msg = NULL;
    size_t mlen = 0;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    switch (p11c_text_read(w->tx, line, len, &msg, &mlen)) {
    case P11C_TEXT_MESSAGE:
        /* Our own message repeated by the chat program is not the peer's. */
        if (!is_echo(w, msg, mlen))
            app_chat_recv(&w->chat, msg, mlen);
        OPENSSL_free(msg);
        break;
    case P11C_TEXT_PLAIN:
        show_plain(line, len);
        break;
    case P11C_TEXT_BAD:
        app_msg("dropped a malformed P11C line from the chat");
        break;
    case P11C_TEXT_NONE:
        break;
    }
}

static void read_child(WRAP *w)
{
    uint8_t buf[65536];
    ssize_t n = read(w->from_child, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        w->child_eof = 1;
        if (w->cin.len > 0 && !w->cdiscard)
            child_line(w, (const char *)w->cin.b, w->cin.len);
        w->cin.len = 0;
        if (!w->chat.established && !w->chat.finished) {
            app_msg("the chat program ended before the session was established");
            w->chat.finished = 1;
            w->chat.status = APP_FAIL;
        } else {
            app_chat_transport_end(&w->chat);
        }
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n && !w->chat.finished; i++) {
        if (buf[i] != '\n')
            continue;
        if (w->cdiscard) {
            w->cdiscard = 0;
        } else if (w->cin.len > 0) {
            if (app_buf_add(&w->cin, buf + start, i - start) == 0)
                child_line(w, (const char *)w->cin.b, w->cin.len);
            w->cin.len = 0;
        } else {
            child_line(w, (const char *)buf + start, i - start);
        }
        start = i + 1;
    }
    if (start < (size_t)n && !w->cdiscard) {
        if (w->cin.len + ((size_t)n - start) > MAX_CHILD_LINE) {
            app_msg("dropped a line of more than %u bytes from the chat program", MAX_CHILD_LINE);
            w->cdiscard = 1;
            w->cin.len = 0;
        } else if (app_buf_add(&w->cin, buf + start, (size_t)n - start) != 0) {
            app_msg("out of memory");
            w->chat.finished = 1;
        }
    }
}

static void read_user(WRAP *w)
{
    uint8_t buf[65536];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        w->user_eof = 1;
        if (w->udiscard)
            app_line_too_long(w->udiscard + w->uin.len);
        else if (w->uin.len > 0)
            app_chat_send_line(&w->chat, w->uin.b, w->uin.len);
        w->uin.len = w->udiscard = 0;
        app_chat_close(&w->chat);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n && !w->chat.finished; i++) {
        if (buf[i] != '\n')
            continue;
        size_t part = i - start;
        if (w->udiscard) {
            app_line_too_long(w->udiscard + part);
            w->udiscard = 0;
        } else if (w->uin.len > 0) {
            if (app_buf_add(&w->uin, buf + start, part) == 0)
                app_chat_send_line(&w->chat, w->uin.b, w->uin.len);
            OPENSSL_cleanse(w->uin.b, w->uin.len);
            w->uin.len = 0;
        } else {
            app_chat_send_line(&w->chat, buf + start, part);
        }
        start = i + 1;
    }
    size_t rest = (size_t)n - start;
    if (w->udiscard) {
        w->udiscard += rest;
    } else if (w->uin.len + rest > P11C_MAX_DATA) {
        w->udiscard = w->uin.len + rest;
        OPENSSL_cleanse(w->uin.b, w->uin.len);
        w->uin.len = 0;
    } else if (rest > 0) {
        app_buf_add(&w->uin, buf + start, rest);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
}

static void write_child(WRAP *w)
{
    size_t len = w->out.len - w->out.off;
    if (w->line_delay != 0) {
        /* One line at a time: relays that read in blocks and mark each
         * block with the sender's name would otherwise cut lines apart. */
        const uint8_t *nl = memchr(w->out.b + w->out.off, '\n', len);
        if (nl != NULL)
            len = (size_t)(nl - (w->out.b + w->out.off)) + 1;
    }
    ssize_t n = write(w->to_child, w->out.b + w->out.off, len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        w->out.off = w->out.len = 0;
        w->child_eof = 1;
        if (!w->chat.established && !w->chat.finished) {
            app_msg("the chat program stopped reading before the session was established");
            w->chat.finished = 1;
            w->chat.status = APP_FAIL;
        } else {
            app_chat_transport_end(&w->chat);
        }
        return;
    }
    w->out.off += (size_t)n;
    if (w->line_delay != 0 && (size_t)n == len && w->out.b[w->out.off - 1] == '\n')
        w->next_write = app_now_ms() + w->line_delay;
}

static int spawn(WRAP *w, char **argv)
{
    int in[2], out[2];
    if (pipe(in) != 0)
        return -1;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    /* Only the child's ends survive exec, as its stdin and stdout. */
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_IGN); /* Ctrl-C is for us: we close, then end the child */
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, "p11chat: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    w->child = pid;
    w->to_child = in[1];
    w->from_child = out[0];
    fcntl(w->to_child, F_SETFL, fcntl(w->to_child, F_GETFL) | O_NONBLOCK);
    fcntl(w->from_child, F_SETFL, fcntl(w->from_child, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Closes the child's input, waits a moment for it to end, then ends it. */
static void reap(WRAP *w)
{
    int st;
    if (w->to_child >= 0)
        close(w->to_child);
    w->to_child = -1;
    if (w->child <= 0)
        return;
    for (int i = 0; i < 40; i++) {
        if (waitpid(w->child, &st, WNOHANG) == w->child)
            goto done;
        if (i == 20)
            kill(w->child, SIGTERM);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(w->child, SIGKILL);
    waitpid(w->child, &st, 0);
done:
    w->child = 0;
    if (w->from_child >= 0)
        close(w->from_child);
    w->from_child = -1;
}

static int wrap_loop(WRAP *w, unsigned timeout)
{
    APP_CHAT *c = &w->chat;
    APP_TIMERS t = {.timeout = timeout, .ack_delay = ACK_DELAY_MS};

    for (;;) {
        if (pump_output(w) != 0) {
            c->finished = 1;
            c->status = APP_FAIL;
        }
        int pending = w->out.off < w->out.len && !w->child_eof;
        if (c->finished && !pending)
            break;
        int64_t hold = pending && w->next_write > app_now_ms() ? w->next_write : 0;
        if (app_interrupted && !w->user_eof) {
            w->user_eof = 1;
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
        app_timers_arm(&t, c);

        struct pollfd p[3];
        nfds_t np = 0;
        int ic = -1, ou = -1, iu = -1;
        if (!w->child_eof && !c->finished) {
            ic = (int)np;
            p[np].fd = w->from_child;
            p[np].events = POLLIN;
            p[np++].revents = 0;
        }
        if (pending && hold == 0) {
            ou = (int)np;
            p[np].fd = w->to_child;
            p[np].events = POLLOUT;
            p[np++].revents = 0;
        }
        /* Read before the session too: those lines are held (held.c). */
        if (!c->finished && !c->close_sent && !w->user_eof && w->out.len - w->out.off < OUT_HIGH) {
            iu = (int)np;
            p[np].fd = STDIN_FILENO;
            p[np].events = POLLIN;
            p[np++].revents = 0;
        }
        int64_t now = app_now_ms(), deadline = -1;
        if (t.close_deadline != 0)
            deadline = t.close_deadline;
        if (c->finished)
            deadline = app_timers_flush(&t, now);
        if (hold != 0 && (deadline < 0 || hold < deadline))
            deadline = hold;
        int r = app_poll(c, &t, p, np, deadline, now);
        if (r < 0)
            break;
        if (r == 0) {
            if (app_timers_expired(&t, c, app_now_ms()))
                break;
            continue;
        }
        if (ou >= 0 && (p[ou].revents & (POLLOUT | POLLERR | POLLHUP)))
            write_child(w);
        if (ic >= 0 && (p[ic].revents & (POLLIN | POLLHUP | POLLERR)) && !c->finished)
            read_child(w);
        if (iu >= 0 && (p[iu].revents & (POLLIN | POLLHUP | POLLERR)) && !c->finished)
            read_user(w);
    }
    return app_chat_exit(c);
}

int cmd_wrap(int argc, char **argv)
{
    APP_CHAT_OPTS o;
    memset(&o, 0, sizeof(o));
    o.timeout = 30;
    o.policy = P11C_POLICY_WINDOW;
    int initiate = 0, c;
    unsigned long max_line = 0, line_delay = 0;
    const char *prefix = NULL;
    opterr = 0;
    optind = 1;
    /* '+': stop at the first non-option, the chat program's name. */
    while ((c = getopt_long(argc, argv, "+:k:i:t:h", wrap_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(wrap_usage, stdout);
            fputs(app_chat_help, stdout);
            fputs(wrap_usage_own, stdout);
            return APP_OK;
        case 'I':
            initiate = 1;
            continue;
        case 'M':
            if (app_parse_uint(optarg, 1, 1u << 24, &max_line) != 0)
                return app_usage("wrap", "--max-line must be a number of bytes, not '%s'", optarg);
            continue;
        case 'D':
            if (app_parse_uint(optarg, 0, 10000, &line_delay) != 0)
                return app_usage("wrap", "--line-delay must be 0 to 10000 ms, not '%s'", optarg);
            continue;
        case 'X':
            prefix = optarg;
            if (strchr(prefix, '\n') != NULL)
                return app_usage("wrap", "--send-prefix cannot hold a newline");
            continue;
        case ':':
            return app_usage("wrap", "option '%s' needs a value", argv[optind - 1]);
        case '?':
            return app_usage("wrap", "unknown option '%s'", argv[optind - 1]);
        default:
            if (app_chat_option("wrap", c, optarg, &o) < 0)
                return APP_USAGE;
        }
    }
    if (optind >= argc)
        return app_usage("wrap", "the chat program to run is required (after --)");
    if (app_chat_check("wrap", &o) != APP_OK)
        return APP_USAGE;
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    /* The shortest fragment line "?P11C,xxxxxxxx,64,64,AAAA," must fit. */
    if (max_line != 0 && max_line < plen + 32)
        return app_usage("wrap", "--max-line %lu leaves no room for armored text after the prefix",
                         max_line);

    WRAP w;
    int ret = APP_FAIL;
    memset(&w, 0, sizeof(w));
    w.to_child = w.from_child = -1;
    w.prefix = prefix;
    w.max_line = max_line != 0 ? max_line - plen : 0;
    w.line_delay = (unsigned)line_delay;
    app_signals_install();
    if (app_chat_init(&w.chat, &o, initiate ? P11C_INITIATOR : P11C_RESPONDER) != 0)
        goto end;
    w.tx = p11c_text_new();
    if (w.tx == NULL) {
        app_msg("out of memory");
        goto end;
    }
    if (spawn(&w, argv + optind) != 0) {
        app_msg("cannot start '%s': %s", argv[optind], strerror(errno));
        goto end;
    }
    if (initiate) {
        p11c_err e = p11c_session_start(w.chat.s);
        if (e != P11C_OK) {
            if (!w.chat.reported)
                app_ossl_msg("cannot start the handshake: %s", p11c_strerror(e));
            goto end;
        }
        app_chat_events(&w.chat);
    }
    ret = wrap_loop(&w, o.timeout);
end:
    reap(&w);
    p11c_text_free(w.tx);
    app_buf_free(&w.out);
    app_buf_free(&w.cin);
    app_buf_free(&w.uin);
    app_chat_free(&w.chat);
    return ret;
}
