/* p11chat listen/connect over real TCP on loopback, with software (PEM)
 * keys: both directions, trust results, refusals, clean close, truncation,
 * escaping, the message size limit. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "apps_util.h"
#include "p11chat.h"
#include "testutil.h"

#define W 20000 /* ms: the wait for any one thing to happen */

static const char *alice, *bob, *carol;
static const char *trust_a, *trust_b, *empty;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void)
{
    alice = ta_key_pem("alice");
    bob = ta_key_pem("bob");
    carol = ta_key_pem("carol3072");
    trust_a = ta_trust_store("trust-alice", "bob", ta_fp_hex("bob"));
    trust_b = ta_trust_store("trust-bob", "alice", ta_fp_hex("alice"));
    empty = ta_path("trust-empty");
    ta_write_file(empty, "", 0);
    return 0;
}

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 512, fmt, ap);
    va_end(ap);
    return b;
}

/* Bob listens, Alice connects; both wait for the session. */
static int pair(TPROC *l, TPROC *c, const char *lkey, const char *ltrust, const char *ckey,
                const char *ctrust, const char *extra)
{
    char port[32];
    int p = extra ? tp_listen(l, "--key", lkey, "--id", "bob", "--trust", ltrust, extra, NULL)
                  : tp_listen(l, "--key", lkey, "--id", "bob", "--trust", ltrust, NULL);
    CU_ASSERT(p > 0); /* not fatal: the processes must still be freed */
    snprintf(port, sizeof(port), "127.0.0.1:%d", p);
    if (extra)
        tp_p11chat(c, "connect", port, "--key", ckey, "--id", "alice", "--trust", ctrust, extra,
                   NULL);
    else
        tp_p11chat(c, "connect", port, "--key", ckey, "--id", "alice", "--trust", ctrust, NULL);
    return p;
}

static void test_both_directions_clean_close(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "trusted: 'alice' 0856:e264:f021:50cc: secure session\n", W));
    CU_ASSERT(tp_wait_for(&c, 2, "trusted: 'bob' 9f22:694b:a719:04f1: secure session\n", W));

    tp_puts(&c, "hello bob\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> hello bob\n", W));
    tp_puts(&l, "hello alice\n\nthird\n");
    CU_ASSERT(tp_wait_for(&c, 1, "bob> third\n", W));
    tp_puts(&c, "bye\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> bye\n", W));

    /* Alice ends her input: CLOSE, Bob answers, both end cleanly. */
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> hello bob\nalice> bye\n");
    CU_ASSERT_STRING_EQUAL(c.obuf, "bob> hello alice\nbob> \nbob> third\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(
        c.ebuf, "p11chat: session closed; the peer confirmed 2 of the 2 messages we sent\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        l.ebuf, "p11chat: closed by the peer; the peer confirmed 3 of the 3 messages we sent\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "p11chat: listening on 127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "p11chat: connection from 127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "p11chat: connected to 127.0.0.1:"));
    tp_free(&l);
    tp_free(&c);
}

static void test_listener_closes_first(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, NULL);
    CU_ASSERT(tp_wait_for(&c, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    CU_ASSERT(tp_wait_for(&l, 2, "'alice' 0856:e264:f021:50cc: secure session", W));
    tp_puts(&l, "one\ntwo");
    tp_close_in(&l); /* the last line has no newline: still a message */
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_STRING_EQUAL(c.obuf, "bob> one\nbob> two\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "session closed; the peer confirmed 2 of the 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "closed by the peer; the peer confirmed 0 of the 0"));
    tp_free(&l);
    tp_free(&c);
}

static void test_unknown_peer_shown(void)
{
    TPROC l, c;
    pair(&l, &c, bob, empty, carol, empty, NULL);
    CU_ASSERT(tp_wait_for(&l, 2,
                          strf("NOT IN TRUST STORE: 'alice' %s: secure session, but check the "
                               "fingerprint ",
                               ta_fp_short("carol3072")),
                          W));
    CU_ASSERT(tp_wait_for(&l, 2, ta_fp_hex("carol3072"), W));
    CU_ASSERT(
        tp_wait_for(&c, 2, "NOT IN TRUST STORE: 'bob' 9f22:694b:a719:04f1: secure session", W));
    tp_puts(&c, "still works\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> still works\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    tp_free(&l);
    tp_free(&c);
}

static void test_known_only_refuses(void)
{
    TPROC l, c;
    /* The listener knows nobody: carol's key, named "alice", is unknown. */
    pair(&l, &c, bob, empty, carol, trust_a, "--known-only");
    tp_puts(&c, "must never arrive\n");
    /* The listener drops that connection and waits for the next one. */
    CU_ASSERT(tp_wait_for(&l, 2, "; still listening\n", W));
    CU_ASSERT_NOT_EQUAL(tp_wait_exit(&c, W), 0);
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "interrupted before the session was established\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, strf("p11chat: NOT IN TRUST STORE: 'alice' %s: refused "
                                               "(--known-only): its fingerprint is %s",
                                               ta_fp_short("carol3072"), ta_fp_hex("carol3072"))));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "secure session"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    CU_ASSERT_STRING_EQUAL(l.obuf, "");
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    tp_free(&l);
    tp_free(&c);

    /* The initiator refusing an unknown responder. */
    pair(&l, &c, bob, trust_b, alice, empty, "--known-only");
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT(tp_wait_for(&l, 2, "dropped the connection from 127.0.0.1:", W));
    CU_ASSERT(
        tp_wait_for(&l, 2, ": it ended the connection during the handshake; still listening\n", W));
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "p11chat: NOT IN TRUST STORE: 'bob' "
                                          "9f22:694b:a719:04f1: refused (--known-only)"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    tp_free(&l);
    tp_free(&c);
}

static void test_trust_mismatch_refused(void)
{
    TPROC l, c;
    /* Carol's key, claiming to be alice, whom bob knows with another key. */
    pair(&l, &c, bob, trust_b, carol, trust_a, NULL);
    tp_puts(&c, "must never arrive\n");
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT(tp_wait_for(&l, 2, "; still listening\n", W));
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(l.ebuf, strf("p11chat: MISMATCH: 'alice' %s: refused: it presented the key %s, "
                            "but %s line 1 binds 'alice' to the key %s. Someone may be posing as "
                            "'alice'",
                            ta_fp_short("carol3072"), ta_fp_hex("carol3072"), trust_b,
                            ta_fp_hex("alice"))));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "the connection ended during the handshake"));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "secure session"));
    CU_ASSERT_STRING_EQUAL(l.obuf, "");
    tp_free(&l);
    tp_free(&c);
}

static void test_killed_peer_truncated(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "secure session", W));
    tp_puts(&c, "before the crash\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> before the crash\n", W));
    tp_kill(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 3);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> before the crash\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "the connection ended without CLOSE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "truncated"));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "session closed"));
    tp_free(&l);
    tp_free(&c);
}

static void test_escaping(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "secure session", W));
    static const char msg[] = "a\x1b[2Jb\xff\tc\x07 caf\xc3\xa9 \xe2\x80\xae rtl\r\\\n";
    tp_write(&c, msg, sizeof(msg) - 1);
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf,
                           "alice> a\\x1b[2Jb\\xff\\tc\\x07 caf\xc3\xa9 \\u{202e} rtl\\r\\\\\n");
    tp_free(&l);
    tp_free(&c);
}

static void test_max_size(void)
{
    TPROC l, c;
    size_t n = P11C_MAX_DATA;
    char *big = malloc(n + 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    pair(&l, &c, bob, trust_b, alice, trust_a, "--raw");
    CU_ASSERT(tp_wait_for(&c, 2, "secure session", W));

    /* With --raw, each message alone on its line. Exactly the limit: one message. One byte more:
     * refused, the session goes on. */
    memset(big, 'x', n);
    big[n] = '\n';
    tp_write(&c, big, n + 1);
    memset(big, 'y', n + 1);
    big[n + 1] = '\n';
    tp_write(&c, big, n + 2);
    tp_puts(&c, "after\n");
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_EQUAL(l.olen, n + 1 + 6);
    CU_ASSERT_EQUAL(strspn(l.obuf, "x"), n);
    CU_ASSERT_STRING_EQUAL(l.obuf + n, "\nafter\n");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(c.ebuf, "line of 65537 bytes not sent: a message holds at most 65536 bytes\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "the peer confirmed 2 of the 2 messages we sent"));

    /* A received message of the maximum size, every byte escaped (4x on stdout). */
    tp_free(&l);
    tp_free(&c);
    pair(&l, &c, bob, trust_b, alice, trust_a, "--raw");
    CU_ASSERT(tp_wait_for(&c, 2, "secure session", W));
    memset(big, 0x01, n);
    big[n] = '\n';
    tp_write(&c, big, n + 1);
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_EQUAL(l.olen, 4 * n + 1);
    CU_ASSERT_EQUAL(strncmp(l.obuf, "\\x01\\x01\\x01", 12), 0);
    free(big);
    tp_free(&l);
    tp_free(&c);
}

static void test_ipv6(void)
{
    TPROC l, c;
    tp_p11chat(&l, "listen", "[::1]:0", "--key", bob, "--id", "bob", "--trust", trust_b, NULL);
    if (!tp_wait_for(&l, 2, "listening on [::1]:", W)) {
        /* No IPv6 on this machine: nothing to test. */
        CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "cannot listen on ::1:0"));
        tp_free(&l);
        return;
    }
    CU_ASSERT(tp_wait_for(&l, 2, "]:", W));
    int port = atoi(strstr(l.ebuf, "[::1]:") + 6);
    char hp[64];
    snprintf(hp, sizeof(hp), "[::1]:%d", port);
    tp_p11chat(&c, "connect", hp, "--key", alice, "--id", "alice", "--trust", trust_a, NULL);
    CU_ASSERT(tp_wait_for(&c, 2, "'bob' 9f22:694b:a719:04f1: secure session", W));
    tp_puts(&c, "over IPv6\n");
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> over IPv6\n");
    tp_free(&l);
    tp_free(&c);
}

static void test_window_policy(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, "--policy=window");
    CU_ASSERT(tp_wait_for(&c, 2, "secure session", W));
    tp_puts(&c, "w1\nw2\n");
    tp_puts(&l, "w3\n");
    CU_ASSERT(tp_wait_for(&c, 1, "bob> w3\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> w1\nalice> w2\n");
    tp_free(&l);
    tp_free(&c);
}

static void test_delayed_ack(void)
{
    /* With --verbose the sender sees the confirmation the peer sends when it
     * has nothing of its own to say (about a second after the message). */
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, "--verbose");
    CU_ASSERT(tp_wait_for(&c, 2, "secure session", W));
    tp_puts(&c, "ack me\n");
    CU_ASSERT(tp_wait_for(&c, 2, "the peer confirmed 1 of the 1 messages we sent\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    tp_free(&l);
    tp_free(&c);
}

/* A listening socket in this process that never speaks, or speaks garbage. */
static int raw_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_handshake_timeout_and_garbage(void)
{
    int port = 0;
    char hp[64], *o, *e;
    int lfd = raw_listener(&port);
    CU_ASSERT_FATAL(lfd >= 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);

    /* Connected, but the peer never answers the HELLO. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "connect", hp, "--key", alice, "--id", "alice",
                           "--trust", trust_a, "--timeout", "1", NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "no completed handshake within 1 s\n"));
    CU_ASSERT_STRING_EQUAL(o, "");
    free(o);
    free(e);
    int afd = accept(lfd, NULL, NULL);
    if (afd >= 0)
        close(afd);

    /* The peer answers with a frame longer than the protocol allows. */
    TPROC c;
    tp_p11chat(&c, "connect", hp, "--key", alice, "--id", "alice", "--trust", trust_a, NULL);
    afd = accept(lfd, NULL, NULL);
    CU_ASSERT(afd >= 0);
    static const unsigned char bad[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    CU_ASSERT_EQUAL(write(afd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        c.ebuf, strf("the peer sent a malformed frame: %s\n", p11c_strerror(P11C_ERR_FRAME))));
    close(afd);
    tp_free(&c);

    /* A well-framed message that is not a P11C handshake message. */
    tp_p11chat(&c, "connect", hp, "--key", alice, "--id", "alice", "--trust", trust_a, NULL);
    afd = accept(lfd, NULL, NULL);
    CU_ASSERT(afd >= 0);
    static const unsigned char junk[] = {0, 0, 0, 3, 9, 9, 9};
    CU_ASSERT_EQUAL(write(afd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "session failed: "));
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    close(afd);
    tp_free(&c);
    close(lfd);
}

/* A connection that never speaks does not hold the listener: the real peer
 * that comes after it gets its session at once, and the silent one is
 * dropped at its own deadline. */
static void test_silent_connection(void)
{
    TPROC l, c;
    int64_t t0;
    int p = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, "--timeout", "3", NULL);
    CU_ASSERT_FATAL(p > 0);
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(silent >= 0 && connect(silent, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT(tp_wait_for(&l, 2, "connection from 127.0.0.1:", W));
    t0 = now_ms();
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", p), "--key", alice, "--id", "alice", "--trust",
               trust_a, NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "trusted: 'alice' ", W));
    CU_ASSERT(now_ms() - t0 < 2500); /* well before the silent one's 3 s */
    tp_puts(&c, "not kept waiting\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> not kept waiting\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    close(silent);
    tp_free(&l);
    tp_free(&c);

    /* Alone, the silent connection is dropped at its deadline; the listener
     * goes on waiting. */
    p = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, "--timeout", "1", NULL);
    CU_ASSERT_FATAL(p > 0);
    sa.sin_port = htons((uint16_t)p);
    silent = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(silent >= 0 && connect(silent, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT(tp_wait_for(&l, 2, ": no completed handshake within 1 s; still listening\n", W));
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    close(silent);
    tp_free(&l);
}

static void test_close_not_answered(void)
{
    /* The listener is frozen once the session is up: our CLOSE goes unanswered. */
    TPROC l, c;
    int p = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, NULL);
    char hp[64];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", p);
    tp_p11chat(&c, "connect", hp, "--key", alice, "--id", "alice", "--trust", trust_a, "--timeout",
               "4", NULL);
    int up = tp_wait_for(&l, 2, "secure session", W) && tp_wait_for(&c, 2, "secure session", W);
    CU_ASSERT(up);
    if (up) {
        tp_signal(&l, SIGSTOP);
        tp_puts(&c, "into the void\n");
        tp_close_in(&c);
        CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "the peer did not answer our CLOSE within 4 s"));
        tp_signal(&l, SIGCONT);
    }
    tp_free(&l);
    tp_free(&c);
}

static void test_interrupt_closes(void)
{
    TPROC l, c;
    pair(&l, &c, bob, trust_b, alice, trust_a, NULL);
    CU_ASSERT(tp_wait_for(&c, 2, "secure session", W));
    CU_ASSERT(tp_wait_for(&l, 2, "secure session", W));
    tp_puts(&c, "then Ctrl-C\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> then Ctrl-C\n", W));
    tp_signal(&c, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "session closed; the peer confirmed 1 of the 1"));
    tp_free(&l);
    tp_free(&c);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_tcp", setup, NULL);
    CU_add_test(s, "both directions, clean close, counts", test_both_directions_clean_close);
    CU_add_test(s, "listener closes first", test_listener_closes_first);
    CU_add_test(s, "unknown peer shown with fingerprint", test_unknown_peer_shown);
    CU_add_test(s, "known-only refuses unknown peers", test_known_only_refuses);
    CU_add_test(s, "trust mismatch refused", test_trust_mismatch_refused);
    CU_add_test(s, "killed peer reported as truncated", test_killed_peer_truncated);
    CU_add_test(s, "received text escaped", test_escaping);
    CU_add_test(s, "message size limit", test_max_size);
    CU_add_test(s, "IPv6 loopback", test_ipv6);
    CU_add_test(s, "window policy", test_window_policy);
    CU_add_test(s, "delayed ACK", test_delayed_ack);
    CU_add_test(s, "handshake timeout, malformed frames", test_handshake_timeout_and_garbage);
    CU_add_test(s, "a silent connection does not hold the listener", test_silent_connection);
    CU_add_test(s, "CLOSE not answered", test_close_not_answered);
    CU_add_test(s, "SIGINT closes cleanly", test_interrupt_closes);
    return tu_main();
}
