#include "apps_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "testutil.h"

#define MAX_PROCS 16

static TPROC *procs[MAX_PROCS];
static char tmpdir[512];
static char *paths[256];
static size_t npaths;

static void die(const char *what)
{
    fprintf(stderr, "apps test setup: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void cleanup(void)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] != NULL && procs[i]->pid > 0)
            kill(procs[i]->pid, SIGKILL);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    npaths = 0;
    if (tmpdir[0] != '\0') {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *ta_p11chat(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/p11chat", tu_apps_dir());
    return path;
}

const char *ta_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/p11chat-apps-XXXXXX", base ? base : "/tmp");
        if (mkdtemp(tmpdir) == NULL)
            die("mkdtemp");
        atexit(cleanup);
        signal(SIGPIPE, SIG_IGN);
    }
    return tmpdir;
}

/* Every path handed out stays valid until exit. */
const char *ta_path(const char *name)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", ta_tmpdir(), name);
    for (size_t i = 0; i < npaths; i++)
        if (strcmp(paths[i], p) == 0)
            return paths[i];
    if (npaths == sizeof(paths) / sizeof(paths[0])) {
        errno = ENOMEM;
        die("too many paths");
    }
    paths[npaths] = strdup(p);
    if (paths[npaths] == NULL)
        die("strdup");
    return paths[npaths++];
}

void ta_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
    /* Keys, PINs and trust stores are the user's alone. */
    if (chmod(path, 0600) != 0)
        die(path);
}

static json_t *keys_json(void)
{
    static json_t *j;
    if (j == NULL)
        j = tu_vector_load("protocol/keys.json");
    return j;
}

/* The private PEM of a vector key: keys.json, else the keys of
 * handshake_suite2.json (the EC ones: "alice_p256", "bob_p384", ...). */
static const char *key_pem_text(const char *name)
{
    static json_t *suite2;
    json_t *k = json_object_get(json_object_get(keys_json(), "keys"), name);
    if (k != NULL)
        return tu_json_str(k, "private_pkcs8_pem");
    if (suite2 == NULL)
        suite2 = tu_vector_load("protocol/handshake_suite2.json");
    const char *pem = json_string_value(json_object_get(json_object_get(suite2, "keys"), name));
    if (pem == NULL)
        die("no such vector key");
    return pem;
}

const char *ta_key_pem(const char *name)
{
    char file[128];
    snprintf(file, sizeof(file), "%s.pem", name);
    const char *path = ta_path(file);
    const char *pem = key_pem_text(name);
    ta_write_file(path, pem, strlen(pem));
    return path;
}

const char *ta_pub_pem(const char *name)
{
    char file[128];
    snprintf(file, sizeof(file), "%s.pub.pem", name);
    const char *path = ta_path(file);
    const char *pem = key_pem_text(name);
    BIO *in = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    BIO *out = BIO_new_file(path, "w");
    if (pkey == NULL || out == NULL || !PEM_write_bio_PUBKEY(out, pkey))
        die("writing a public PEM");
    BIO_free(out);
    BIO_free(in);
    EVP_PKEY_free(pkey);
    return path;
}

static const json_t *fp_entry(const char *name)
{
    static json_t *j;
    if (j == NULL)
        j = tu_vector_load("protocol/fingerprint.json");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        if (strcmp(tu_json_str(t, "key"), name) == 0)
            return t;
    }
    fprintf(stderr, "no fingerprint vector for %s\n", name);
    exit(2);
}

const char *ta_fp_hex(const char *name)
{
    return tu_json_str(fp_entry(name), "sha256");
}

const char *ta_fp_short(const char *name)
{
    return tu_json_str(fp_entry(name), "short");
}

const char *ta_trust_store(const char *file, const char *name, const char *hex)
{
    char line[512];
    const char *path = ta_path(file);
    snprintf(line, sizeof(line), "%s %s\n", name, hex);
    ta_write_file(path, line, strlen(line));
    return path;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ta_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int64_t ta_now_ms(void)
{
    return now_ms();
}

int tp_start(TPROC *p, char *const argv[])
{
    int in[2], out[2], err[2];
    memset(p, 0, sizeof(*p));
    p->status = -1;
    ta_tmpdir();
    if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0)
        die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (int fd = 3; fd < 256; fd++)
            close(fd);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    p->pid = pid;
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
    p->ocap = p->ecap = 4096;
    p->obuf = calloc(1, p->ocap);
    p->ebuf = calloc(1, p->ecap);
    if (p->obuf == NULL || p->ebuf == NULL)
        die("calloc");
    for (int i = 0; i < MAX_PROCS; i++) {
        if (procs[i] == NULL) {
            procs[i] = p;
            break;
        }
    }
    return 0;
}

int tp_p11chat(TPROC *p, ...)
{
    char *argv[64];
    int n = 0;
    va_list ap;
    argv[n++] = (char *)ta_p11chat();
    va_start(ap, p);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return tp_start(p, argv);
}

static int drain(int *fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[65536];
    int got = 0;
    for (;;) {
        ssize_t n = read(*fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return got;
        if (n == 0) {
            close(*fd);
            *fd = -1;
            return 1;
        }
        while (*len + (size_t)n + 1 > *cap) {
            *cap *= 2;
            *buf = realloc(*buf, *cap);
            if (*buf == NULL)
                die("realloc");
        }
        memcpy(*buf + *len, tmp, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = '\0';
        got = 1;
    }
}

static void reap(TPROC *p)
{
    int st;
    if (p->pid > 0 && waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        p->pid = 0;
    }
}

/* One round of draining every registered process, waiting at most ms. */
static void pump(int ms)
{
    struct pollfd pf[2 * MAX_PROCS];
    int n = 0;
    for (int i = 0; i < MAX_PROCS; i++) {
        TPROC *p = procs[i];
        if (p == NULL)
            continue;
        if (p->out >= 0)
            pf[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
        if (p->err >= 0)
            pf[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
    }
    if (n > 0)
        poll(pf, (nfds_t)n, ms);
    else if (ms > 0)
        nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
    for (int i = 0; i < MAX_PROCS; i++) {
        TPROC *p = procs[i];
        if (p == NULL)
            continue;
        if (p->out >= 0)
            drain(&p->out, &p->obuf, &p->olen, &p->ocap);
        if (p->err >= 0)
            drain(&p->err, &p->ebuf, &p->elen, &p->ecap);
        if (p->out < 0 && p->err < 0)
            reap(p);
    }
}

void tp_pump(int ms)
{
    pump(ms);
}

int tp_write(TPROC *p, const void *s, size_t len)
{
    const char *c = s;
    int64_t end = now_ms() + 20000;
    fcntl(p->in, F_SETFL, O_NONBLOCK);
    while (len > 0 && p->in >= 0) {
        ssize_t n = write(p->in, c, len);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            c += n;
            len -= (size_t)n;
        } else {
            if (now_ms() > end)
                return -1;
            pump(10);
        }
    }
    return len == 0 ? 0 : -1;
}

int tp_puts(TPROC *p, const char *s)
{
    return tp_write(p, s, strlen(s));
}

void tp_close_in(TPROC *p)
{
    if (p->in >= 0)
        close(p->in);
    p->in = -1;
}

int tp_wait_for(TPROC *p, int which, const char *needle, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        const char *buf = which == 1 ? p->obuf : p->ebuf;
        if (strstr(buf, needle) != NULL)
            return 1;
        int closed = which == 1 ? p->out < 0 : p->err < 0;
        if (closed || now_ms() >= end)
            return 0;
        pump(20);
    }
}

int tp_wait_exit(TPROC *p, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (p->pid > 0 || p->out >= 0 || p->err >= 0) {
        if (now_ms() >= end) {
            fprintf(stderr, "[killing pid %d after %d ms]\n", (int)p->pid, timeout_ms);
            tp_kill(p);
            return p->status;
        }
        pump(20);
        if (p->out < 0 && p->err < 0)
            reap(p);
    }
    return p->status;
}

void tp_signal(TPROC *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

void tp_kill(TPROC *p)
{
    if (p->pid > 0) {
        int st;
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &st, 0);
        p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        p->pid = 0;
    }
    if (p->out >= 0)
        drain(&p->out, &p->obuf, &p->olen, &p->ocap);
    if (p->err >= 0)
        drain(&p->err, &p->ebuf, &p->elen, &p->ecap);
}

void tp_free(TPROC *p)
{
    tp_kill(p);
    tp_close_in(p);
    if (p->out >= 0)
        close(p->out);
    if (p->err >= 0)
        close(p->err);
    p->out = p->err = -1;
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i] == p)
            procs[i] = NULL;
    free(p->obuf);
    free(p->ebuf);
    p->obuf = p->ebuf = NULL;
}

static int run_v(const char *input, int keep_in, char **out, char **err, int timeout_ms, va_list ap)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)ta_p11chat();
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        argv[n++] = (char *)a;
    argv[n] = NULL;

    TPROC p;
    tp_start(&p, argv);
    if (input != NULL)
        tp_puts(&p, input);
    if (!keep_in)
        tp_close_in(&p);
    int st = tp_wait_exit(&p, timeout_ms);
    if (out != NULL)
        *out = strdup(p.obuf);
    if (err != NULL)
        *err = strdup(p.ebuf);
    tp_free(&p);
    return st;
}

int ta_run(const char *input, char **out, char **err, int timeout_ms, ...)
{
    va_list ap;
    va_start(ap, timeout_ms);
    int st = run_v(input, 0, out, err, timeout_ms, ap);
    va_end(ap);
    return st;
}

int ta_run_open(char **out, char **err, int timeout_ms, ...)
{
    va_list ap;
    va_start(ap, timeout_ms);
    int st = run_v(NULL, 1, out, err, timeout_ms, ap);
    va_end(ap);
    return st;
}

size_t ta_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

int tp_listen(TPROC *p, ...)
{
    char *argv[64];
    int n = 0;
    va_list ap;
    argv[n++] = (char *)ta_p11chat();
    argv[n++] = "listen";
    argv[n++] = "127.0.0.1:0";
    va_start(ap, p);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    tp_start(p, argv);
    if (!tp_wait_for(p, 2, "listening on 127.0.0.1:", 20000))
        return 0;
    int64_t end = now_ms() + 2000;
    const char *at = strstr(p->ebuf, "listening on 127.0.0.1:");
    while (strchr(at, '\n') == NULL && now_ms() < end) {
        pump(20);
        at = strstr(p->ebuf, "listening on 127.0.0.1:"); /* the buffer may have moved */
    }
    return atoi(at + strlen("listening on 127.0.0.1:"));
}
