/*
 * Item 5: two p11chat processes over loopback TCP (listen and connect, the
 * command as a user runs it), messages per second and MB/s from the lines
 * written to one's standard input to the lines read from the other's
 * standard output. Reference, in alternating rounds: the same lines through
 * two ncat processes over loopback TCP, without encryption.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "bench.h"

typedef struct proc {
    pid_t pid;
    int in;  /* its standard input, or -1 */
    int out; /* its standard output, or -1 */
    int err; /* its standard error, or -1 */
} PROC;

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Starts argv with the pipes asked for; the rest goes to `log` (appended). */
static int spawn(PROC *p, char *const argv[], int pin, int pout, int perr, const char *log)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};

    memset(p, 0, sizeof(*p));
    p->in = p->out = p->err = -1;
    if ((pin && pipe(in) != 0) || (pout && pipe(out) != 0) || (perr && pipe(err) != 0))
        return 0;
    p->pid = fork();
    if (p->pid < 0)
        return 0;
    if (p->pid == 0) {
        int lg = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        dup2(pin ? in[0] : nul, 0);
        dup2(pout ? out[1] : lg, 1);
        dup2(perr ? err[1] : lg, 2);
        for (int fd = 3; fd < 256; fd++)
            close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    if (pin) {
        close(in[0]);
        p->in = in[1];
        nonblock(p->in);
    }
    if (pout) {
        close(out[1]);
        p->out = out[0];
        nonblock(p->out);
    }
    if (perr) {
        close(err[1]);
        p->err = err[0];
        nonblock(p->err);
    }
    return 1;
}

static void closefd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Waits for the process to end (killing it after `secs`); returns its status or -1. */
static int reap(PROC *p, double secs)
{
    double end = bench_now() + secs;
    struct timespec ms = {0, 2000000};
    int st = -1;
    char buf[4096];

    closefd(&p->in);
    if (p->pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid)
            break;
        /* Keep its output flowing so that it never blocks on a full pipe. */
        if (p->out >= 0)
            while (read(p->out, buf, sizeof(buf)) > 0)
                ;
        if (p->err >= 0)
            while (read(p->err, buf, sizeof(buf)) > 0)
                ;
        if (bench_now() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            st = -1;
            break;
        }
        nanosleep(&ms, NULL);
    }
    closefd(&p->out);
    closefd(&p->err);
    p->pid = 0;
    return st;
}

/* Reads the listener's standard error until it names its port. */
static int wait_port(PROC *p, double secs)
{
    char buf[4096];
    size_t len = 0;
    double end = bench_now() + secs;
    const char *key = "listening on 127.0.0.1:";

    while (bench_now() < end) {
        struct pollfd pf = {p->err, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = read(p->err, buf + len, sizeof(buf) - 1 - len);
            if (n <= 0)
                return 0;
            len += (size_t)n;
            buf[len] = '\0';
            char *at = strstr(buf, key);
            if (at != NULL && strchr(at, '\n') != NULL)
                return atoi(at + strlen(key));
            if (len == sizeof(buf) - 1)
                len = 0;
        }
    }
    return 0;
}

static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/*
 * Writes `total` bytes of lines to w->in and reads until as many bytes came
 * out of r->out, within `secs`. Returns 1 when they all arrived.
 */
static int transfer(PROC *w, PROC *r, const char *data, size_t total, double secs)
{
    size_t sent = 0, got = 0;
    double end = bench_now() + secs;
    char buf[65536];

    while (got < total) {
        struct pollfd pf[2] = {{r->out, POLLIN, 0}, {sent < total ? w->in : -1, POLLOUT, 0}};
        if (bench_now() > end)
            return 0;
        if (poll(pf, 2, 200) < 0 && errno != EINTR)
            return 0;
        if (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t n = write(w->in, data + sent, total - sent);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return 0;
            if (n > 0)
                sent += (size_t)n;
        }
        if (pf[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(r->out, buf, sizeof(buf));
            if (n == 0)
                return 0;
            if (n > 0)
                got += (size_t)n;
        }
    }
    return 1;
}

typedef struct run {
    int ncat;          /* the reference */
    size_t len, count; /* message length (without newline) and count */
    char *lines;       /* count lines of len bytes */
    const char *p11chat, *key, *log;
    char trust_a[4300], trust_b[4300];
} RUN;

/*
 * One round: start both, one line to get through the handshake, then time
 * count lines. The listener's standard input stays open (its end would close
 * the session) until the connecting side has finished.
 */
static double one_round(RUN *rn)
{
    PROC l, c;
    char port[16], hp[64];
    double t0, el = -1;
    int p;

    memset(&l, 0, sizeof(l));
    memset(&c, 0, sizeof(c));
    l.in = l.out = l.err = c.in = c.out = c.err = -1;
    if (rn->ncat) {
        p = free_port();
        snprintf(port, sizeof(port), "%d", p);
        char *la[] = {"/usr/bin/ncat", "-l", "127.0.0.1", port, NULL};
        if (p == 0 || !spawn(&l, la, 1, 1, 0, rn->log))
            goto end;
        struct timespec wait = {0, 300000000};
        nanosleep(&wait, NULL);
        char *ca[] = {"/usr/bin/ncat", "127.0.0.1", port, NULL};
        if (!spawn(&c, ca, 1, 0, 0, rn->log))
            goto end;
    } else {
        char *la[] = {(char *)rn->p11chat, "listen", "127.0.0.1:0", "--key",
                      (char *)rn->key,     "--id",   "bob",         "--trust",
                      rn->trust_b,         NULL};
        if (!spawn(&l, la, 1, 1, 1, rn->log) || (p = wait_port(&l, 30)) == 0)
            goto end;
        snprintf(hp, sizeof(hp), "127.0.0.1:%d", p);
        char *ca[] = {(char *)rn->p11chat, "connect", hp,      "--key",
                      (char *)rn->key,     "--id",    "alice", "--trust",
                      rn->trust_a,         NULL};
        if (!spawn(&c, ca, 1, 0, 0, rn->log))
            goto end;
    }
    /* Connection and handshake are not timed. */
    if (!transfer(&c, &l, "w\n", 2, 60))
        goto end;
    t0 = bench_now();
    if (transfer(&c, &l, rn->lines, rn->count * (rn->len + 1), 120))
        el = bench_now() - t0;
end:
    reap(&c, 30);
    /* The listener ends when the peer closes; ncat -l too. */
    reap(&l, 30);
    return el;
}

static int write_key(const char *path)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return 0;
    ok = PEM_write_PrivateKey(f, bench.sw_key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok;
}

void bench_tcp(void)
{
    static const struct {
        size_t len, count, quick_count;
    } sizes[] = {{64, 40000, 5000}, {16384, 2000, 300}};
    char p11chat[4300], key[4300], log[4300], name[96];
    int rounds = bench.quick ? 1 : 3;

    snprintf(p11chat, sizeof(p11chat), "%s/p11chat", bench.apps_dir);
    snprintf(key, sizeof(key), "%s/bench-key.pem", bench.dir);
    snprintf(log, sizeof(log), "%s/tcp.log", bench.dir);
    if (access(p11chat, X_OK) != 0 || access("/usr/bin/ncat", X_OK) != 0) {
        bench_note("tcp: %s or /usr/bin/ncat missing", p11chat);
        return;
    }
    if (!write_key(key)) {
        bench_note("tcp: cannot write %s", key);
        return;
    }
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        RUN rn[2];
        size_t count = bench.quick ? sizes[s].quick_count : sizes[s].count;
        size_t len = sizes[s].len;
        double rate[2][8], q[8];
        int ok = 1;
        char *lines = malloc(count * (len + 1));

        if (lines == NULL)
            return;
        for (size_t i = 0; i < count; i++) {
            for (size_t j = 0; j < len; j++)
                lines[i * (len + 1) + j] = (char)('a' + (i + j) % 26);
            lines[i * (len + 1) + len] = '\n';
        }
        for (int k = 0; k < 2; k++) {
            memset(&rn[k], 0, sizeof(rn[k]));
            rn[k].ncat = k == 0;
            rn[k].len = len;
            rn[k].count = count;
            rn[k].lines = lines;
            rn[k].p11chat = p11chat;
            rn[k].key = key;
            rn[k].log = log;
            snprintf(rn[k].trust_a, sizeof(rn[k].trust_a), "%s/trust-a", bench.dir);
            snprintf(rn[k].trust_b, sizeof(rn[k].trust_b), "%s/trust-b", bench.dir);
        }
        for (int r = 0; r < rounds && ok; r++) {
            for (int j = 0; j < 2; j++) {
                int k = (r & 1) ? 1 - j : j;
                double el = one_round(&rn[k]);
                if (el <= 0) {
                    bench_note("tcp: %s with %zu-byte lines failed (see %s)",
                               k ? "p11chat" : "ncat", len, log);
                    ok = 0;
                    break;
                }
                rate[k][r] = (double)count / el;
            }
            if (ok)
                q[r] = rate[1][r] / rate[0][r];
        }
        free(lines);
        if (!ok)
            continue;
        double m0 = bench_median(rate[0], (size_t)rounds),
               m1 = bench_median(rate[1], (size_t)rounds);
        snprintf(name, sizeof(name), "ncat -> ncat, %zu-byte lines (no encryption)", len);
        bench_row("tcp", name, m0, "msg/s", -1, -1, NULL);
        snprintf(name, sizeof(name), "  the same in MB/s");
        bench_row("tcp", name, m0 * (double)len / 1e6, "MB/s", -1, -1, NULL);
        snprintf(name, sizeof(name), "p11chat connect -> listen, %zu-byte lines", len);
        bench_row("tcp", name, m1, "msg/s", -1, bench_median(q, (size_t)rounds), "ncat");
        snprintf(name, sizeof(name), "  the same in MB/s");
        bench_row("tcp", name, m1 * (double)len / 1e6, "MB/s", -1, -1, NULL);
    }
}
