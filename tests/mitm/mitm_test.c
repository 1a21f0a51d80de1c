/*
 * An attacker in the middle of two p11chat processes on loopback.
 *
 * Bob runs `p11chat listen`, Alice `p11chat connect` to our proxy, and the
 * proxy relays the stream frames (u32 length || message) between them,
 * changing them as each scenario says: flipped bits in every handshake
 * message and in records, replays, reflection, drops, reordering,
 * truncation, records spliced from another session, and handshake messages
 * replaced by ones signed with the attacker's own key. Each scenario checks
 * exit codes, the reason on stderr, and that standard output holds only
 * messages Alice really sent, in order, each at most once.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "testutil.h"
#include "p11chat.h"

#define ALL        "m1\nm2\nm3\nm4\nm5\n" /* what Alice sends */
#define MAX_FRAMES 64
#define A2B        0
#define B2A        1

static char work[512];
static char cmd_path[512];
static unsigned long scenarios_run;

/* ---- frames ---------------------------------------------------------- */

typedef struct {
    uint8_t *buf; /* whole frame: u32 length || message */
    size_t len;
} frame;

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes;

static void bytes_add(bytes *b, const uint8_t *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (b->data == NULL)
            abort();
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Takes one complete frame off the front of b, if there is one. */
static int frame_take(bytes *b, frame *f)
{
    if (b->len < 4)
        return 0;
    size_t n =
        (size_t)b->data[0] << 24 | (size_t)b->data[1] << 16 | (size_t)b->data[2] << 8 | b->data[3];
    if (n > P11C_MAX_FRAME + 16 || b->len < 4 + n)
        return 0;
    f->len = 4 + n;
    f->buf = malloc(f->len);
    memcpy(f->buf, b->data, f->len);
    memmove(b->data, b->data + f->len, b->len - f->len);
    b->len -= f->len;
    return 1;
}

static frame frame_of(const uint8_t *msg, size_t len)
{
    frame f = {malloc(len + 4), len + 4};
    f.buf[0] = (uint8_t)(len >> 24);
    f.buf[1] = (uint8_t)(len >> 16);
    f.buf[2] = (uint8_t)(len >> 8);
    f.buf[3] = (uint8_t)len;
    memcpy(f.buf + 4, msg, len);
    return f;
}

/* ---- a scenario ------------------------------------------------------ */

typedef struct relay relay;
/* Called for each frame; sends what it wants with relay_send (or nothing). */
typedef void (*hook_fn)(relay *r, int dir, unsigned idx, frame *f);

struct relay {
    int fd[2]; /* fd[A2B] is Bob's side (we write A2B frames to it), fd[B2A] Alice's */
    bytes in[2];
    unsigned count[2];
    hook_fn hook;
    frame held[2][MAX_FRAMES];
    unsigned nheld[2];
    frame seen[2][MAX_FRAMES]; /* copies of every frame, for replays */
    int cut;                   /* close both connections now */
};

static void relay_send(relay *r, int dir, const frame *f)
{
    int fd = r->fd[dir];
    size_t off = 0;
    while (off < f->len && fd >= 0) {
        ssize_t n = write(fd, f->buf + off, f->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

typedef struct {
    const char *name;
    hook_fn hook;
    const char *bob_policy; /* NULL: strict (the default) */
    int bob_known_only;
    int want_alice, want_bob;        /* exit codes; -1: any non-zero, -2: any */
    const char *alice_err, *bob_err; /* must appear on stderr (NULL: nothing asked) */
    const char *bob_out;             /* exactly Bob's standard output (NULL: a prefix of ALL) */
    const char *alice_out;           /* exactly Alice's standard output */
} scenario;

/* Bob shows each message under Alice's name (else --raw: the message alone). */
static int bob_names;

/* ---- processes --------------------------------------------------------- */

static pid_t spawn(char *const argv[], int *stdin_fd, const char *out, const char *err)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[0], 0);
        close(p[0]);
        close(p[1]);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[0]);
    *stdin_fd = p[1];
    return pid;
}

static int wait_exit(pid_t pid, int secs)
{
    for (int i = 0; i < secs * 20; i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 999; /* hung */
}

static char *slurp(const char *path);

/* Bob, the listener, drops a connection whose handshake failed and waits for
 * the next one: once he says so, this scenario is over for him. */
static int wait_exit_listener(pid_t pid, int secs, const char *err)
{
    int stopped = 0;
    for (int i = 0; i < secs * 20; i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (!stopped) {
            char *e = slurp(err);
            /* Once: a second SIGTERM would end it at once (status 130). */
            if (strstr(e, "; still listening\n") != NULL && kill(pid, SIGTERM) == 0)
                stopped = 1;
            free(e);
        }
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 999; /* hung */
}

static char *slurp(const char *path)
{
    char *out = NULL;
    if (tu_run(&out, "cat '%s'", path) != 0) {
        free(out);
        return strdup("");
    }
    return out;
}

static int listen_any(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 4) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0) {
        close(s);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return s;
}

static int connect_retry(int port)
{
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
            return s;
        close(s);
        nanosleep(&(struct timespec){0, 25000000}, NULL);
    }
    return -1;
}

static int accept_timeout(int ls, int secs)
{
    struct pollfd p = {ls, POLLIN, 0};
    if (poll(&p, 1, secs * 1000) != 1)
        return -1;
    return accept(ls, NULL, NULL);
}

/* Relays until both sides have closed, or a time limit. */
static void relay_run(relay *r)
{
    time_t end = time(NULL) + 20;
    int open_fds = 2;
    while (open_fds > 0 && time(NULL) < end && !r->cut) {
        struct pollfd p[2];
        for (int d = 0; d < 2; d++) {
            /* Frames going A2B are read from Alice's socket, fd[B2A]. */
            p[d].fd = r->fd[d == A2B ? B2A : A2B];
            p[d].events = POLLIN;
            p[d].revents = 0;
        }
        if (poll(p, 2, 200) < 0)
            break;
        for (int d = 0; d < 2 && !r->cut; d++) {
            if (p[d].fd < 0 || !(p[d].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            uint8_t buf[65536];
            ssize_t n = read(p[d].fd, buf, sizeof(buf));
            if (n <= 0) {
                /* One side ended: pass the end on to the other. */
                int from = d == A2B ? B2A : A2B;
                shutdown(r->fd[d], SHUT_WR);
                close(r->fd[from]);
                r->fd[from] = -1;
                open_fds--;
                continue;
            }
            bytes_add(&r->in[d], buf, (size_t)n);
            frame f;
            while (!r->cut && frame_take(&r->in[d], &f)) {
                unsigned idx = r->count[d]++;
                if (idx < MAX_FRAMES) {
                    r->seen[d][idx].buf = malloc(f.len);
                    memcpy(r->seen[d][idx].buf, f.buf, f.len);
                    r->seen[d][idx].len = f.len;
                }
                r->hook(r, d, idx, &f);
                free(f.buf);
            }
        }
    }
    for (int d = 0; d < 2; d++)
        if (r->fd[d] >= 0) {
            close(r->fd[d]);
            r->fd[d] = -1;
        }
}

static void relay_free(relay *r)
{
    for (int d = 0; d < 2; d++) {
        free(r->in[d].data);
        for (unsigned i = 0; i < MAX_FRAMES; i++) {
            free(r->seen[d][i].buf);
            free(r->held[d][i].buf);
        }
    }
}

static relay *last_relay;
static frame spliced[MAX_FRAMES]; /* A2B frames of the control session */

static void run(const scenario *sc)
{
    char out_a[600], err_a[600], out_b[600], err_b[600], port_b[32], port_m[32];
    snprintf(out_a, sizeof(out_a), "%s/alice.out", work);
    snprintf(err_a, sizeof(err_a), "%s/alice.err", work);
    snprintf(out_b, sizeof(out_b), "%s/bob.out", work);
    snprintf(err_b, sizeof(err_b), "%s/bob.err", work);

    int pb = 0, pm = 0;
    int tmp = listen_any(&pb);
    close(tmp); /* Bob takes this port */
    int ls = listen_any(&pm);
    CU_ASSERT_FATAL(ls >= 0);
    snprintf(port_b, sizeof(port_b), "127.0.0.1:%d", pb);
    snprintf(port_m, sizeof(port_m), "127.0.0.1:%d", pm);

    char key_a[600], key_b[600], trust_a[600], trust_b[600];
    snprintf(key_a, sizeof(key_a), "%s/alice.pem", work);
    snprintf(key_b, sizeof(key_b), "%s/bob.pem", work);
    snprintf(trust_a, sizeof(trust_a), "%s/trust_alice", work);
    snprintf(trust_b, sizeof(trust_b), "%s/trust_bob", work);

    char *bob_argv[16] = {cmd_path, "listen",  port_b,  "--key",     key_b, "--id",
                          "Bob",    "--trust", trust_b, "--timeout", "8"};
    int nb = 11;
    if (sc->bob_policy != NULL) {
        bob_argv[nb++] = "--policy";
        bob_argv[nb++] = (char *)sc->bob_policy;
    }
    if (sc->bob_known_only)
        bob_argv[nb++] = "--known-only";
    if (!bob_names)
        bob_argv[nb++] = "--raw";
    char *alice_argv[] = {cmd_path, "connect", port_m,  "--key",     key_a, "--id",
                          "Alice",  "--trust", trust_a, "--timeout", "8",   NULL};

    int in_b, in_a;
    pid_t bob = spawn(bob_argv, &in_b, out_b, err_b);
    pid_t alice = spawn(alice_argv, &in_a, out_a, err_a);
    CU_ASSERT_FATAL(bob > 0 && alice > 0);
    /* Alice sends what she read before the session to Bob, whom she trusts;
     * EOF: CLOSE. */
    if (write(in_a, ALL, strlen(ALL)) < 0)
        CU_FAIL("writing to Alice");
    close(in_a);

    relay *r = calloc(1, sizeof(*r));
    r->hook = sc->hook;
    r->fd[B2A] = accept_timeout(ls, 10);
    r->fd[A2B] = connect_retry(pb);
    close(ls);
    CU_ASSERT_FATAL(r->fd[0] >= 0 && r->fd[1] >= 0);
    last_relay = r;
    relay_run(r);

    int st_a = wait_exit(alice, 20);
    close(in_b); /* Bob's standard input stays open until Alice is done */
    int st_b = wait_exit_listener(bob, 20, err_b);
    char *oa = slurp(out_a), *ea = slurp(err_a), *ob = slurp(out_b), *eb = slurp(err_b);

    int ok = 1;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            ok = 0;                                                                                \
            fprintf(stderr, "  scenario %s: failed %s\n", sc->name, #cond);                        \
        }                                                                                          \
        CU_ASSERT(cond);                                                                           \
    } while (0)
    CHECK(st_a != 999 && st_b != 999); /* neither hung */
    CHECK(st_a < 128 && st_b < 128);   /* neither crashed */
    CHECK(sc->want_alice == -2 || (sc->want_alice < 0 ? st_a != 0 : st_a == sc->want_alice));
    CHECK(sc->want_bob == -2 || (sc->want_bob < 0 ? st_b != 0 : st_b == sc->want_bob));
    if (sc->alice_err != NULL)
        CHECK(strstr(ea, sc->alice_err) != NULL);
    if (sc->bob_err != NULL)
        CHECK(strstr(eb, sc->bob_err) != NULL);
    if (sc->bob_out != NULL)
        CHECK(strcmp(ob, sc->bob_out) == 0);
    else /* only Alice's messages, in order, each once */
        CHECK(strncmp(ob, ALL, strlen(ob)) == 0);
    CHECK(strcmp(oa, sc->alice_out ? sc->alice_out : "") == 0);
    if (!ok)
        fprintf(stderr,
                "  alice exit %d, stderr:\n%s  stdout:\n%s  bob exit %d, stderr:\n%s"
                "  stdout:\n%s",
                st_a, ea, oa, st_b, eb, ob);
    scenarios_run++;
    free(oa);
    free(ea);
    free(ob);
    free(eb);
    relay_free(r);
    free(r);
    last_relay = NULL;
}

/* ---- hooks ------------------------------------------------------------- */

/* Frame indices: A2B 0 HELLO, 1 CONFIRM, 2.. Alice's records (m1 = 2);
 * B2A 0 REPLY, 1 FINISH, 2.. Bob's records. */
#define REC(k) (1u + (k)) /* A2B index of message m<k> */

static unsigned flip_dir, flip_idx, flip_bit;
static void hook_flip(relay *r, int dir, unsigned idx, frame *f)
{
    if ((unsigned)dir == flip_dir && idx == flip_idx) {
        size_t bit = flip_bit % ((f->len - 4) * 8);
        f->buf[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    relay_send(r, dir, f);
}

static void hook_capture(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx < MAX_FRAMES) {
        spliced[idx].buf = malloc(f->len);
        memcpy(spliced[idx].buf, f->buf, f->len);
        spliced[idx].len = f->len;
    }
    relay_send(r, dir, f);
}

static void hook_replay(relay *r, int dir, unsigned idx, frame *f)
{
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(2))
        relay_send(r, dir, f);
}

static void hook_replay_late(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == REC(4))
        relay_send(r, dir, &r->seen[A2B][REC(1)]);
    relay_send(r, dir, f);
}

static void hook_reflect(relay *r, int dir, unsigned idx, frame *f)
{
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(2))
        relay_send(r, B2A, f); /* Alice's own record, back to her */
}

static void hook_drop(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == REC(2))
        return;
    relay_send(r, dir, f);
}

static void hook_reorder(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == REC(2)) { /* hold m2, send it after m3 */
        r->held[A2B][0].buf = malloc(f->len);
        memcpy(r->held[A2B][0].buf, f->buf, f->len);
        r->held[A2B][0].len = f->len;
        return;
    }
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(3))
        relay_send(r, dir, &r->held[A2B][0]);
}

static void hook_late(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && (idx == REC(1) || idx == REC(2))) { /* hold m1, m2; send them after m3 */
        frame *h = &r->held[A2B][idx - REC(1)];
        h->buf = malloc(f->len);
        memcpy(h->buf, f->buf, f->len);
        h->len = f->len;
        return;
    }
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(3)) {
        relay_send(r, dir, &r->held[A2B][0]);
        relay_send(r, dir, &r->held[A2B][1]);
    }
}

static void hook_truncate(relay *r, int dir, unsigned idx, frame *f)
{
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(3))
        r->cut = 1; /* the attacker ends both connections after m3 */
}

static void hook_truncate_last(relay *r, int dir, unsigned idx, frame *f)
{
    /* Everything but the CLOSE records: a clean-looking end that is not. */
    if (idx >= 2 && f->len >= 6 && f->buf[5] == 0x12)
        return;
    relay_send(r, dir, f);
    if (dir == A2B && idx == REC(5))
        r->cut = 1;
}

static void hook_splice(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == REC(2) && spliced[idx].buf != NULL) {
        relay_send(r, dir, &spliced[idx]); /* m2 of the earlier session */
        return;
    }
    relay_send(r, dir, f);
}

static void hook_splice_handshake(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == 1 && spliced[1].buf != NULL) {
        relay_send(r, dir, &spliced[1]); /* CONFIRM of the earlier session */
        return;
    }
    relay_send(r, dir, f);
}

/* Key substitution: handshake messages made by the attacker's own session. */
static EVP_PKEY *mallory, *mallory_s;
static const char *mallory_id;

static EVP_PKEY *mallory_session_key(void *arg)
{
    (void)arg;
    return EVP_PKEY_dup(mallory_s);
}

static P11C_SESSION *mallory_session(p11c_role role, const char *id)
{
    P11C_CONFIG cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.role = role;
    cfg.key = mallory;
    cfg.identity = id;
    cfg.session_key_fn = mallory_session_key;
    p11c_err err;
    P11C_SESSION *s = p11c_session_new(&cfg, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static void hook_subst_hello(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == A2B && idx == 0) {
        P11C_SESSION *m = mallory_session(P11C_INITIATOR, mallory_id);
        uint8_t *msg;
        size_t len;
        CU_ASSERT_EQUAL(p11c_session_start(m), P11C_OK);
        if (p11c_session_pop_output(m, &msg, &len)) {
            frame nf = frame_of(msg, len);
            relay_send(r, dir, &nf);
            free(nf.buf);
            OPENSSL_free(msg);
        }
        p11c_session_free(m);
        return;
    }
    relay_send(r, dir, f);
}

static void hook_subst_reply(relay *r, int dir, unsigned idx, frame *f)
{
    if (dir == B2A && idx == 0) {
        /* Mallory answers Alice's HELLO herself, claiming to be Bob. */
        P11C_SESSION *m = mallory_session(P11C_RESPONDER, mallory_id);
        uint8_t *msg;
        size_t len;
        frame *hello = &r->seen[A2B][0];
        p11c_session_recv(m, hello->buf + 4, hello->len - 4);
        if (p11c_session_pop_output(m, &msg, &len)) {
            frame nf = frame_of(msg, len);
            relay_send(r, dir, &nf);
            free(nf.buf);
            OPENSSL_free(msg);
        }
        p11c_session_free(m);
        return;
    }
    relay_send(r, dir, f);
}

/* ---- tests ------------------------------------------------------------- */

static void test_clean(void)
{
    scenario sc = {"clean",           hook_capture,        NULL, 0,   0, 0,
                   "trusted: 'Bob' ", "trusted: 'Alice' ", ALL,  NULL};
    run(&sc);
}

static void test_flip_handshake(void)
{
    /* Each handshake message, bits spread over the header, keys, identity,
     * signatures and confirmation values. */
    static const struct {
        unsigned dir, idx;
        const char *name;
    } msgs[] = {{A2B, 0, "HELLO"}, {B2A, 0, "REPLY"}, {A2B, 1, "CONFIRM"}, {B2A, 1, "FINISH"}};
    static const unsigned bits[] = {0, 9, 70, 2100, 4300, 6000, 100000};
    for (size_t m = 0; m < 4; m++)
        for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
            char name[64];
            snprintf(name, sizeof(name), "flip %s bit %u", msgs[m].name, bits[b]);
            flip_dir = msgs[m].dir;
            flip_idx = msgs[m].idx;
            flip_bit = bits[b];
            scenario sc = {name, hook_flip, NULL, 0, -1, -1, NULL, NULL, "", NULL};
            run(&sc);
        }
}

static void test_flip_records(void)
{
    static const unsigned bits[] = {0, 8, 16, 40, 100, 200, 330};
    for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
        char name[64];
        snprintf(name, sizeof(name), "flip record m3 bit %u", bits[b]);
        flip_dir = A2B;
        flip_idx = REC(3);
        flip_bit = bits[b];
        scenario sc = {name, hook_flip, NULL, 0, -1, -1, NULL, "session failed", "m1\nm2\n", NULL};
        run(&sc);
    }
}

static void test_replay(void)
{
    scenario sc = {"replay m2", hook_replay, NULL, 0, -1, -1, NULL, "replay", "m1\nm2\n", NULL};
    run(&sc);
    scenario late = {"replay m1 after m3",
                     hook_replay_late,
                     NULL,
                     0,
                     -1,
                     -1,
                     NULL,
                     "replay",
                     "m1\nm2\nm3\n",
                     NULL};
    run(&late);
}

static void test_reflect(void)
{
    /* How much reaches Bob depends on when Alice's failure ends the
     * connection: only Alice's messages, in order, may. */
    scenario sc = {"reflect m2 to Alice", hook_reflect, NULL, 0, 1, -2,
                   "reflected",           NULL,         NULL, ""};
    run(&sc);
}

static void test_drop_reorder(void)
{
    scenario drop = {"drop m2", hook_drop, NULL, 0, -1, -1, NULL, "out of order", "m1\n", NULL};
    run(&drop);
    scenario reorder = {"reorder m2 m3", hook_reorder, NULL, 0, -1, -1, NULL,
                        "out of order",  "m1\n",       NULL};
    run(&reorder);
}

static void test_window_policy(void)
{
    /* Under the window policy an attack is reported and the session goes on. */
    scenario drop = {"window: drop m2", hook_drop,          "window", 0, 0, 0, NULL,
                     "missing",         "m1\nm3\nm4\nm5\n", NULL};
    run(&drop);
    scenario replay = {"window: replay m2", hook_replay, "window", 0, 0, 0, NULL,
                       "rejected",          ALL,         NULL};
    run(&replay);
    scenario reorder = {"window: reorder m2 m3", hook_reorder, "window", 0, 0, 0, NULL, NULL,
                        "m1\nm3\nm2\nm4\nm5\n",  NULL};
    run(&reorder);
    flip_dir = A2B;
    flip_idx = REC(3);
    flip_bit = 300;
    scenario flip = {"window: flip m3", hook_flip,          "window", 0, 0, 0, NULL,
                     "rejected",        "m1\nm2\nm4\nm5\n", NULL};
    run(&flip);
}

/* Genuine records arriving 2, 0, 1: Bob shows each of the two late ones
 * marked with its number, and says the missing ones came. */
static void test_late_records(void)
{
    scenario sc = {"window: records 2, 0, 1",
                   hook_late,
                   "window",
                   0,
                   0,
                   0,
                   NULL,
                   "message #1, reported missing, has arrived late, shown marked [late] (0 still "
                   "missing)",
                   "Alice> m3\n[late #0] Alice> m1\n[late #1] Alice> m2\nAlice> m4\nAlice> m5\n",
                   NULL};
    bob_names = 1;
    run(&sc);
    bob_names = 0;
}

static void test_truncate(void)
{
    scenario sc = {"truncate after m3", hook_truncate,  NULL, 0, -1, 3, NULL,
                   "truncated",         "m1\nm2\nm3\n", NULL};
    run(&sc);
    scenario last = {
        "drop both CLOSEs", hook_truncate_last, NULL, 0, -1, 3, NULL, "truncated", ALL, NULL};
    run(&last);
}

static void test_splice(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(spliced[REC(2)].buf); /* from the clean session */
    scenario sc = {"splice m2 of another session",
                   hook_splice,
                   NULL,
                   0,
                   -1,
                   -1,
                   NULL,
                   "session failed",
                   "m1\n",
                   NULL};
    run(&sc);
    scenario hs = {"splice CONFIRM of another session",
                   hook_splice_handshake,
                   NULL,
                   0,
                   -1,
                   -1,
                   NULL,
                   "session failed",
                   "",
                   NULL};
    run(&hs);
}

static void test_key_substitution(void)
{
    /* Mallory's own HELLO, claiming to be Alice: Bob knows Alice's key. */
    mallory_id = "Alice";
    scenario hello = {"HELLO re-signed by Mallory as Alice",
                      hook_subst_hello,
                      NULL,
                      0,
                      -1,
                      -1,
                      NULL,
                      "MISMATCH: 'Alice' ",
                      "",
                      NULL};
    run(&hello);
    /* As herself: Bob (known peers only) refuses; Alice's session fails. */
    mallory_id = "Mallory";
    scenario unknown = {"HELLO as Mallory, Bob known-only",
                        hook_subst_hello,
                        NULL,
                        1,
                        -1,
                        -1,
                        NULL,
                        "NOT IN TRUST STORE: 'Mallory' ",
                        "",
                        NULL};
    run(&unknown);
    /* Mallory answers Alice claiming to be Bob. */
    mallory_id = "Bob";
    scenario reply = {"REPLY re-signed by Mallory as Bob",
                      hook_subst_reply,
                      NULL,
                      0,
                      -1,
                      -1,
                      "MISMATCH: 'Bob' ",
                      NULL,
                      "",
                      NULL};
    run(&reply);
}

/* ---- set-up ------------------------------------------------------------ */

static void write_file(const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", work, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        exit(2);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static EVP_PKEY *pem_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    return k;
}

static int suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(work, sizeof(work), "%s/mitm.%ld", P11C_MITM_WORK, (long)getpid());
    mkdir(P11C_MITM_WORK, 0700);
    mkdir(work, 0700);
    snprintf(cmd_path, sizeof(cmd_path), "%s/p11chat", tu_apps_dir());
    if (access(cmd_path, X_OK) != 0)
        return 1;

    json_t *keys_root = tu_vector_load("protocol/keys.json");
    json_t *fps_root = tu_vector_load("protocol/fingerprint.json");
    json_t *keys = json_object_get(keys_root, "keys");
    json_t *fps = json_object_get(fps_root, "tests");
    int ret = 1;
    write_file("alice.pem", tu_json_str(json_object_get(keys, "alice"), "private_pkcs8_pem"));
    write_file("bob.pem", tu_json_str(json_object_get(keys, "bob"), "private_pkcs8_pem"));
    mallory = pem_key(tu_json_str(json_object_get(keys, "carol3072"), "private_pkcs8_pem"));
    mallory_s = pem_key(tu_json_str(json_object_get(keys, "session"), "private_pkcs8_pem"));
    char trust[512];
    const char *fp_a = NULL, *fp_b = NULL;
    for (size_t i = 0; i < json_array_size(fps); i++) {
        json_t *t = json_array_get(fps, i);
        if (strcmp(tu_json_str(t, "key"), "alice") == 0)
            fp_a = tu_json_str(t, "sha256");
        if (strcmp(tu_json_str(t, "key"), "bob") == 0)
            fp_b = tu_json_str(t, "sha256");
    }
    if (fp_a == NULL || fp_b == NULL || mallory == NULL || mallory_s == NULL)
        goto end;
    snprintf(trust, sizeof(trust), "Bob %s\n", fp_b);
    write_file("trust_alice", trust);
    snprintf(trust, sizeof(trust), "Alice %s\n", fp_a);
    write_file("trust_bob", trust);
    ret = 0;
end:
    json_decref(keys_root);
    json_decref(fps_root);
    return ret;
}

static int suite_clean(void)
{
    EVP_PKEY_free(mallory);
    EVP_PKEY_free(mallory_s);
    for (unsigned i = 0; i < MAX_FRAMES; i++)
        free(spliced[i].buf);
    printf("\n%lu attacker-in-the-middle scenarios run\n", scenarios_run);
    tu_run(NULL, "rm -rf '%s'", work);
    return 0;
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("mitm", suite_init, suite_clean);
    CU_add_test(s, "clean session through the proxy", test_clean);
    CU_add_test(s, "bit flips in every handshake message", test_flip_handshake);
    CU_add_test(s, "bit flips in a record", test_flip_records);
    CU_add_test(s, "replay", test_replay);
    CU_add_test(s, "reflection", test_reflect);
    CU_add_test(s, "drop and reorder (strict)", test_drop_reorder);
    CU_add_test(s, "drop, replay, reorder, flip (window)", test_window_policy);
    CU_add_test(s, "records arriving 2, 0, 1 shown late (window)", test_late_records);
    CU_add_test(s, "truncation", test_truncate);
    CU_add_test(s, "records spliced from another session", test_splice);
    CU_add_test(s, "keys substituted in the handshake", test_key_substitution);
    return tu_main();
}
