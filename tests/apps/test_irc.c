#define _GNU_SOURCE /* memmem */
/* p11chat irc against a real IRC server: ngircd on 127.0.0.1 with its own
 * configuration in this program's temporary directory, one server or two
 * linked into one network, and a plain IRC client (a socket here) in the
 * channel that must see nothing but '?P11C' text. Also the wrap recipe
 * around sic, a line-based IRC client. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "apps_util.h"
#include "p11chat.h"
#include "testutil.h"

#define W 30000

static const char *alice, *bob, *trust_a, *trust_b;

static int setup(void)
{
    alice = ta_key_pem("alice");
    bob = ta_key_pem("bob");
    trust_a = ta_trust_store("trust-alice", "bob", ta_fp_hex("bob"));
    trust_b = ta_trust_store("trust-bob", "alice", ta_fp_hex("alice"));
    return 0;
}

static int have(const char *path)
{
    return path[0] != '\0' && access(path, X_OK) == 0;
}

/* ---- ngircd ----------------------------------------------------------------- */

typedef struct ircd {
    TPROC p;
    char name[32];
    char port[16];
} IRCD;

/* Starts ngircd as `name` on a free port. Linked into one network: the
 * server given `accept` ("irc1.test") waits for that one, which is started
 * with `link` (the running server it connects to). */
static int ircd_start(IRCD *d, const char *name, const IRCD *link, const char *accept)
{
    char conf[2048], path[64], inc[64];
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(inc, sizeof(inc), "%s.d", name);
    mkdir(ta_path(inc), 0755);
    for (int attempt = 0; attempt < 5; attempt++) {
        snprintf(d->port, sizeof(d->port), "%d", ta_free_port());
        int n = snprintf(conf, sizeof(conf),
                         "[Global]\nName = %s\nInfo = p11chat test\nListen = 127.0.0.1\n"
                         "Ports = %s\nPidFile = %s\n"
                         "[Limits]\nPingTimeout = 120\nConnectRetry = 5\n"
                         "[Options]\nPAM = no\nIdent = no\nDNS = no\nIncludeDir = %s\n",
                         name, d->port, ta_path("ngircd.pid"), ta_path(inc));
        if (link != NULL)
            snprintf(conf + n, sizeof(conf) - (size_t)n,
                     "[Server]\nName = %s\nHost = 127.0.0.1\nPort = %s\n"
                     "MyPassword = pw-%s\nPeerPassword = pw-%s\n",
                     link->name, link->port, name, link->name);
        else if (accept != NULL)
            snprintf(conf + n, sizeof(conf) - (size_t)n,
                     "[Server]\nName = %s\nMyPassword = pw-%s\nPeerPassword = pw-%s\n", accept,
                     name, accept);
        snprintf(path, sizeof(path), "%s.conf", name);
        ta_write_file(ta_path(path), conf, strlen(conf));
        char *argv[] = {P11C_NGIRCD, "-n", "-f", (char *)ta_path(path), NULL};
        tp_start(&d->p, argv);
        if (tp_wait_for(&d->p, 1, "Now listening on", 10000))
            return 1;
        fprintf(stderr, "ngircd did not start: %s%s\n", d->p.obuf, d->p.ebuf);
        tp_free(&d->p); /* the port went to someone else: another */
    }
    return 0;
}

static void ircd_stop(IRCD *d)
{
    tp_free(&d->p);
}

/* ---- A plain IRC client: a socket --------------------------------------------- */

typedef struct raw {
    int fd;
    char buf[1 << 20];
    size_t len;
} RAW;

static void raw_pump(RAW *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return;
    ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        /* Answer the server's PINGs. */
        char *ping = strstr(c->buf, "\nPING ");
        if (ping != NULL && strstr(ping, "PONG-SENT") == NULL) {
            char *e = strchr(ping + 6, '\r');
            if (e != NULL) {
                char pong[256];
                int m =
                    snprintf(pong, sizeof(pong), "PONG %.*s\r\n", (int)(e - ping - 6), ping + 6);
                if (write(c->fd, pong, (size_t)m) < 0)
                    return;
                ping[1] = 'p'; /* answered */
            }
        }
    }
}

/* Waits for needle in what the client received, pumping the p11chat
 * processes meanwhile. */
static int raw_wait(RAW *c, const char *needle, int ms)
{
    int64_t end = ta_now_ms() + ms;
    while (strstr(c->buf, needle) == NULL) {
        if (ta_now_ms() >= end)
            return 0;
        raw_pump(c, 10);
        tp_pump(10);
    }
    return 1;
}

static int raw_send(RAW *c, const char *s)
{
    return write(c->fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

static RAW *raw_open(const IRCD *d, const char *nick, const char *channel)
{
    RAW *c = calloc(1, sizeof(*c));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(d->port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char cmd[256];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return c;
    snprintf(cmd, sizeof(cmd), "NICK %s\r\nUSER %s 0 * :plain\r\n", nick, nick);
    raw_send(c, cmd);
    if (raw_wait(c, " 001 ", 10000) && channel != NULL) {
        snprintf(cmd, sizeof(cmd), "JOIN %s\r\n", channel);
        raw_send(c, cmd);
        raw_wait(c, " 366 ", 10000);
    }
    return c;
}

static void raw_close(RAW *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* ---- p11chat irc ------------------------------------------------------------ */

static void irc_start(TPROC *p, const IRCD *d, const char *nick, const char *to, const char *key,
                      const char *id, const char *trust, const char *const extra[])
{
    char *argv[40];
    char hp[64];
    int n = 0;
    snprintf(hp, sizeof(hp), "127.0.0.1:%s", d->port);
    argv[n++] = (char *)ta_p11chat();
    argv[n++] = "irc";
    argv[n++] = hp;
    argv[n++] = "--nick";
    argv[n++] = (char *)nick;
    argv[n++] = "--to";
    argv[n++] = (char *)to;
    argv[n++] = "--key";
    argv[n++] = (char *)key;
    argv[n++] = "--id";
    argv[n++] = (char *)id;
    argv[n++] = "--trust";
    argv[n++] = (char *)trust;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    tp_start(p, argv);
}

static const char *const initiate[] = {"--initiate", NULL};

/* Both sides end cleanly once Alice's input ends. */
static void close_both(TPROC *a, TPROC *b)
{
    tp_close_in(a);
    CU_ASSERT_EQUAL(tp_wait_exit(a, W), 0);
    tp_close_in(b);
    CU_ASSERT_EQUAL(tp_wait_exit(b, W), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a->ebuf, "session closed; the peer confirmed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b->ebuf, "closed by the peer"));
}

#if P11C_IRC_PART == 1
static void test_private(void)
{
    IRCD d;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    irc_start(&b, &d, "bob", "alice", bob, "bob", trust_b, NULL);
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for 'alice'", W));
    irc_start(&a, &d, "alice", "bob", alice, "alice", trust_a, initiate);
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&a, "just between us\n");
    CU_ASSERT(tp_wait_for(&b, 1, "just between us\n", W));
    tp_puts(&b, "agreed\n");
    CU_ASSERT(tp_wait_for(&a, 1, "agreed\n", W));
    close_both(&a, &b);
    tp_free(&a);
    tp_free(&b);
    ircd_stop(&d);
}

#endif

/* Every line the plain client received that holds armor: within IRC's 512
 * bytes as relayed, and with no plaintext anywhere. */
static void check_relayed(const RAW *c, const char *const secrets[])
{
    int armored = 0;
    for (const char *l = c->buf; *l != '\0';) {
        const char *e = strchr(l, '\n');
        size_t len = e != NULL ? (size_t)(e - l) + 1 : strlen(l);
        if (memmem(l, len, "?P11C", 5) != NULL) {
            armored++;
            CU_ASSERT(len <= 512);
            if (len > 512)
                fprintf(stderr, "a relayed line of %zu bytes\n", len);
        }
        l += len;
    }
    CU_ASSERT(armored >= 8);
    for (size_t i = 0; secrets[i] != NULL; i++)
        CU_ASSERT_PTR_NULL(strstr(c->buf, secrets[i]));
}

#if P11C_IRC_PART == 1
static void test_channel_third_user_and_long_message(void)
{
    IRCD d;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    RAW *carol = raw_open(&d, "carol", "#room");
    CU_ASSERT_FATAL(strstr(carol->buf, " 366 ") != NULL);
    irc_start(&b, &d, "bob", "#room", bob, "bob", trust_b, NULL);
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for a peer in #room", W));
    irc_start(&a, &d, "alice", "#room", alice, "alice", trust_a, initiate);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&a, "the plan is on\n");
    CU_ASSERT(tp_wait_for(&b, 1, "the plan is on\n", W));

    /* Carol writes in the channel: shown to both, marked, with her nick. */
    raw_send(carol, "PRIVMSG #room :what are you two up to?\r\n");
    CU_ASSERT(tp_wait_for(&a, 1, "[unencrypted] <carol> what are you two up to?\n", W));
    CU_ASSERT(tp_wait_for(&b, 1, "[unencrypted] <carol> what are you two up to?\n", W));

    /* 10 000 bytes: in pieces that each fit, paced under the flood control. */
    size_t n = 10000;
    char *big = malloc(n + 2);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('A' + i % 23);
    big[n] = '\n';
    big[n + 1] = '\0';
    int64_t t0 = ta_now_ms();
    tp_puts(&b, big);
    CU_ASSERT(tp_wait_for(&a, 1, big, 60000));
    fprintf(stderr, "[10000 bytes over IRC in %lld ms] ", (long long)(ta_now_ms() - t0));
    free(big);
    close_both(&a, &b);
    raw_wait(carol, "QUIT", 5000);
    CU_ASSERT_PTR_NOT_NULL(strstr(carol->buf, "PRIVMSG #room :?P11C"));
    check_relayed(carol, (const char *const[]){"the plan", "ABCDEFGHIJ", NULL});
    CU_ASSERT_PTR_NULL(strstr(a.ebuf, "Excess Flood"));
    CU_ASSERT_PTR_NULL(strstr(b.ebuf, "cut short"));
    raw_close(carol);
    tp_free(&a);
    tp_free(&b);
    ircd_stop(&d);
}

#endif

#if P11C_IRC_PART == 2
static void test_linked_servers(void)
{
    IRCD one, two;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&two, "irc2.test", NULL, "irc1.test"));
    CU_ASSERT_FATAL(ircd_start(&one, "irc1.test", &two, NULL));
    CU_ASSERT_FATAL(tp_wait_for(&one.p, 1, "Server \"irc2.test\" registered", 20000));

    RAW *carol = raw_open(&two, "carol", "#net");
    irc_start(&b, &two, "bob", "#net", bob, "bob", trust_b, NULL);
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for a peer in #net", W));
    irc_start(&a, &one, "alice", "#net", alice, "alice", trust_a, initiate);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&a, "across the network\n");
    CU_ASSERT(tp_wait_for(&b, 1, "across the network\n", W));
    tp_puts(&b, "loud and clear\n");
    CU_ASSERT(tp_wait_for(&a, 1, "loud and clear\n", W));
    close_both(&a, &b);
    raw_wait(carol, "QUIT", 5000);
    check_relayed(carol, (const char *const[]){"across the", "loud and", NULL});
    raw_close(carol);
    tp_free(&a);
    tp_free(&b);
    ircd_stop(&one);
    ircd_stop(&two);
}

#endif

#if P11C_IRC_PART == 1
static void test_peer_quits(void)
{
    IRCD d;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    irc_start(&b, &d, "bob", "#room", bob, "bob", trust_b, NULL);
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for", W));
    irc_start(&a, &d, "alice", "#room", alice, "alice", trust_a, initiate);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&a, "are you there?\n");
    CU_ASSERT(tp_wait_for(&b, 1, "are you there?\n", W));
    tp_kill(&b); /* gone without CLOSE */
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "'bob' left IRC ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "the conversation may be truncated"));
    tp_free(&a);
    tp_free(&b);
    ircd_stop(&d);
}

static void test_numeric_errors(void)
{
    IRCD d;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    /* 401: nobody of that nick to talk to. */
    irc_start(&a, &d, "alice", "nobody", alice, "alice", trust_a, initiate);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(a.ebuf, "no one is on the IRC server as 'nobody' (401 No such nick"));
    tp_free(&a);
    /* 433: the nick is taken. */
    RAW *taken = raw_open(&d, "zed", NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(taken->buf, " 001 "));
    irc_start(&a, &d, "zed", "bob", alice, "alice", trust_a, NULL);
    CU_ASSERT_EQUAL(tp_wait_exit(&a, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "the IRC server refuses the nick 'zed' ("));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.ebuf, "choose another with --nick"));
    tp_free(&a);
    raw_close(taken);
    /* Usage. */
    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "irc", "127.0.0.1:1", "--nick", "a b", "--to", "bob",
                           "--key", alice, "--id", "alice", NULL),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "--nick NICK is required: 1 to 30 characters"));
    free(o);
    free(e);
    /* The handshake deadline: Bob waits, nobody comes. */
    irc_start(&b, &d, "bob", "#empty", bob, "bob", trust_b,
              (const char *const[]){"--handshake-timeout", "2", NULL});
    CU_ASSERT_EQUAL(tp_wait_exit(&b, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.ebuf, "no peer completed the handshake within 2 s"));
    tp_free(&b);
    ircd_stop(&d);
}

#endif

#if P11C_IRC_PART == 2
/* Two answer Alice's HELLO in the channel: Carol, whom Alice trusts, and
 * Bob, the one she asked for with --peer. Carol's answer is dropped (before
 * Bob's, the handshake goes on) and only Bob gets a session. */
static void test_peer_in_a_channel(void)
{
    IRCD d;
    TPROC a, b, c;
    const char *carol = ta_key_pem("carol3072");
    const char *trust_ac = ta_path("trust-alice-carol");
    const char *trust_c = ta_path("trust-carol");
    char line[512];
    snprintf(line, sizeof(line), "bob %s\ncarol %s\n", ta_fp_hex("bob"), ta_fp_hex("carol3072"));
    ta_write_file(trust_ac, line, strlen(line));
    snprintf(line, sizeof(line), "alice %s\n", ta_fp_hex("alice"));
    ta_write_file(trust_c, line, strlen(line));
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    irc_start(&c, &d, "carol", "#room", carol, "carol", trust_c, NULL);
    irc_start(&b, &d, "bob", "#room", bob, "bob", trust_b, NULL);
    CU_ASSERT(tp_wait_for(&c, 2, "waiting for", W));
    CU_ASSERT(tp_wait_for(&b, 2, "waiting for", W));
    irc_start(&a, &d, "alice", "#room", alice, "alice", trust_ac,
              (const char *const[]){"--initiate", "--peer", "bob", NULL});
    CU_ASSERT(tp_wait_for(&a, 2, "waiting for 'bob' (the handshake times out in", W));
    CU_ASSERT(tp_wait_for(&a, 2, "trusted: 'bob' 9f22:694b:a719:04f1: secure session", W));
    /* Carol's answer came first (refused as not the peer asked for), while
     * Alice waited for FINISH (out of turn), or after the session began (not
     * a record of it): refused in any order. */
    int refused = 0;
    for (int i = 0; i < 500 && !refused; i++) {
        refused = (strstr(a.ebuf, "NOT THE PEER ASKED FOR: 'carol' ") != NULL &&
                   strstr(a.ebuf, "that handshake was dropped; still waiting") != NULL) ||
                  strstr(a.ebuf, "dropped a handshake message that is not from the peer") != NULL ||
                  strstr(a.ebuf, "rejected a message that is not from the peer") != NULL;
        tp_pump(20);
    }
    CU_ASSERT(refused);
    if (!refused)
        fprintf(stderr, "alice saw:\n%s\ncarol saw:\n%s\n", a.ebuf, c.ebuf);
    tp_puts(&a, "for bob only\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> for bob only\n", W));
    close_both(&a, &b);
    CU_ASSERT_PTR_NULL(strstr(c.obuf, "for bob only"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    tp_free(&a);
    tp_free(&b);
    tp_free(&c);
    ircd_stop(&d);
}

/* docs/usage.md's recipe: p11chat wrap around sic, a line-based IRC client
 * that joins with ':j #room' and sends ':m #room text'. */
static void test_wrap_sic(void)
{
    if (!have(P11C_SIC)) {
        fprintf(stderr, "skipped: sic is not installed (Debian package sic; scripts/setup.sh) ");
        return;
    }
    IRCD d;
    TPROC a, b;
    CU_ASSERT_FATAL(ircd_start(&d, "irc1.test", NULL, NULL));
    char cmd_a[512], cmd_b[512];
    /* sic reads one line each time its input becomes readable (and leaves
     * the rest in its buffer): the loop hands it lines one at a time. */
    static const char feed[] = "{ sleep 2; echo ':j #room'; while IFS= read -r l; do "
                               "printf '%s\\n' \"$l\"; sleep 0.3; done; }";
    snprintf(cmd_a, sizeof(cmd_a), "%s | %s -h 127.0.0.1 -p %s -n alice", feed, P11C_SIC, d.port);
    snprintf(cmd_b, sizeof(cmd_b), "%s | %s -h 127.0.0.1 -p %s -n bob", feed, P11C_SIC, d.port);
    char *argv_b[] = {(char *)ta_p11chat(),
                      "wrap",
                      "--key",
                      (char *)bob,
                      "--id",
                      "bob",
                      "--trust",
                      (char *)trust_b,
                      "--send-prefix",
                      ":m #room ",
                      "--",
                      "sh",
                      "-c",
                      cmd_b,
                      NULL};
    tp_start(&b, argv_b);
    CU_ASSERT(tp_wait_for(&b, 1, "JOIN #room", W) || tp_wait_for(&b, 1, "#room", W));
    char *argv_a[] = {(char *)ta_p11chat(),
                      "wrap",
                      "--initiate",
                      "--key",
                      (char *)alice,
                      "--id",
                      "alice",
                      "--trust",
                      (char *)trust_a,
                      "--send-prefix",
                      ":m #room ",
                      "--",
                      "sh",
                      "-c",
                      cmd_a,
                      NULL};
    tp_start(&a, argv_a);
    CU_ASSERT(tp_wait_for(&a, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&b, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&a, "through sic\n");
    CU_ASSERT(tp_wait_for(&b, 1, "alice> through sic\n", W));
    close_both(&a, &b);
    tp_free(&a);
    tp_free(&b);
    ircd_stop(&d);
}

#endif

int main(void)
{
    if (!have(P11C_NGIRCD)) {
        printf("apps_irc%s: skipped: ngircd is not installed (Debian package ngircd; "
               "scripts/setup.sh installs it)\n",
               P11C_IRC_PART == 1 ? "" : "_net");
        return 77;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
        /* Two programs of this file, each well under a minute: one server
         * (part 1), and two linked servers, --peer and sic (part 2). */
#if P11C_IRC_PART == 1
    CU_pSuite s = CU_add_suite("apps_irc", setup, NULL);
    CU_add_test(s, "private conversation", test_private);
    CU_add_test(s, "channel: a third user sees only armor; 10 000 bytes",
                test_channel_third_user_and_long_message);
    CU_add_test(s, "the peer quits mid-session: truncated", test_peer_quits);
    CU_add_test(s, "numeric errors, usage, deadline", test_numeric_errors);
#else
    CU_pSuite s = CU_add_suite("apps_irc_net", setup, NULL);
    CU_add_test(s, "two linked servers, one on each", test_linked_servers);
    CU_add_test(s, "--peer in a channel where another trusted peer answers",
                test_peer_in_a_channel);
    CU_add_test(s, "wrap around sic (docs/usage.md)", test_wrap_sic);
#endif
    return tu_main();
}
