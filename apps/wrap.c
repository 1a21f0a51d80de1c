/*
 * wrap: runs a line-based chat program as a child and carries one P11C
 * session inside its text (spec section 9, text framing; room.c does the
 * rest). What the user types goes to the child as armored lines; armored
 * lines the child prints are fed to the session; other lines are shown
 * marked as unencrypted.
 */
#define _GNU_SOURCE /* execvpe, pipe2, close_range */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

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
    "--initiate once the other is in the chat. Lines from others in the chat,\n"
    "lost or injected, end neither the handshake nor the session; late ones are\n"
    "marked '[late #N]'. COMMAND gets no P11CHAT_* variable and no descriptor\n"
    "but its standard ones.\n"
    "\n"
    "  --initiate                send the first handshake message\n";

static const char wrap_usage_own[] =
    "  --max-line N              longest line COMMAND takes, prefix included; longer\n"
    "                            messages are cut into pieces (default 400, which fits\n"
    "                            IRC; 0: no limit)\n"
    "  --line-delay MS           wait MS between lines written to COMMAND, for\n"
    "                            servers that limit floods and relays that read in\n"
    "                            blocks (default 500; 0: none)\n"
    "  --send-prefix TEXT        put TEXT before each line sent (a channel command)\n"
    "  --handshake-timeout SECONDS\n"
    "                            give up when no peer completes the handshake (60)\n"
    "  --timeout SECONDS         the wait for the peer's CLOSE (30)\n";

static const struct option wrap_opts[] = {
    APP_CHAT_LONGOPTS,
    {"initiate", no_argument, NULL, 'I'},
    {"max-line", required_argument, NULL, 'M'},
    {"line-delay", required_argument, NULL, 'D'},
    {"send-prefix", required_argument, NULL, 'X'},
    {"handshake-timeout", required_argument, NULL, 'H'},
    {"timeout", required_argument, NULL, 'T'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct wrap {
    pid_t child;
    const char *prefix;
    int child_status;
} WRAP;

static int put_line(APP_ROOM *r, const char *text, size_t len)
{
    WRAP *w = r->transport;
    if ((w->prefix != NULL && app_room_raw(r, w->prefix, strlen(w->prefix)) != 0) ||
        app_room_raw(r, text, len) != 0 || app_room_raw(r, "\n", 1) != 0)
        return -1;
    return 0;
}

static void got_line(APP_ROOM *r, const char *line, size_t len)
{
    app_room_line(r, NULL, line, len);
}

/* The child itself has ended, whoever still holds its pipes (the rest of a
 * pipeline, a program it left running). */
static int child_ended(APP_ROOM *r)
{
    WRAP *w = r->transport;
    int st;
    if (w->child <= 0 || waitpid(w->child, &st, WNOHANG) != w->child)
        return 0;
    w->child = 0;
    w->child_status = st;
    return 1;
}

static const APP_ROOM_OPS wrap_ops = {
    .name = "the chat program",
    .put_line = put_line,
    .got_line = got_line,
    .ended = child_ended,
};

/* The environment without our own variables (a PIN source among them). */
static char **child_env(void)
{
    size_t n = 0, k = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "P11CHAT_", 8) != 0)
            env[k++] = environ[i];
    return env;
}

static int spawn(APP_ROOM *r, WRAP *w, char **argv)
{
    int in[2], out[2];
    char **env = child_env();
    if (env == NULL)
        return -1;
    if (pipe2(in, O_CLOEXEC) != 0) {
        free(env);
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        free(env);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        free(env);
        return -1;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_IGN); /* Ctrl-C is for us: we close, then end the child */
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            _exit(127);
        /* Only its standard descriptors: none of ours (a token's, a socket
         * we inherited) goes to the chat program. */
        close_range(3, ~0u, 0);
        execvpe(argv[0], argv, env);
        fprintf(stderr, "p11chat: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(env);
    close(in[0]);
    close(out[1]);
    w->child = pid;
    r->wfd = in[1];
    r->rfd = out[0];
    fcntl(r->wfd, F_SETFL, fcntl(r->wfd, F_GETFL) | O_NONBLOCK);
    fcntl(r->rfd, F_SETFL, fcntl(r->rfd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Closes the child's input, waits a moment for it to end, then ends it. */
static void reap(APP_ROOM *r, WRAP *w)
{
    int st;
    if (r->wfd >= 0)
        close(r->wfd);
    r->wfd = -1;
    if (w->child > 0) {
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
    }
done:
    w->child = 0;
    if (r->rfd >= 0)
        close(r->rfd);
    r->rfd = -1;
}

int cmd_wrap(int argc, char **argv)
{
    APP_CHAT_OPTS o;
    APP_ROOM_OPTS ro = {
        .max_line = ROOM_MAX_LINE, .line_delay = ROOM_LINE_DELAY_MS, .hs_timeout = ROOM_HS_TIMEOUT};
    memset(&o, 0, sizeof(o));
    o.timeout = 30;
    int c;
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
        case 'X':
            prefix = optarg;
            if (strchr(prefix, '\n') != NULL)
                return app_usage("wrap", "--send-prefix cannot hold a newline");
            continue;
        case ':':
            return app_usage("wrap", "option '%s' needs a value", argv[optind - 1]);
        case '?':
            return app_usage("wrap", "unknown option '%s'", argv[optind - 1]);
        default: {
            int k = app_room_option("wrap", c, optarg, &ro);
            if (k == 0)
                k = app_chat_option("wrap", c, optarg, &o);
            if (k < 0)
                return APP_USAGE;
        }
        }
    }
    if (optind >= argc)
        return app_usage("wrap", "the chat program to run is required (after --)");
    if (app_chat_check("wrap", &o) != APP_OK)
        return APP_USAGE;
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    /* A handshake message in at most 64 pieces must fit after the prefix. */
    if (ro.max_line != 0 && ro.max_line < plen + 64)
        return app_usage("wrap", "--max-line %lu leaves no room for armored text after the prefix",
                         ro.max_line);

    APP_ROOM r;
    WRAP w = {.prefix = prefix};
    int ret = APP_FAIL;
    app_signals_install();
    if (app_room_init(&r, &o, &ro, &wrap_ops) != 0)
        goto end;
    r.transport = &w;
    char why[64];
    snprintf(why, sizeof(why), "--max-line %lu", ro.max_line);
    app_room_set_max_line(&r, ro.max_line != 0 ? ro.max_line - plen : 0, why);
    if (spawn(&r, &w, argv + optind) != 0) {
        app_msg("cannot start '%s': %s", argv[optind], strerror(errno));
        goto end;
    }
    r.ready = 1;
    ret = app_room_run(&r, o.timeout);
end:
    reap(&r, &w);
    app_room_free(&r);
    return ret;
}
