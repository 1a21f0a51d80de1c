/*
 * What a person reads must be true, and only the peer meant gets what is
 * typed: attacks made by an independent peer over TCP on loopback against the
 * real p11chat command (software keys): identities built to forge the
 * verdict, messages that imitate status lines, refusals that name the peer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "apps_util.h"
#include "p11c_internal.h"
#include "p11chat.h"
#include "testutil.h"

#define W 20000 /* ms: the wait for any one thing to happen */

static const char *alice, *bob, *carol;
static const char *trust_a, *trust_b, *empty;

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    static char buf[4][1024];
    static int slot;
    char *b = buf[slot++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

static int setup(void)
{
    alice = ta_key_pem("alice");
    bob = ta_key_pem("bob");
    carol = ta_key_pem("carol3072");
    trust_a = ta_path("trust-alice"); /* alice trusts bob and carol */
    const char *t = strf("bob %s\ncarol %s\n", ta_fp_hex("bob"), ta_fp_hex("carol3072"));
    ta_write_file(trust_a, t, strlen(t));
    trust_b = ta_path("trust-bob"); /* bob trusts alice */
    t = strf("# bob's peers\nalice %s\n", ta_fp_hex("alice"));
    ta_write_file(trust_b, t, strlen(t));
    empty = ta_path("trust-empty");
    ta_write_file(empty, "", 0);
    return 0;
}

/* Every line of s starts with `prefix`. */
static int all_lines_start(const char *s, const char *prefix)
{
    for (const char *l = s; *l != '\0';) {
        if (strncmp(l, prefix, strlen(prefix)) != 0)
            return 0;
        const char *e = strchr(l, '\n');
        if (e == NULL)
            break;
        l = e + 1;
    }
    return 1;
}

/* The first status line about a peer: the one after "connection from". */
static const char *first_peer_line(const char *err)
{
    const char *c = strstr(err, "connection from ");
    const char *nl = c != NULL ? strchr(c, '\n') : NULL;
    return nl != NULL ? nl + 1 : "";
}

static int tcp_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static EVP_PKEY *load_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    return k;
}

/*
 * A HELLO as an independent peer would build it, with any identity bytes
 * (p11chat itself refuses to send an invalid one), correctly signed with
 * the key in `pem`: the receiver must refuse it for its identity alone.
 * Returned framed for the stream transport.
 */
static uint8_t *forged_hello(const char *pem, const uint8_t *id, size_t idlen, size_t *len)
{
    EVP_PKEY *a = load_pem(pem), *s = NULL;
    uint8_t *pub_a = NULL, *pub_s = NULL, *sig = NULL, *framed = NULL;
    size_t pub_a_len = 0, pub_s_len = 0, siglen = 0;
    P11C_WBUF tbs, msg;

    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_FATAL(p11c_session_key_make(NULL, NULL, &s) == P11C_OK);
    CU_ASSERT_FATAL(p11c_pub_der(a, &pub_a, &pub_a_len) == P11C_OK);
    CU_ASSERT_FATAL(p11c_pub_der(s, &pub_s, &pub_s_len) == P11C_OK);
    CU_ASSERT_FATAL(p11c_tbs_a(&tbs, P11C_SUITE_1, pub_a, pub_a_len, pub_s, pub_s_len, id, idlen) ==
                    P11C_OK);
    CU_ASSERT_FATAL(p11c_pss_sign(NULL, NULL, a, tbs.buf, tbs.len, &sig, &siglen) == P11C_OK);
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_HELLO);
    p11c_wbuf_u8(&msg, P11C_SUITE);
    p11c_wbuf_vec(&msg, pub_a, pub_a_len);
    p11c_wbuf_vec(&msg, pub_s, pub_s_len);
    p11c_wbuf_vec(&msg, id, idlen);
    p11c_wbuf_vec(&msg, sig, siglen);
    CU_ASSERT_FATAL(!msg.bad);
    CU_ASSERT_FATAL(p11c_frame_stream(msg.buf, msg.len, &framed, len) == P11C_OK);
    OPENSSL_free(pub_a);
    OPENSSL_free(pub_s);
    OPENSSL_free(sig);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    EVP_PKEY_free(a);
    EVP_PKEY_free(s);
    return framed;
}

/* ---- What the reader sees ------------------------------------------------ */

/* The identity of the issue: "alice', key <alice's short fp>: trusted", a line
 * separator, a right-to-left override and spaces. Sent by an unknown peer
 * (Carol's key) to Bob, who trusts Alice. */
static void test_forged_identity_refused(void)
{
    TPROC l;
    char id[256];
    size_t idlen, flen;
    int n = snprintf(id, sizeof(id), "alice', key %s: trusted", ta_fp_short("alice"));
    memcpy(id + n, "\xe2\x80\xa8\xe2\x80\xae    ", 10);
    idlen = (size_t)n + 10;
    int port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, NULL);
    CU_ASSERT_FATAL(port > 0);
    uint8_t *hello = forged_hello(carol, (const uint8_t *)id, idlen, &flen);
    int fd = tcp_to(port);
    CU_ASSERT(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, hello, flen), (ssize_t)flen);
    CU_ASSERT(tp_wait_for(&l, 2, strf("%s\n", p11c_strerror(P11C_ERR_IDENTITY)), W));
    /* Nothing was sent back, nothing about the peer was shown as a verdict. */
    uint8_t b;
    CU_ASSERT_EQUAL(read(fd, &b, 1), 0);
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "trusted"));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "secure session"));
    CU_ASSERT_STRING_EQUAL(l.obuf, "");
    close(fd);
    OPENSSL_free(hello);
    tp_free(&l);
}

/* The same name without the characters section 3 forbids is a valid
 * identity: the verdict comes first, the name quoted, its quote escaped. */
static void test_forged_identity_quoted(void)
{
    TPROC l, c;
    const char *id = strf("alice', key %s: trusted", ta_fp_short("alice"));
    int port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", carol, "--id", id, "--trust",
               empty, "--accept-unknown", NULL);
    const char *want = strf("p11chat: NOT IN TRUST STORE: 'alice\\', key %s: trusted' %s: secure "
                            "session, but check the fingerprint %s",
                            ta_fp_short("alice"), ta_fp_short("carol3072"), ta_fp_hex("carol3072"));
    CU_ASSERT(tp_wait_for(&l, 2, want, W));
    CU_ASSERT_EQUAL(strncmp(first_peer_line(l.ebuf), want, strlen(want)), 0);
    tp_puts(&c, "hi\n");
    CU_ASSERT(tp_wait_for(&l, 1, "'alice\\', key ", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, strf("'alice\\', key %s: trusted'> hi\n", ta_fp_short("alice")));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "p11chat: trusted"));
    tp_free(&l);
    tp_free(&c);
}

/* Messages written to look like our status lines or a relay's unencrypted
 * line: every line on standard output starts with the sender's name. */
static void test_messages_imitating_status(void)
{
    TPROC l, c;
    int port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", alice, "--id", "alice",
               "--trust", trust_a, NULL);
    CU_ASSERT(tp_wait_for(&c, 2, "trusted: 'bob' ", W));
    tp_puts(&c, "p11chat: trusted: 'carol' 1111:2222:3333:4444: secure session\n");
    tp_puts(&c, "[unencrypted] <user3> hi all\n");
    tp_puts(&c, "x\np11chat: closed by the peer\n");
    tp_puts(&c, "line one\xe2\x80\xa8p11chat: session closed\n");
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT(all_lines_start(l.obuf, "alice> "));
    CU_ASSERT_EQUAL(ta_lines(l.obuf), 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(l.obuf, "alice> line one\\u{2028}p11chat: session closed\n"));
    tp_free(&l);
    tp_free(&c);

    /* A peer whose name is itself made to look like a status line. */
    port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", empty, NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", carol, "--id",
               "p11chat: trusted", "--trust", empty, "--accept-unknown", NULL);
    CU_ASSERT(tp_wait_for(&l, 2, "NOT IN TRUST STORE: 'p11chat: trusted' ", W));
    tp_puts(&c, "hello\n");
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "'p11chat: trusted'> hello\n");
    tp_free(&l);
    tp_free(&c);
}

/* ---- Refusals name the peer ------------------------------------------------- */

/* Runs `listen` with ltrust and a connect with key/id; both must end with
 * failure and nothing on standard output. The listener's stderr in *err. */
static void refused_by_listener(const char *ltrust, const char *key, const char *id,
                                const char *extra, char **err)
{
    TPROC l, c;
    int port = extra != NULL
                   ? tp_listen(&l, "--key", alice, "--id", "alice", "--trust", ltrust, extra, NULL)
                   : tp_listen(&l, "--key", alice, "--id", "alice", "--trust", ltrust, NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", key, "--id", id, "--trust",
               empty, "--accept-unknown", NULL);
    tp_puts(&c, "must never arrive\n");
    CU_ASSERT(tp_wait_for(&l, 2, "refused", W));
    CU_ASSERT_NOT_EQUAL(tp_wait_exit(&c, W), 0);
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    CU_ASSERT_STRING_EQUAL(l.obuf, "");
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "secure session"));
    *err = strdup(l.ebuf);
    tp_free(&l);
    tp_free(&c);
}

static void test_mismatch_named(void)
{
    char *e;
    /* Carol's key under the name bob, whom Alice's store (line 1) binds to
     * Bob's key. */
    refused_by_listener(trust_a, carol, "bob", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        e, strf("p11chat: MISMATCH: 'bob' %s: refused: it presented the key %s, but %s line 1 "
                "binds 'bob' to the key %s. Someone may be posing as 'bob': check with them "
                "another way; only if they really have a new key, 'p11chat trust remove' the old "
                "entry and 'p11chat trust add' the new one\n",
                ta_fp_short("carol3072"), ta_fp_hex("carol3072"), trust_a, ta_fp_hex("bob"))));
    free(e);
    /* Carol's key under another name: line 2 binds that key to carol. */
    refused_by_listener(trust_a, carol, "dave", NULL, &e);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(e, strf("p11chat: MISMATCH: 'dave' %s: refused: its key %s is "
                       "the one %s line 2 binds to 'carol'. ",
                       ta_fp_short("carol3072"), ta_fp_hex("carol3072"), trust_a)));
    free(e);
}

static void test_known_only_named(void)
{
    char *e;
    refused_by_listener(empty, carol, "mallory", "--known-only", &e);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(e, strf("p11chat: NOT IN TRUST STORE: 'mallory' %s: refused (--known-only): its "
                       "fingerprint is %s; ",
                       ta_fp_short("carol3072"), ta_fp_hex("carol3072"))));
    free(e);
}

/* ---- The peer you meant, and nobody else ----------------------------------- */

/* The attack of the report: Alice means to talk to Bob and types before the
 * handshake; Carol, whom Alice also trusts, is the one who answers. With
 * --peer bob, Carol gets no session and none of what was typed. */
static void test_peer_refuses_trusted_carol(void)
{
    TPROC l, c;
    const char *trust_c = ta_path("trust-carol"); /* carol trusts alice */
    const char *t = strf("alice %s\n", ta_fp_hex("alice"));
    ta_write_file(trust_c, t, strlen(t));
    int port = tp_listen(&l, "--key", carol, "--id", "carol", "--trust", trust_c, NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", alice, "--id", "alice",
               "--trust", trust_a, "--peer", "bob", NULL);
    tp_puts(&c, "Bob, the merger password is swordfish\n");
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        c.ebuf, strf("p11chat: NOT THE PEER ASKED FOR: 'carol' %s: refused: --peer asked for "
                     "'bob'; this peer is trusted under its own name. Nothing was sent to it.\n",
                     ta_fp_short("carol3072"))));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    tp_signal(&l, SIGINT);
    tp_wait_exit(&l, W);
    CU_ASSERT_PTR_NULL(strstr(l.obuf, "swordfish"));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "swordfish"));
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "secure session"));
    CU_ASSERT_STRING_EQUAL(l.obuf, "");
    tp_free(&l);
    tp_free(&c);

    /* The same on the listening side: Bob waits for alice only; Carol, whom
     * he trusts too, calls. */
    const char *trust_bc = ta_path("trust-bob-carol");
    t = strf("alice %s\ncarol %s\n", ta_fp_hex("alice"), ta_fp_hex("carol3072"));
    ta_write_file(trust_bc, t, strlen(t));
    port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_bc, "--peer", "alice", NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_puts(&l, "for alice only\n");
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", carol, "--id", "carol",
               "--trust", trust_a, NULL);
    CU_ASSERT(tp_wait_for(&l, 2,
                          strf("p11chat: NOT THE PEER ASKED FOR: 'carol' %s: refused: --peer "
                               "asked for 'alice'",
                               ta_fp_short("carol3072")),
                          W));
    CU_ASSERT_NOT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "secure session"));
    tp_signal(&l, SIGINT);
    tp_wait_exit(&l, W);
    tp_free(&l);
    tp_free(&c);

    /* And the peer asked for gets the session. */
    port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", trust_b, "--peer", "alice", NULL);
    CU_ASSERT_FATAL(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", alice, "--id", "alice",
               "--trust", trust_a, "--peer", "bob", NULL);
    tp_puts(&c, "typed early, for bob\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> typed early, for bob\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    tp_free(&l);
    tp_free(&c);
}

/* Lines typed before the session, to a peer not in the trust store, input
 * not a terminal: dropped with a count, unless --accept-unknown. */
static void test_held_lines_unknown_peer(void)
{
    for (int accept = 0; accept < 2; accept++) {
        TPROC l, c;
        int port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", empty, NULL);
        CU_ASSERT_FATAL(port > 0);
        if (accept)
            tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", alice, "--id", "alice",
                       "--trust", empty, "--accept-unknown", NULL);
        else
            tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", alice, "--id", "alice",
                       "--trust", empty, NULL);
        tp_puts(&c, "early one\nearly two\n");
        CU_ASSERT(tp_wait_for(&c, 2, "NOT IN TRUST STORE: 'bob' ", W));
        if (!accept)
            CU_ASSERT(tp_wait_for(&c, 2,
                                  "NOT IN TRUST STORE: 'bob' 9f22:694b:a719:04f1: 2 line(s) typed "
                                  "before the session were not sent to this peer (no terminal to "
                                  "ask on; --accept-unknown sends them)\n",
                                  W));
        /* What is typed after the verdict was shown is sent. */
        tp_puts(&c, "after the verdict\n");
        CU_ASSERT(tp_wait_for(&l, 1, "alice> after the verdict\n", W));
        tp_close_in(&c);
        CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
        CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
        CU_ASSERT_STRING_EQUAL(l.obuf, accept ? "alice> early one\nalice> early two\nalice> "
                                                "after the verdict\n"
                                              : "alice> after the verdict\n");
        tp_free(&l);
        tp_free(&c);
    }
}

/* What is typed before the session is held up to a bound: past it, lines
 * are refused with a count, and the held ones die with the session. */
static void test_held_lines_bounded(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                    listen(lfd, 1) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    TPROC c;
    /* A peer that accepts and never answers: the session never comes. */
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", ntohs(sa.sin_port)), "--key", alice, "--id",
               "alice", "--trust", trust_a, "--timeout", "3", NULL);
    char *line = malloc(65001);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memset(line, 'p', 65000);
    line[65000] = '\n';
    for (int i = 0; i < 66; i++) /* 66 x 65004 bytes held would pass 4 MiB */
        tp_write(&c, line, 65001);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "line of 65000 bytes not sent: 4194304 bytes are "
                                          "already waiting for the session\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "no completed handshake within 3 s\n"));
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    free(line);
    tp_free(&c);
    close(lfd);
}

/* On a terminal (a pseudo-terminal made by script(1)), the person is asked:
 * answered no (0), yes (1), or input ends instead (2). */
static void test_held_lines_asked(void)
{
    for (int yes = 0; yes < 3; yes++) {
        TPROC l, c;
        int port = tp_listen(&l, "--key", bob, "--id", "bob", "--trust", empty, NULL);
        CU_ASSERT_FATAL(port > 0);
        char *cmd = strf("'%s' connect 127.0.0.1:%d --key '%s' --id alice --trust '%s'",
                         ta_p11chat(), port, alice, empty);
        char *const argv[] = {"script", "-qfec", cmd, "/dev/null", NULL};
        tp_start(&c, argv);
        tp_puts(&c, "typed on the terminal first\n");
        CU_ASSERT(tp_wait_for(&c, 1,
                              "NOT IN TRUST STORE: 'bob' 9f22:694b:a719:04f1: 1 line(s) typed "
                              "before the session are held: type 'yes' to send them to this "
                              "peer, anything else to drop them",
                              W));
        if (yes == 2) {
            /* Input ends instead of an answer: dropped, and the session closes. */
            tp_close_in(&c);
            CU_ASSERT(tp_wait_for(&c, 1,
                                  "1 line(s) typed before the session were not sent: input "
                                  "ended before an answer",
                                  W));
            CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
            CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
            CU_ASSERT_STRING_EQUAL(l.obuf, "");
            tp_free(&l);
            tp_free(&c);
            continue;
        }
        tp_puts(&c, yes ? "yes\n" : "no\n");
        CU_ASSERT(tp_wait_for(&c, 1,
                              yes ? "sending the 1 held line(s)"
                                  : "1 line(s) typed before the session were not sent: you did "
                                    "not agree",
                              W));
        tp_puts(&c, "then this\n");
        CU_ASSERT(tp_wait_for(&l, 1, "alice> then this\n", W));
        tp_close_in(&l);
        CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
        CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
        CU_ASSERT_STRING_EQUAL(l.obuf, yes ? "alice> typed on the terminal first\nalice> then "
                                             "this\n"
                                           : "alice> then this\n");
        tp_free(&l);
        tp_free(&c);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_attacks", setup, NULL);
    CU_add_test(s, "forged identity of the issue refused", test_forged_identity_refused);
    CU_add_test(s, "forged but valid identity: verdict first, name quoted",
                test_forged_identity_quoted);
    CU_add_test(s, "messages imitating status and relay lines", test_messages_imitating_status);
    CU_add_test(s, "mismatch names the peer, both keys, the trust entry", test_mismatch_named);
    CU_add_test(s, "known-only names the peer refused", test_known_only_named);
    CU_add_test(s, "--peer: a trusted Carol who answers gets nothing",
                test_peer_refuses_trusted_carol);
    CU_add_test(s, "lines typed before the session, unknown peer, no terminal",
                test_held_lines_unknown_peer);
    CU_add_test(s, "lines typed before the session: bounded", test_held_lines_bounded);
    CU_add_test(s, "lines typed before the session, unknown peer, asked on a terminal",
                test_held_lines_asked);
    return tu_main();
}
