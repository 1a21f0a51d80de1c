/* p11chat wrap through a real chat relay: `ncat --chat` on loopback with two
 * wrapped ncat clients, and a third, plain client that sees what the relay
 * sees. */
#include <arpa/inet.h>
#include <dirent.h>
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

static const char *alice, *bob, *carol, *trust_a, *trust_b;

static int setup(void)
{
    alice = ta_key_pem("alice");
    bob = ta_key_pem("bob");
    carol = ta_key_pem("carol3072");
    trust_a = ta_trust_store("trust-alice", "bob", ta_fp_hex("bob"));
    trust_b = ta_trust_store("trust-bob", "alice", ta_fp_hex("alice"));
    return 0;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

typedef struct room {
    TPROC relay, watch;
    char port[16];
} ROOM;

/* The relay, and the plain client watching it. */
static int room_open(ROOM *r)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        snprintf(r->port, sizeof(r->port), "%d", ta_free_port());
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
    CU_ASSERT_EQUAL(ta_run_open(&o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                                "--", "true", NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(e, "p11chat: waiting for the peer (the handshake times out in 60 s)\n"
                              "p11chat: the chat program ended before the session was "
                              "established\n");
    CU_ASSERT_STRING_EQUAL(o, "");
    free(o);
    free(e);
    CU_ASSERT_EQUAL(ta_run_open(&o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                                "--", "/nonexistent/chat", NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "cannot run '/nonexistent/chat': No such file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "ended before the session was established"));
    free(o);
    free(e);
    /* A chat program that prints plain text and ends. */
    CU_ASSERT_EQUAL(ta_run_open(&o, &e, W, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b,
                                "--", "printf", "hi\\033[2J there\\r\\nlast", NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(o, "[unencrypted] hi\\x1b[2J there\n[unencrypted] last\n");
    free(o);
    free(e);
}

/* Counts occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Section 9.1 in a real room: a stray line, Carol posing as Alice and Carol
 * as herself each write a handshake before Alice does; Bob drops each with
 * the reason and keeps waiting, and Alice's handshake still completes. */
static void test_room_handshake_survives_others(void)
{
    ROOM r;
    TPROC a, b, m;
    char want[512];
    static const char *const fast_init[] = {"--initiate", "--line-delay=0", NULL};
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b,
         (const char *const[]){"--known-only", "--line-delay=0", NULL});
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for the peer (the handshake times out in 60 s)\n", W));
    /* Six bytes that read as a REPLY: not what a responder waits for. */
    tp_puts(&r.watch, "?P11C:AQIDBAUG.\n");
    snprintf(want, sizeof(want),
             "dropped a handshake message that is not from the peer: %s. Still waiting.\n",
             p11c_strerror(P11C_ERR_TYPE));
    CU_ASSERT(tp_wait_for(&b, 2, want, W));

    join(&r, &m, carol, "alice", trust_a, fast_init);
    CU_ASSERT(tp_wait_for(&b, 2, "that handshake was dropped; still waiting for the peer\n", W));
    snprintf(want, sizeof(want),
             "p11chat: WARNING: a handshake in the chat does not match the trust store:\n"
             "p11chat: MISMATCH: 'alice' %s: refused: it presented the key %s, but %s line 1 "
             "binds 'alice' to the key %s.",
             ta_fp_short("carol3072"), ta_fp_hex("carol3072"), trust_b, ta_fp_hex("alice"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.ebuf, want));
    tp_free(&m);
    join(&r, &m, carol, "carol", trust_a, fast_init);
    snprintf(want, sizeof(want),
             "p11chat: NOT IN TRUST STORE: 'carol' %s: refused (--known-only): its fingerprint "
             "is %s",
             ta_fp_short("carol3072"), ta_fp_hex("carol3072"));
    CU_ASSERT(tp_wait_for(&b, 2, want, W));
    CU_ASSERT(tp_wait_for(&b, 2,
                          "then 'p11chat trust add'\n"
                          "p11chat: that handshake was dropped; still waiting for the peer\n",
                          W));
    CU_ASSERT_EQUAL(count_of(b.ebuf, "that handshake was dropped; still waiting for the peer\n"),
                    2);
    tp_free(&m);
    CU_ASSERT_PTR_NULL(strstr(b.ebuf, "secure session"));
    CU_ASSERT_EQUAL(b.status, -1); /* still there */

    join(&r, &a, alice, "alice", trust_a, fast_init);
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    tp_puts(&a, "made it\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> made it\n", W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* Nobody answers: the handshake gives up at its deadline; end of input
 * before the session ends at once. Both within a bound, the child reaped. */
static void test_handshake_deadline_and_end_of_input(void)
{
    TPROC p;
    int64_t t0 = ta_now_ms();
    tp_p11chat(&p, "wrap", "--initiate", "--handshake-timeout", "2", "--key", alice, "--id",
               "alice", "--trust", trust_a, "--", "sleep", "30", NULL);
    CU_ASSERT_EQUAL(tp_wait_exit(&p, 10000), 1);
    CU_ASSERT(ta_now_ms() - t0 < 6000);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.ebuf, "waiting for the peer (the handshake times out in 2 s)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(p.ebuf, "no peer completed the handshake within 2 s "
                                          "(--handshake-timeout)\n"));
    tp_free(&p);

    char *o, *e;
    t0 = ta_now_ms();
    CU_ASSERT_EQUAL(ta_run("", &o, &e, 10000, "wrap", "--key", bob, "--id", "bob", "--trust",
                           trust_b, "--", "sleep", "30", NULL),
                    1);
    CU_ASSERT(ta_now_ms() - t0 < 5000);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(e, "end of input before the session was established: nothing was sent\n"));
    free(o);
    free(e);
}

/* Lines typed before the session, then end of input: sent once it exists,
 * then CLOSE. */
static void test_typed_early_then_end(void)
{
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &a, alice, "alice", trust_a, (const char *const[]){"--line-delay=0", NULL});
    tp_puts(&a, "said early\n");
    tp_close_in(&a);
    sleep_ms(300);
    CU_ASSERT_EQUAL(a.status, -1); /* waits for the session */
    join(&r, &b, bob, "bob", trust_b, (const char *const[]){"--initiate", "--line-delay=0", NULL});
    CU_ASSERT(tp_wait_for(&b, 1, "alice> said early\n", W));
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "session closed; the peer confirmed 1 of the 1"));
    tp_close_in(&b);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* With the default --max-line (400): lines that fit IRC, a message too long
 * for them refused without spending a record number, and a line that the
 * chat cut short reported as such. */
static void test_line_limit_defaults(void)
{
    ROOM r;
    TPROC a, b;
    static const char *const fast[] = {"--line-delay=0", NULL};
    static const char *const fast_init[] = {"--initiate", "--line-delay=0", NULL};
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, fast);
    join(&r, &a, alice, "alice", trust_a, fast_init);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    size_t n = 20000;
    char *big = malloc(n + 1);
    memset(big, 'z', n);
    big[n] = '\n';
    tp_write(&a, big, n + 1);
    free(big);
    CU_ASSERT(tp_wait_for(&a, 2,
                          "line of 20000 bytes not sent: with --max-line 400 a message holds at "
                          "most 18072 bytes\n",
                          W));
    tp_puts(&a, "short one\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> short one\n", W));
    /* A P11C line that lost its end on the way. */
    tp_puts(&r.watch, "?P11C:AQIDBAUGBwgJCgsM\n");
    CU_ASSERT(tp_wait_for(&b, 2,
                          "WARNING: a P11C line of 30 bytes arrived cut short: the chat shortens "
                          "lines; the sender's lines must be shorter (here --max-line 400)\n",
                          W));
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "the peer confirmed 1 of the 1 messages"));
    CU_ASSERT_PTR_NULL(strstr(b.ebuf, "missing"));
    CU_ASSERT_PTR_NULL(strstr(b.obuf, "zzzz"));
    /* Every armored line within 400 bytes (ncat puts "<userN> " in front). */
    CU_ASSERT(tp_wait_for(&r.watch, 1, "is disconnected", W));
    int lines = 0;
    for (const char *l = r.watch.obuf; *l != '\0';) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        const char *q = strstr(l, "?P11C");
        if (q != NULL && q < l + len) {
            lines++;
            CU_ASSERT((size_t)(l + len - q) <= 400);
        }
        l += len + (e != NULL);
    }
    CU_ASSERT(lines >= 8); /* the handshake in pieces, at the least */
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* In a room the receiver does not answer each message with an ACK line: it
 * confirms after 8 messages, or once the sender has been quiet for 5 s. */
static void test_acks_in_a_room(void)
{
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, (const char *const[]){"--line-delay=0", NULL});
    join(&r, &a, alice, "alice", trust_a,
         (const char *const[]){"--initiate", "--line-delay=0", "--verbose", NULL});
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    const char *confirmed = "the peer confirmed ";
    for (int i = 0; i < 3; i++) {
        tp_puts(&a, "one at a time\n");
        CU_ASSERT(tp_wait_for(&b, 1, "one at a time\n", W));
        tp_wait_for(&a, 2, "\x01never\x01", 2500); /* let 2.5 s pass, pumping */
    }
    CU_ASSERT_EQUAL(count_of(a.ebuf, confirmed), 0);
    CU_ASSERT(tp_wait_for(&a, 2, "the peer confirmed 3 of the 3 messages we sent\n", 8000));
    int64_t t0 = ta_now_ms();
    tp_puts(&a, "1\n2\n3\n4\n5\n6\n7\n8\n");
    CU_ASSERT(tp_wait_for(&a, 2, "the peer confirmed 11 of the 11 messages we sent\n", W));
    CU_ASSERT(ta_now_ms() - t0 < 4000); /* not the quiet spell: the count */
    CU_ASSERT_EQUAL(count_of(a.ebuf, confirmed), 2);
    tp_close_in(&a);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 0);
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
}

/* The pid of a child of `parent` whose command is `comm`, or 0. */
static pid_t child_named(pid_t parent, const char *comm)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
    FILE *f = fopen(path, "r");
    int pid, found = 0;
    while (f != NULL && !found && fscanf(f, "%d", &pid) == 1) {
        char cpath[64], name[64] = "";
        snprintf(cpath, sizeof(cpath), "/proc/%d/comm", pid);
        FILE *c = fopen(cpath, "r");
        if (c != NULL) {
            if (fgets(name, sizeof(name), c) != NULL)
                name[strcspn(name, "\n")] = '\0';
            fclose(c);
        }
        if (strcmp(name, comm) == 0)
            found = pid;
    }
    if (f != NULL)
        fclose(f);
    return (pid_t)found;
}

/* The chat program gets none of our P11CHAT_* variables (a PIN source among
 * them) and no descriptor of ours, even one we inherited without
 * close-on-exec: its /proc/PID/fd holds 0, 1 and 2 only. */
static void test_child_environment(void)
{
    char script[2048];
    snprintf(script, sizeof(script),
             "exec 7</dev/null; P11CHAT_PKCS11_PIN=file:/secret/pin P11CHAT_TRUST='%s' "
             "exec '%s' wrap --key '%s' --id bob -- sh -c "
             "'echo vars $(env | grep -c P11CHAT_); exec sleep 30'",
             trust_b, ta_p11chat(), bob);
    char *argv[] = {"sh", "-c", script, NULL};
    TPROC p;
    tp_start(&p, argv);
    CU_ASSERT(tp_wait_for(&p, 1, "[unencrypted] vars 0\n", W));
    pid_t child = 0;
    for (int i = 0; i < 100 && child == 0 && p.pid > 0; i++) {
        child = child_named(p.pid, "sleep"); /* once the shell has exec'd it */
        if (child == 0)
            sleep_ms(20);
    }
    CU_ASSERT(child > 0);
    char fds[256] = "", path[64];
    int n = 0, stray = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)child);
    /* sleep itself opens and closes files as it starts (its locale): a
     * descriptor of ours would stay, so look again for a while until only
     * 0, 1 and 2 are left. */
    for (int tries = 0; tries < 100 && child > 0; tries++) {
        DIR *d = opendir(path);
        struct dirent *de;
        fds[0] = '\0';
        n = stray = 0;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            n++;
            stray += atoi(de->d_name) > 2;
            strncat(fds, de->d_name, sizeof(fds) - strlen(fds) - 2);
            strcat(fds, " ");
        }
        if (d != NULL)
            closedir(d);
        if (n == 3 && stray == 0)
            break;
        sleep_ms(20);
    }
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(stray, 0);
    if (n != 3 || stray != 0)
        fprintf(stderr, "the chat program holds: %s\n", fds);
    tp_signal(&p, SIGTERM);
    CU_ASSERT_EQUAL(tp_wait_exit(&p, W), 1);
    tp_free(&p);
}

/* The chat program ends while something it started still holds the pipes:
 * p11chat notices its end, before and during the session. */
static void test_child_exit_noticed(void)
{
    /* Before the session: the program exits, a background sleep lingers
     * with its output (its stderr is sent away: it would hold the test's). */
    TPROC p;
    int64_t t0 = ta_now_ms();
    tp_p11chat(&p, "wrap", "--key", bob, "--id", "bob", "--trust", trust_b, "--", "sh", "-c",
               "sleep 30 2>/dev/null & echo bye", NULL);
    CU_ASSERT_EQUAL(tp_wait_exit(&p, 10000), 1);
    CU_ASSERT(ta_now_ms() - t0 < 5000);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.obuf, "[unencrypted] bye\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(p.ebuf, "the chat program ended before the session was established\n"));
    tp_free(&p);

    /* During the session, through a shell pipeline: ncat dies, the
     * pipeline ends, the session is reported truncated. */
    ROOM r;
    TPROC a, b;
    CU_ASSERT_FATAL(room_open(&r));
    join(&r, &b, bob, "bob", trust_b, (const char *const[]){"--line-delay=0", NULL});
    char pipeline[256];
    snprintf(pipeline, sizeof(pipeline), "%s 127.0.0.1 %s | cat", P11C_NCAT, r.port);
    char *argv[] = {(char *)ta_p11chat(),
                    "wrap",
                    "--initiate",
                    "--line-delay=0",
                    "--key",
                    (char *)alice,
                    "--id",
                    "alice",
                    "--trust",
                    (char *)trust_a,
                    "--",
                    "sh",
                    "-c",
                    pipeline,
                    NULL};
    tp_start(&a, argv);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    pid_t sh = child_named(a.pid, "sh");
    pid_t ncat = sh > 0 ? child_named(sh, "ncat") : 0;
    CU_ASSERT(ncat > 0);
    if (ncat > 0)
        kill(ncat, SIGKILL);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, 10000), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "truncated"));
    tp_free(&a);
    tp_free(&b);
    room_close(&r);
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
    CU_add_test(s, "a handshake survives others' lines in the room",
                test_room_handshake_survives_others);
    CU_add_test(s, "handshake deadline, end of input before the session",
                test_handshake_deadline_and_end_of_input);
    CU_add_test(s, "typed before the session, then end of input", test_typed_early_then_end);
    CU_add_test(s, "line limit defaults, too long, cut short", test_line_limit_defaults);
    CU_add_test(s, "ACKs in a room: after 8 messages or a quiet spell", test_acks_in_a_room);
    CU_add_test(s, "the chat program gets no variable or descriptor of ours",
                test_child_environment);
    CU_add_test(s, "the chat program's end noticed, whoever holds its pipes",
                test_child_exit_noticed);
    CU_add_test(s, "--peer: a trusted Carol in the room gets nothing", test_peer_in_room);
    return tu_main();
}
