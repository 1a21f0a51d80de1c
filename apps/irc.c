/*
 * irc: one P11C session over IRC, spoken by p11chat itself (the client
 * subset of RFC 2812 a conversation needs: NICK/USER, JOIN, PRIVMSG to a
 * nick or a channel, PING/PONG, the numeric errors). The session's lines are
 * PRIVMSGs (room.c does the rest); their length is computed from the prefix
 * the server puts in front when it relays them, so that every relayed line
 * fits IRC's 512 bytes.
 */
#include "app.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define IRC_LINE   512  /* RFC 2812: a message, CR LF included */
#define IRC_MAX_IN 8192 /* longest line taken from a server (tags, lax servers) */
#define MAX_PARAMS 15

static const char irc_usage[] =
    "usage: p11chat irc HOST:PORT --nick NICK --to NICK|#CHANNEL --key KEY --id NAME\n"
    "                   [OPTIONS]\n"
    "\n"
    "Connects to an IRC server and carries an end-to-end encrypted session in\n"
    "PRIVMSGs: to the peer's nick (--to bob), or in a channel (--to '#room'),\n"
    "where everyone else sees only '?P11C' text. Each line typed is one message;\n"
    "each message received is shown as 'NAME> message'; what others write, and\n"
    "anything not encrypted, is shown as '[unencrypted] <nick> ...'. Status lines\n"
    "on standard error start with the verdict on the peer. One side starts the\n"
    "handshake with --initiate once the other is there. Lines are cut to fit\n"
    "the 512 bytes IRC relays, after the prefix the server adds, and paced\n"
    "under its flood control. Exit status as for 'connect'; 3 when the peer\n"
    "left without CLOSE.\n"
    "\n"
    "  --initiate                send the first handshake message\n"
    "  --nick NICK               our nickname on the server\n"
    "  --user NAME               the user name given to the server (default: NICK)\n"
    "  --to NICK|#CHANNEL        the peer's nickname, or the channel to join\n";

static const char irc_usage_own[] =
    "  --line-delay MS           after a burst of 5 lines, one line every MS (500)\n"
    "  --handshake-timeout SECONDS\n"
    "                            give up when no peer completes the handshake (60)\n"
    "  --timeout SECONDS         connecting, and the wait for the peer's CLOSE (30)\n";

static const struct option irc_opts[] = {
    APP_CHAT_LONGOPTS,
    {"initiate", no_argument, NULL, 'I'},
    {"nick", required_argument, NULL, 'n'},
    {"user", required_argument, NULL, 'u'},
    {"to", required_argument, NULL, 'o'},
    {"line-delay", required_argument, NULL, 'D'},
    {"handshake-timeout", required_argument, NULL, 'H'},
    {"timeout", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct irc {
    char nick[64];
    const char *target; /* a nick, or a channel */
    int channel;
    int registered, joined;
    char prefix[400]; /* nick!user@host as others see us, once known */
} IRC;

typedef struct irc_msg {
    char *src;  /* the prefix, or NULL */
    char *nick; /* the prefix's nick, or NULL */
    char *cmd;
    char *param[MAX_PARAMS];
    int n;
} IRC_MSG;

/* Splits one line (modified in place): [":" prefix SP] command *(SP param)
 * [SP ":" trailing]. */
static int parse(char *s, IRC_MSG *m)
{
    memset(m, 0, sizeof(*m));
    if (*s == '@') { /* message tags (IRCv3): not ours */
        s = strchr(s, ' ');
        if (s == NULL)
            return -1;
        while (*s == ' ')
            s++;
    }
    if (*s == ':') {
        m->src = ++s;
        s = strchr(s, ' ');
        if (s == NULL)
            return -1;
        *s++ = '\0';
        char *bang = strchr(m->src, '!');
        if (bang != NULL) {
            m->nick = strndup(m->src, (size_t)(bang - m->src));
            if (m->nick == NULL)
                return -1;
        }
    }
    while (*s == ' ')
        s++;
    m->cmd = s;
    s = strchr(s, ' ');
    while (s != NULL && m->n < MAX_PARAMS) {
        *s++ = '\0';
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        if (*s == ':') {
            m->param[m->n++] = s + 1;
            break;
        }
        m->param[m->n++] = s;
        s = strchr(s, ' ');
    }
    return *m->cmd != '\0' ? 0 : -1;
}

static int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* Says why (what the server sent escaped with the rest) and ends. */
static void irc_fail(APP_ROOM *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void irc_fail(APP_ROOM *r, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *e = app_escape((const uint8_t *)buf, strlen(buf));
    app_msg("%s", e != NULL ? e : buf);
    free(e);
    r->chat.finished = 1;
    r->chat.status = APP_FAIL;
}

/* Ready once others' view of us is known (and the channel joined): the
 * text a PRIVMSG may hold is what 512 bytes leave after the server's
 * ":nick!user@host PRIVMSG target :" and CR LF. */
static void check_ready(APP_ROOM *r, IRC *irc)
{
    if (r->ready || irc->prefix[0] == '\0' || (irc->channel && !irc->joined))
        return;
    size_t head = 1 + strlen(irc->prefix) + strlen(" PRIVMSG ") + strlen(irc->target) + 2;
    app_room_set_max_line(r, IRC_LINE - 2 - head, "IRC's 512-byte lines");
    r->ready = 1;
}

static void privmsg(APP_ROOM *r, IRC *irc, IRC_MSG *m)
{
    if (m->n < 2 || m->nick == NULL)
        return; /* a server's own notice */
    const char *to = m->param[0], *text = m->param[1];
    if (irc->channel ? same(to, irc->target) : same(to, irc->nick) && same(m->nick, irc->target))
        app_room_line(r, m->nick, text, strlen(text));
    else if (strcmp(m->cmd, "PRIVMSG") == 0)
        /* Someone else, privately: never the session, always marked. */
        app_room_plain(r, m->nick, text, strlen(text));
}

/* Our peer, as the server names it: the nick whose lines completed the
 * handshake, or the one we talk to privately. */
static const char *peer_nick(const APP_ROOM *r, const IRC *irc)
{
    return r->peer_who[0] != '\0' ? r->peer_who : irc->channel ? NULL : irc->target;
}

static void peer_left(APP_ROOM *r, const char *nick, const char *how, const char *why)
{
    char msg[600];
    char *n = app_escape((const uint8_t *)nick, strlen(nick));
    char *w = app_escape((const uint8_t *)(why ? why : ""), why ? strlen(why) : 0);
    snprintf(msg, sizeof(msg), "'%s' %s%s%s%s", n ? n : "?", how, w && *w ? " (" : "", w ? w : "",
             w && *w ? ")" : "");
    free(n);
    free(w);
    app_room_transport_end(r, msg);
}

static void numeric(APP_ROOM *r, IRC *irc, IRC_MSG *m, int code)
{
    const char *last = m->n > 0 ? m->param[m->n - 1] : "";
    const char *what = m->n > 2 ? m->param[1] : "";
    switch (code) {
    case 1: /* RPL_WELCOME: registered, under the nick the server confirms */
        irc->registered = 1;
        if (m->n > 0)
            snprintf(irc->nick, sizeof(irc->nick), "%s", m->param[0]);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "USERHOST %s\r\n", irc->nick);
        app_room_raw(r, cmd, strlen(cmd));
        if (irc->channel) {
            snprintf(cmd, sizeof(cmd), "JOIN %s\r\n", irc->target);
            app_room_raw(r, cmd, strlen(cmd));
        }
        return;
    case 302: { /* RPL_USERHOST: "nick[*]=+user@host" */
        char *eq = strchr(last, '=');
        if (eq != NULL && eq[1] != '\0' && eq[2] != '\0' && irc->prefix[0] == '\0') {
            snprintf(irc->prefix, sizeof(irc->prefix), "%s!%s", irc->nick, eq + 2);
            check_ready(r, irc);
        }
        return;
    }
    case 401: /* ERR_NOSUCHNICK */
        if (r->chat.established && same(what, peer_nick(r, irc)))
            peer_left(r, what, "is no longer on the IRC server", "401 No such nick");
        else if (!r->chat.established)
            irc_fail(r, "no one is on the IRC server as '%s' (401 %s): start the peer first", what,
                     last);
        return;
    case 432: /* ERR_ERRONEUSNICKNAME */
    case 433: /* ERR_NICKNAMEINUSE */
    case 436: /* ERR_NICKCOLLISION */
        if (!irc->registered)
            irc_fail(r, "the IRC server refuses the nick '%s' (%s): choose another with --nick",
                     what, last);
        return;
    case 403: /* ERR_NOSUCHCHANNEL */
    case 404: /* ERR_CANNOTSENDTOCHAN */
    case 405: /* ERR_TOOMANYCHANNELS */
    case 471: /* ERR_CHANNELISFULL */
    case 473: /* ERR_INVITEONLYCHAN */
    case 474: /* ERR_BANNEDFROMCHAN */
    case 475: /* ERR_BADCHANNELKEY */
        irc_fail(r, "the IRC server refuses us %s: %s", what, last);
        return;
    default:
        if (code >= 400 && code < 600) {
            char *t = app_escape((const uint8_t *)last, strlen(last));
            app_msg("IRC server: %s (%d)", t ? t : "", code);
            free(t);
        }
    }
}

static void got_line(APP_ROOM *r, const char *line, size_t len)
{
    IRC *irc = r->transport;
    IRC_MSG m;
    char buf[IRC_MAX_IN + 1];
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > IRC_MAX_IN)
        return;
    memcpy(buf, line, len);
    buf[len] = '\0';
    if (parse(buf, &m) != 0)
        goto end;
    if (strcmp(m.cmd, "PING") == 0) {
        char pong[IRC_MAX_IN + 16];
        snprintf(pong, sizeof(pong), "PONG :%s\r\n", m.n > 0 ? m.param[0] : "");
        app_room_raw(r, pong, strlen(pong));
    } else if (strcmp(m.cmd, "PRIVMSG") == 0 || strcmp(m.cmd, "NOTICE") == 0) {
        privmsg(r, irc, &m);
    } else if (strcmp(m.cmd, "JOIN") == 0) {
        if (same(m.nick, irc->nick) && m.n > 0 && same(m.param[0], irc->target)) {
            irc->joined = 1;
            if (irc->prefix[0] == '\0' && strlen(m.src) < sizeof(irc->prefix))
                snprintf(irc->prefix, sizeof(irc->prefix), "%s", m.src);
            check_ready(r, irc);
        }
    } else if (strcmp(m.cmd, "QUIT") == 0) {
        if (r->chat.established && same(m.nick, peer_nick(r, irc)))
            peer_left(r, m.nick, "left IRC", m.n > 0 ? m.param[0] : NULL);
    } else if (strcmp(m.cmd, "PART") == 0) {
        if (r->chat.established && m.n > 0 && same(m.param[0], irc->target) &&
            same(m.nick, peer_nick(r, irc)))
            peer_left(r, m.nick, "left the channel", m.n > 1 ? m.param[1] : NULL);
    } else if (strcmp(m.cmd, "KICK") == 0) {
        if (m.n > 1 && same(m.param[1], irc->nick))
            irc_fail(r, "kicked out of %s: %s", m.param[0], m.n > 2 ? m.param[2] : "");
        else if (r->chat.established && m.n > 1 && same(m.param[1], peer_nick(r, irc)))
            peer_left(r, m.param[1], "was kicked out of the channel", m.n > 2 ? m.param[2] : NULL);
    } else if (strcmp(m.cmd, "NICK") == 0 && m.n > 0) {
        if (same(m.nick, irc->nick))
            snprintf(irc->nick, sizeof(irc->nick), "%s", m.param[0]);
        else if (same(m.nick, r->peer_who))
            snprintf(r->peer_who, sizeof(r->peer_who), "%s", m.param[0]);
    } else if (strcmp(m.cmd, "ERROR") == 0) {
        char why[600];
        char *t = m.n > 0 ? app_escape((const uint8_t *)m.param[0], strlen(m.param[0])) : NULL;
        snprintf(why, sizeof(why), "the IRC server ended the connection: %s", t ? t : "");
        free(t);
        app_room_transport_end(r, why);
    } else if (strlen(m.cmd) == 3 && m.cmd[0] >= '0' && m.cmd[0] <= '9') {
        numeric(r, irc, &m, atoi(m.cmd));
    }
end:
    free(m.nick);
}

static int put_line(APP_ROOM *r, const char *text, size_t len)
{
    IRC *irc = r->transport;
    if (app_room_raw(r, "PRIVMSG ", 8) != 0 ||
        app_room_raw(r, irc->target, strlen(irc->target)) != 0 || app_room_raw(r, " :", 2) != 0 ||
        app_room_raw(r, text, len) != 0 || app_room_raw(r, "\r\n", 2) != 0)
        return -1;
    return 0;
}

static const APP_ROOM_OPS irc_ops = {
    .name = "the IRC server",
    .put_line = put_line,
    .got_line = got_line,
};

/* A nick, user name or target: 1 to max bytes, no space, comma, control
 * character or leading ':' (it would change the command's meaning). */
static int irc_word(const char *s, size_t max, int comma_ok)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == ':')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || (!comma_ok && s[i] == ','))
            return 0;
    return 1;
}

int cmd_irc(int argc, char **argv)
{
    APP_CHAT_OPTS o;
    APP_ROOM_OPTS ro = {.line_delay = ROOM_LINE_DELAY_MS, .hs_timeout = ROOM_HS_TIMEOUT};
    IRC irc;
    const char *nick = NULL, *user = NULL, *to = NULL;
    memset(&o, 0, sizeof(o));
    memset(&irc, 0, sizeof(irc));
    o.timeout = 30;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":k:i:t:h", irc_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(irc_usage, stdout);
            fputs(app_chat_help, stdout);
            fputs(irc_usage_own, stdout);
            return APP_OK;
        case 'n':
            nick = optarg;
            continue;
        case 'u':
            user = optarg;
            continue;
        case 'o':
            to = optarg;
            continue;
        case ':':
            return app_usage("irc", "option '%s' needs a value", argv[optind - 1]);
        case '?':
            return app_usage("irc", "unknown option '%s'", argv[optind - 1]);
        default: {
            int k = app_room_option("irc", c, optarg, &ro);
            if (k == 0)
                k = app_chat_option("irc", c, optarg, &o);
            if (k < 0)
                return APP_USAGE;
        }
        }
    }
    if (optind >= argc)
        return app_usage("irc", "HOST:PORT of the IRC server is required");
    if (optind + 1 < argc)
        return app_usage("irc", "unexpected argument '%s'", argv[optind + 1]);
    if (nick == NULL || !irc_word(nick, 30, 0))
        return app_usage("irc", "--nick NICK is required: 1 to 30 characters, no space or comma");
    if (user != NULL && !irc_word(user, 30, 0))
        return app_usage("irc", "--user must be 1 to 30 characters, no space or comma");
    if (to == NULL || !irc_word(to, 200, 0))
        return app_usage("irc", "--to NICK|#CHANNEL is required: no space or comma");
    if (app_chat_check("irc", &o) != APP_OK)
        return APP_USAGE;
    char *hp = strdup(argv[optind]), *host, *port;
    if (hp == NULL)
        return APP_FAIL;
    if (app_split_hostport(hp, &host, &port) != 0 || host == NULL || strcmp(port, "0") == 0) {
        free(hp);
        return app_usage("irc", "'%s' is not HOST:PORT", argv[optind]);
    }

    APP_ROOM r;
    int ret = APP_FAIL, fd = -1;
    snprintf(irc.nick, sizeof(irc.nick), "%s", nick);
    irc.target = to;
    irc.channel = strchr("#&+!", to[0]) != NULL;
    app_signals_install();
    if (app_room_init(&r, &o, &ro, &irc_ops) != 0)
        goto end;
    r.transport = &irc;
    r.burst = ROOM_BURST;
    r.max_rline = IRC_MAX_IN;
    /* Whom we wait for: the --peer asked for (set by the room), else this. */
    if (o.peer == NULL && irc.channel)
        snprintf(r.peer_label, sizeof(r.peer_label), "a peer in %s", to);
    else if (o.peer == NULL)
        snprintf(r.peer_label, sizeof(r.peer_label), "'%s'", to);
    fd = app_tcp_connect(host, port, o.timeout);
    if (fd < 0)
        goto end;
    r.rfd = r.wfd = fd;
    char reg[200];
    snprintf(reg, sizeof(reg), "NICK %s\r\nUSER %s 0 * :p11chat\r\n", nick,
             user != NULL ? user : nick);
    app_room_raw(&r, reg, strlen(reg));
    ret = app_room_run(&r, o.timeout);
    if (!r.transport_eof) {
        /* Everything else went out; leave politely (best effort). */
        static const char quit[] = "QUIT :p11chat\r\n";
        if (write(fd, quit, sizeof(quit) - 1) > 0)
            shutdown(fd, SHUT_WR);
    }
end:
    if (fd >= 0)
        close(fd);
    app_room_free(&r);
    free(hp);
    return ret;
}
