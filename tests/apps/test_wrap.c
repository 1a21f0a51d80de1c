/* p11chat wrap through a real chat relay: `ncat --chat` on loopback with two
 * wrapped ncat clients, and a third, plain client that sees what the relay
 * sees. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "apps_util.h"
#include "p11chat.h"
#include "testutil.h"

#define W 20000

static const char *alice, *bob, *trust_a, *trust_b;

static int setup(void)
{
    char line[256];
    alice = ta_key_pem("alice");
    bob = ta_key_pem("bob");
    trust_a = ta_path("trust-alice");
    snprintf(line, sizeof(line), "bob %s\n", ta_fp_hex("bob"));
    ta_write_file(trust_a, line, strlen(line));
    trust_b = ta_path("trust-bob");
    snprintf(line, sizeof(line), "alice %s\n", ta_fp_hex("alice"));
    ta_write_file(trust_b, line, strlen(line));
    return 0;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    close(fd);
    return ntohs(sa.sin_port);
}

typedef struct room {
    TPROC relay, watch;
    char port[16];
} ROOM;

/* The relay, and the plain client watching it. */
static int room_open(ROOM *r)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        snprintf(r->port, sizeof(r->port), "%d", free_port());
        char *relay[] = {P11C_NCAT, "-v", "-l", "--chat", "127.0.0.1", r->port, NULL};
        tp_start(&r->relay, relay);
        if (!tp_wait_for(&r->relay, 2, "Ncat: Listening on", W)) {
            tp_free(&r->relay); /* the port was taken meanwhile: another one */
            continue;
        }
        char *watch[] = {P11C_NCAT, "127.0.0.1", r->port, NULL};
        tp_start(&r->watch, watch);
        if (tp_wait_for(&r->watch, 1, "<announce> already connected:", W))
            return 1;
        tp_free(&r->watch);
        tp_free(&r->relay);
    }
    return 0;
}

static void room_close(ROOM *r)
{
    tp_free(&r->watch);
    tp_free(&r->relay);
}

/* Starts one wrapped ncat client; waits until it is in the room. */
static void join(ROOM *r, TPROC *p, const char *key, const char *id, const char *trust,
                 const char *const extra[])
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)ta_p11chat();
    argv[n++] = "wrap";
    argv[n++] = "--key";
    argv[n++] = (char *)key;
    argv[n++] = "--id";
    argv[n++] = (char *)id;
    argv[n++] = "--trust";
    argv[n++] = (char *)trust;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = (char *)extra[i];
    argv[n++] = "--";
    argv[n++] = P11C_NCAT;
    argv[n++] = "127.0.0.1";
    argv[n++] = r->port;
    argv[n] = NULL;
    tp_start(p, argv);
    /* ncat --chat greets every newcomer with the list of those present. */
    CU_ASSERT(tp_wait_for(p, 1, "[unencrypted] <announce> already connected:", W));
}

static void test_through_relay(void)
{
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, (const char *const[]){"--max-line=1000", NULL});
    join(&r, &a, alice, "alice", trust_a,
         (const char *const[]){"--initiate", "--max-line=1000", NULL});

    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' 9f22:694b:a719:04f1: secure session\n", W));
    CU_ASSERT(tp_wait_for(&b, 2, "trusted: 'alice' 0856:e264:f021:50cc: secure session\n", W));
    tp_puts(&a, "the secret plan\n");
    CU_ASSERT(tp_wait_for(&b, 1, "\nalice> the secret plan\n", W));
    tp_puts(&b, "sounds good \x1b[1m\n");
    CU_ASSERT(tp_wait_for(&a, 1, "\nbob> sounds good \\x1b[1m\n", W));

    /* A plain line in the room is shown, marked, on both sides. */
    tp_puts(&r.watch, "hello, anyone?\n");
    CU_ASSERT(tp_wait_for(&a, 1, "[unencrypted] <user", W));
    CU_ASSERT(tp_wait_for(&a, 1, "> hello, anyone?\n", W));
    CU_ASSERT(tp_wait_for(&b, 1, "> hello, anyone?\n", W));

    tp_puts(&a, "last one\n");
    CU_ASSERT(tp_wait_for(&b, 1, "\nalice> last one\n", W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(a.ebuf, "session closed; the peer confirmed 2 of the 2 messages"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.ebuf, "closed by the peer; the peer confirmed 1 of the 1 messages"));

    /* The relay carried only armored text: no plaintext, no key material. */
    CU_ASSERT(tp_wait_for(&r.watch, 1, "is disconnected", W));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.watch.obuf, "?P11C:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.watch.obuf, "?P11C,")); /* the HELLO, in pieces */
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "secret"));
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "sounds good"));
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "last one"));
    /* Alice's lines respect --max-line (ncat adds its "<userN> " in front). */
    for (const char *l = r.watch.obuf; *l != '\0';) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        CU_ASSERT(len <= 1000 + 16 || strstr(l, "?P11C:") == NULL);
        l += len + (e != NULL);
    }
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* An EC key (suite 0x02) and an RSA key chat through the relay. */
static void test_ec_and_rsa_through_relay(void)
{
    ROOM r;
    TPROC a, b;
    char line[256];
    const char *alice_ec = ta_key_pem("alice_p256"), *tb = ta_path("trust-bob-ec");

    /* fp(alice_p256), from handshake_suite2.json */
    snprintf(line, sizeof(line),
             "alice c078d5692418df146dfd0c4bbcdaabc10f5379efc4405223bbdf871534c86bdc\n");
    ta_write_file(tb, line, strlen(line));
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", tb, NULL);
    join(&r, &a, alice_ec, "alice", trust_a, (const char *const[]){"--initiate", NULL});
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' 9f22:694b:a719:04f1: secure session\n", W));
    CU_ASSERT(tp_wait_for(&b, 2, "trusted: 'alice' c078:d569:2418:df14: secure session\n", W));
    CU_ASSERT(tp_wait_for(&a, 2, "protocol suite 0x02", W));
    CU_ASSERT(tp_wait_for(&b, 2, "protocol suite 0x02", W));
    tp_puts(&a, "from an EC key\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> from an EC key\n", W));
    tp_puts(&b, "from an RSA key\n");
    CU_ASSERT(tp_wait_for(&a, 1, "bob> from an RSA key\n", W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "from an"));
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* The full fingerprint `p11chat fingerprint` prints for KEY, or "" on failure. */
static void fingerprint_of(const char *key, const char *pin, char out[65])
{
    char *o = NULL;
    out[0] = '\0';
    if (ta_run(NULL, &o, NULL, W, "fingerprint", "--key", key, "--pin-source", pin, NULL) == 0) {
        const char *f = strstr(o, "full:  ");
        if (f != NULL && strlen(f) >= 7 + 64)
            snprintf(out, 65, "%.64s", f + 7);
    }
    free(o);
}

/* An EC token key made by keygen and an RSA token key chat through the relay. */
static void test_token_ec_and_rsa_through_relay(void)
{
    const char *dir = tu_token_make("wrap", 1);
    char pin[1024], ua[256], ub[256], fa[65], fb[65], line[256];
    const char *ta = ta_path("trust-alice-tok"), *tb = ta_path("trust-bob-tok");
    ROOM r;
    TPROC a, b;

    snprintf(pin, sizeof(pin), "%s/pin", dir);
    snprintf(ua, sizeof(ua), "pkcs11:token=%s;object=alice-ec", TU_TOKEN_LABEL);
    snprintf(ub, sizeof(ub), "pkcs11:token=%s;object=bob", TU_TOKEN_LABEL);
    CU_ASSERT_EQUAL_FATAL(ta_run(NULL, NULL, NULL, W, "keygen", "--key", ua, "--type", "ec:p256",
                                 "--pin-source", pin, NULL),
                          0);
    fingerprint_of(ua, pin, fa);
    fingerprint_of(ub, pin, fb);
    CU_ASSERT_FATAL(strlen(fa) == 64 && strlen(fb) == 64);
    snprintf(line, sizeof(line), "bob %s\n", fb);
    ta_write_file(ta, line, strlen(line));
    snprintf(line, sizeof(line), "alice %s\n", fa);
    ta_write_file(tb, line, strlen(line));
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, ub, "bob", tb, (const char *const[]){"--pin-source", pin, NULL});
    join(&r, &a, ua, "alice", ta,
         (const char *const[]){"--initiate", "--pin-source", pin, "--session-key", "token", NULL});
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' ", W));
    CU_ASSERT(tp_wait_for(&b, 2, "trusted: 'alice' ", W));
    CU_ASSERT(tp_wait_for(&a, 2, "protocol suite 0x02", W));
    CU_ASSERT(tp_wait_for(&b, 2, "protocol suite 0x02", W));
    tp_puts(&a, "from the EC token key\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> from the EC token key\n", W));
    tp_puts(&b, "from the RSA token key\n");
    CU_ASSERT(tp_wait_for(&a, 1, "bob> from the RSA token key\n", W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    if (a.status != 0 || b.status != 0)
        fprintf(stderr, "\n[alice]\n%s[bob]\n%s", a.ebuf, b.ebuf);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* A suite-0x01-only peer refuses an EC key's HELLO; the initiator, stopped
 * while waiting, is told to try --suite 1. */
static void test_suite1_only_peer(void)
{
    ROOM r;
    TPROC a, b;
    char line[256];
    const char *alice_ec = ta_key_pem("alice_p256"), *tb = ta_path("trust-bob-ec2");

    snprintf(line, sizeof(line),
             "alice c078d5692418df146dfd0c4bbcdaabc10f5379efc4405223bbdf871534c86bdc\n");
    ta_write_file(tb, line, strlen(line));
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", tb, (const char *const[]){"--suite", "1", NULL});
    join(&r, &a, alice_ec, "alice", trust_a, (const char *const[]){"--initiate", NULL});
    CU_ASSERT(tp_wait_for(&b, 2, p11c_strerror(P11C_ERR_SUITE), W));
    tp_signal(&a, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "interrupted before the session was established"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "try again with --suite 1"));
    tp_signal(&b, SIGINT);
    tp_wait_exit(&b, W);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

static void test_injection_and_replay(void)
{
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, NULL);
    join(&r, &a, alice, "alice", trust_a, (const char *const[]){"--initiate", NULL});
    CU_ASSERT(tp_wait_for(&b, 2, "trusted: 'alice' ", W));
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' ", W));

    tp_puts(&a, "pay 10\n");
    CU_ASSERT(tp_wait_for(&b, 1, "\nalice> pay 10\n", W));
    /* The watcher replays Alice's record verbatim and injects a forged one:
     * each is rejected, nothing is shown, and the session goes on. */
    CU_ASSERT(tp_wait_for(&r.watch, 1, "?P11C:ARAA", W));
    const char *rec = strstr(r.watch.obuf, "?P11C:ARAA");
    const char *end = rec != NULL ? strchr(rec, '\n') : NULL;
    CU_ASSERT_PTR_NOT_NULL(end);
    if (end != NULL) {
        char *replay = strndup(rec, (size_t)(end - rec) + 1);
        tp_puts(&r.watch, replay);
        /* Alice sees her own record come back too: a chat echo, ignored. */
        free(replay);
    }
    char want[256];
    snprintf(want, sizeof(want), "rejected a message that is not from the peer: %s\n",
             p11c_strerror(P11C_ERR_REPLAY));
    CU_ASSERT(tp_wait_for(&b, 2, want, W));
    /* A well-formed record in Alice's direction with a made-up MAC. */
    tp_puts(&r.watch,
            "<mallory> ?P11C:ARAAAAAAAA4AAAAAAAAABQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAGZvcmdlZCB"
            "tZXNzYWdlAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=.\n");
    snprintf(want, sizeof(want), "rejected a message that is not from the peer: %s\n",
             p11c_strerror(P11C_ERR_MAC));
    CU_ASSERT(tp_wait_for(&b, 2, want, W));
    tp_puts(&a, "still here\n");
    CU_ASSERT(tp_wait_for(&b, 1, "\nalice> still here\n", W));
    tp_close_in(&b);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    /* Exactly once each, and no rejected byte printed. */
    const char *first = strstr(b.obuf, "\nalice> pay 10\n");
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NULL(first ? strstr(first + 15, "pay 10") : NULL);
    CU_ASSERT_PTR_NULL(strstr(b.obuf, "forged"));
    CU_ASSERT_PTR_NULL(strstr(a.obuf, "forged"));
    /* Alice rejects the forgery as carrying her own direction; her replayed
     * record she recognises as an echo of hers and ignores. */
    snprintf(want, sizeof(want), "rejected a message that is not from the peer: %s\n",
             p11c_strerror(P11C_ERR_DIRECTION));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, want));
    CU_ASSERT_PTR_NULL(strstr(a.ebuf, p11c_strerror(P11C_ERR_REPLAY)));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.ebuf, "closed; the peer confirmed 0 of the 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "closed by the peer; the peer confirmed 2 of the 2"));
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* --peer in a room: Alice wants Bob; Carol, whom she also trusts, is the one
 * who answers her handshake. Carol gets no session and nothing Alice typed. */
static void test_peer_in_room(void)
{
    ROOM r;
    TPROC a, c;
    const char *carol = ta_key_pem("carol3072");
    const char *trust_ac = ta_path("trust-alice-carol"), *trust_c = ta_path("trust-carol");
    char line[256];
    snprintf(line, sizeof(line), "bob %s\ncarol %s\n", ta_fp_hex("bob"), ta_fp_hex("carol3072"));
    ta_write_file(trust_ac, line, strlen(line));
    snprintf(line, sizeof(line), "alice %s\n", ta_fp_hex("alice"));
    ta_write_file(trust_c, line, strlen(line));
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &c, carol, "carol", trust_c, NULL);
    join(&r, &a, alice, "alice", trust_ac,
         (const char *const[]){"--initiate", "--peer", "bob", NULL});
    tp_puts(&a, "Bob, the merger password is swordfish\n");
    CU_ASSERT(tp_wait_for(&a, 2, "NOT THE PEER ASKED FOR: 'carol' ", W));
    sleep_ms(300);
    CU_ASSERT_PTR_NULL(strstr(c.obuf, "swordfish"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "swordfish"));
    tp_free(&a);
    tp_free(&c);
    room_close(&r);
}

static void test_max_message_in_pieces(void)
{
    /* The longest message, cut into lines of at most 2000 bytes, written one
     * line at a time (ncat --chat reads in 8 KiB blocks and puts the sender's
     * name at the start of each block, cutting lines written together). */
    ROOM r;
    TPROC a, b;
    size_t n = P11C_MAX_DATA;
    char *big = malloc(n + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\n';
    big[n + 1] = '\0';
    static const char *const opts_b[] = {"--max-line", "2000", "--line-delay", "10", NULL};
    static const char *const opts_a[] = {"--initiate", "--max-line=2000", "--line-delay=10", NULL};
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, opts_b);
    join(&r, &a, alice, "alice", trust_a, opts_a);
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' ", W));
    tp_puts(&a, big);
    CU_ASSERT(tp_wait_for(&b, 1, big, W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "the peer confirmed 1 of the 1 messages"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.watch.obuf, "?P11C,"));
    CU_ASSERT_PTR_NULL(strstr(r.watch.obuf, "abcdefghij"));
    CU_ASSERT_PTR_NULL(strstr(b.ebuf, "malformed"));
    free(big);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* The first child of process `pid` (from /proc), or 0. */
static pid_t child_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int child = 0;
    if (f != NULL) {
        if (fscanf(f, "%d", &child) != 1)
            child = 0;
        fclose(f);
    }
    return (pid_t)child;
}

static void test_chat_program_dies_truncated(void)
{
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, (const char *const[]){"--timeout", "2", NULL});
    join(&r, &a, alice, "alice", trust_a, (const char *const[]){"--initiate", NULL});
    CU_ASSERT(tp_wait_for(&b, 2, "secure session", W));
    CU_ASSERT(tp_wait_for(&a, 2, "secure session", W));
    tp_puts(&a, "cut short\n");
    CU_ASSERT(tp_wait_for(&b, 1, "\nalice> cut short\n", W));
    /* Alice's chat program dies: her side ends as truncated. */
    pid_t ncat = a.pid > 0 ? child_of(a.pid) : 0;
    CU_ASSERT(ncat > 0);
    if (ncat > 0)
        kill(ncat, SIGKILL);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "the connection ended without CLOSE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "truncated"));
    /* Bob only sees her leave the room; his CLOSE then goes unanswered. */
    CU_ASSERT(tp_wait_for(&b, 1, "is disconnected.\n", W));
    tp_close_in(&b);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.ebuf, "the peer did not answer our CLOSE within 2 s"));
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

static void test_prefix_and_line_limit(void)
{
    /* The chat program here just records what it is given. */
    const char *file = ta_path("sent.txt");
    char script[1200];
    snprintf(script, sizeof(script), "cat > '%s'", file);
    TPROC p;
    tp_p11chat(&p, "wrap", "--initiate", "--send-prefix", "PRIVMSG #room :", "--max-line", "300",
               "--key", alice, "--id", "alice", "--trust", trust_a, "--", "sh", "-c", script, NULL);
    /* The HELLO (about 900 bytes) in pieces, each line within 300 bytes,
     * each after the prefix, numbered 1..n. */
    char *text = NULL;
    int pieces = 0;
    for (int i = 0; i < 200 && pieces == 0; i++) {
        FILE *f = fopen(file, "r");
        if (f != NULL) {
            text = calloc(1, 65536);
            size_t got = fread(text, 1, 65535, f);
            fclose(f);
            char id[9];
            int k, n;
            const char *last = got > 1 ? strrchr(text, '?') : NULL;
            if (last != NULL && text[got - 1] == '\n' &&
                sscanf(last, "?P11C,%8[0-9a-f],%d,%d,", id, &k, &n) == 3 && k == n)
                pieces = n;
            if (pieces == 0) {
                free(text);
                text = NULL;
            }
        }
        sleep_ms(50);
    }
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT(pieces >= 4);
    int lines = 0;
    for (char *l = text; l != NULL && *l != '\0';) {
        char *e = strchr(l, '\n');
        char id[9];
        int k = 0, n = 0;
        CU_ASSERT_PTR_NOT_NULL(e);
        if (e == NULL)
            break;
        CU_ASSERT((size_t)(e - l) <= 300);
        CU_ASSERT_EQUAL(strncmp(l, "PRIVMSG #room :?P11C,", 21), 0);
        CU_ASSERT_EQUAL(sscanf(l + 15, "?P11C,%8[0-9a-f],%d,%d,", id, &k, &n), 3);
        CU_ASSERT_EQUAL(k, lines + 1);
        CU_ASSERT_EQUAL(n, pieces);
        lines++;
        l = e + 1;
    }
    CU_ASSERT_EQUAL(lines, pieces);
    free(text);
    /* Interrupted before any peer answered: ends with a reason, exit 1. */
    tp_signal(&p, SIGTERM);
    CU_ASSERT_EQUAL(tp_wait_exit(&p, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.ebuf, "interrupted before the session was established"));
    tp_free(&p);
}

static void test_child_problems(void)
{
    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                           "--", "true", NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(e, "p11chat: the chat program ended before the session was "
                              "established\n");
    CU_ASSERT_STRING_EQUAL(o, "");
    free(o);
    free(e);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                           "--", "/nonexistent/chat", NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "cannot run '/nonexistent/chat': No such file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "ended before the session was established"));
    free(o);
    free(e);
    /* A chat program that prints plain text and ends. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                           "--", "printf", "hi\\033[2J there\\r\\nlast", NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(o, "[unencrypted] hi\\x1b[2J there\n[unencrypted] last\n");
    free(o);
    free(e);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_wrap", setup, NULL);
    CU_add_test(s, "through an ncat --chat relay", test_through_relay);
    CU_add_test(s, "injected and replayed lines rejected", test_injection_and_replay);
    CU_add_test(s, "an EC and an RSA key through the relay", test_ec_and_rsa_through_relay);
    CU_add_test(s, "EC and RSA token keys through the relay", test_token_ec_and_rsa_through_relay);
    CU_add_test(s, "a suite-0x01-only peer in the room", test_suite1_only_peer);
    CU_add_test(s, "longest message in pieces, one line at a time", test_max_message_in_pieces);
    CU_add_test(s, "chat program dies: truncated", test_chat_program_dies_truncated);
    CU_add_test(s, "--send-prefix and --max-line", test_prefix_and_line_limit);
    CU_add_test(s, "chat program problems", test_child_problems);
    CU_add_test(s, "--peer: a trusted Carol in the room gets nothing", test_peer_in_room);
    return tu_main();
}
