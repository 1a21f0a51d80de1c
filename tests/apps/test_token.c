/* The p11chat command with keys in a private SoftHSM2 token, reached only
 * through OpenSSL and the provider: keygen, fingerprints, and chats over TCP
 * in every combination of token and software (PEM) keys. */
#include <regex.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps_util.h"
#include "p11chat.h"
#include "testutil.h"

#define W 30000

static const char *pin; /* the token's PIN file */
static char uri_alice[256], uri_bob[256];
static char fp_alice[65], fp_bob[65]; /* of the token keys */
static const char *pem_alice, *pem_bob;

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    static char buf[8][1024];
    static int slot;
    char *b = buf[slot++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

/* The full fingerprint `p11chat fingerprint` prints for KEY, or "" on failure. */
static void fingerprint(const char *key, char out[65])
{
    char *o = NULL;
    out[0] = '\0';
    if (ta_run(NULL, &o, NULL, W, "fingerprint", "--key", key, NULL) == 0) {
        const char *f = strstr(o, "full:  ");
        if (f != NULL && strlen(f) >= 7 + 64)
            snprintf(out, 65, "%.64s", f + 7);
    }
    free(o);
}

static int setup(void)
{
    const char *dir = tu_token_make("apps", 1);
    static char pinpath[1024];
    snprintf(pinpath, sizeof(pinpath), "%s/pin", dir);
    pin = pinpath;
    snprintf(uri_alice, sizeof(uri_alice), "pkcs11:token=%s;object=alice", TU_TOKEN_LABEL);
    snprintf(uri_bob, sizeof(uri_bob), "pkcs11:token=%s;object=bob", TU_TOKEN_LABEL);
    pem_alice = ta_key_pem("alice");
    pem_bob = ta_key_pem("bob");
    fingerprint(uri_alice, fp_alice);
    fingerprint(uri_bob, fp_bob);
    return fp_alice[0] != '\0' && fp_bob[0] != '\0' ? 0 : 1;
}

static void test_fingerprint_uri(void)
{
    char *o, *e;
    /* The public half needs no PIN; with the PIN the pair gives the same. */
    CU_ASSERT_EQUAL(
        ta_run(NULL, &o, &e, W, "fingerprint", "--key", strf("%s;type=public", uri_alice), NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, strf("full:  %s\n", fp_alice)));
    CU_ASSERT_STRING_EQUAL(e, "");
    free(o);
    free(e);
    CU_ASSERT_EQUAL(
        ta_run(NULL, &o, NULL, W, "fingerprint", "--key", uri_alice, "--pin-source", pin, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, strf("full:  %s\n", fp_alice)));
    free(o);
    CU_ASSERT_STRING_NOT_EQUAL(fp_alice, fp_bob);

    /* A PIN file others can read draws a warning; a private one none. */
    const char *shared = ta_path("shared-pin");
    ta_write_file(shared, TU_USER_PIN, strlen(TU_USER_PIN));
    CU_ASSERT_EQUAL(chmod(shared, 0640), 0);
    CU_ASSERT_EQUAL(
        ta_run(NULL, &o, &e, W, "fingerprint", "--key", uri_alice, "--pin-source", shared, NULL),
        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, strf("p11chat: warning: the PIN file '%s' is readable by "
                                          "other users (mode 0640): run 'chmod 600 %s'\n",
                                          shared, shared)));
    free(o);
    free(e);
    CU_ASSERT_EQUAL(chmod(shared, 0600), 0);
    CU_ASSERT_EQUAL(
        ta_run(NULL, &o, &e, W, "fingerprint", "--key", uri_alice, "--pin-source", shared, NULL),
        0);
    CU_ASSERT_PTR_NULL(strstr(e, "warning"));
    free(o);
    free(e);

    /* No such key, no such token: one clear line, exit 1. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "fingerprint", "--key",
                           strf("pkcs11:token=%s;object=nobody", TU_TOKEN_LABEL), NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(o, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "p11chat: no usable key at the URI: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "'nobody'"));
    CU_ASSERT_EQUAL(ta_lines(e), 1);
    free(o);
    free(e);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, W, "fingerprint", "--key",
                           "pkcs11:token=no-such-token;object=alice", NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "no-such-token"));
    free(e);
}

static void test_keygen(void)
{
    char *o, *e;
    const char *uri = strf("pkcs11:token=%s;object=carol", TU_TOKEN_LABEL);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "keygen", "--key", uri, "--pin-source", pin, NULL), 0);
    /* The new key's URI, with a random 8-byte id, then its fingerprints. */
    regex_t re;
    regmatch_t m[2];
    CU_ASSERT_EQUAL_FATAL(
        regcomp(&re,
                "^key:   (pkcs11:token=p11chat-test;object=carol;id=(%[0-9a-f]{2}){8})\n"
                "short: [0-9a-f]{4}:[0-9a-f]{4}:[0-9a-f]{4}:[0-9a-f]{4}\n"
                "full:  [0-9a-f]{64}\n$",
                REG_EXTENDED),
        0);
    CU_ASSERT_EQUAL(regexec(&re, o, 2, m, 0), 0);
    regfree(&re);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "made a 2048-bit key 'carol' in the token"));
    char newuri[256], fp[65];
    snprintf(newuri, sizeof(newuri), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), o + m[1].rm_so);
    fingerprint(newuri, fp);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, strf("full:  %s\n", fp)));
    free(o);
    free(e);

    /* A label or an id already taken is refused; nothing is made. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "keygen", "--key", uri, "--pin-source", pin, NULL), 1);
    CU_ASSERT_STRING_EQUAL(o, "");
    CU_ASSERT_STRING_EQUAL(e, "p11chat: keygen: the label 'carol' is already taken on this "
                              "token; choose another object= (no key was made)\n");
    free(o);
    free(e);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, W, "keygen", "--key",
                           strf("pkcs11:token=%s;object=dave;id=%%01", TU_TOKEN_LABEL),
                           "--pin-source", pin, NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "the id is already taken on this token"));
    free(e);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, W, "fingerprint", "--key",
                           strf("pkcs11:token=%s;object=dave", TU_TOKEN_LABEL), NULL),
                    1);
    free(e);

    /* 3072 bits with a chosen id; the PIN in the URI works too. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "keygen", "--bits", "3072", "--key",
                           strf("pkcs11:token=%s;object=dave;id=%%d0%%0d?pin-value=%s",
                                TU_TOKEN_LABEL, TU_USER_PIN),
                           NULL),
                    0);
    CU_ASSERT_EQUAL(
        strncmp(o, strf("key:   pkcs11:token=%s;object=dave;id=%%d0%%0d\n", TU_TOKEN_LABEL),
                strlen(strf("key:   pkcs11:token=%s;object=dave;id=%%d0%%0d\n", TU_TOKEN_LABEL))),
        0);
    CU_ASSERT_PTR_NULL(strstr(o, TU_USER_PIN "\n")); /* the PIN is not printed back */
    CU_ASSERT_PTR_NULL(strstr(o, "pin-value"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "made a 3072-bit key 'dave'"));
    free(o);
    free(e);

    /* Without a PIN the token cannot make a key: say so. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "keygen", "--key",
                           strf("pkcs11:token=%s;object=erin", TU_TOKEN_LABEL), NULL),
                    1);
    CU_ASSERT_STRING_EQUAL(o, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "no key was made"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "no PIN was given: use --pin-source FILE"));
    free(o);
    free(e);
}

static void test_wrong_pin(void)
{
    /* The key loads without a PIN (its public half); the wrong PIN shows
     * before connect connects and before listen listens: the token is asked
     * to sign once at the start. */
    const char *bad = ta_path("badpin");
    ta_write_file(bad, "9999", 4);
    const char *trust = ta_path("trust-wrong-pin");
    ta_write_file(trust, strf("alice %s\n", fp_alice), 6 + 64 + 1);
    TPROC l, c;
    int port = tp_listen(&l, "--key", pem_bob, "--id", "bob", "--trust", trust, NULL);
    CU_ASSERT(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", uri_alice, "--pin-source", bad,
               "--id", "alice", "--trust", ta_path("none"), NULL);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "the token key cannot sign (check the PIN"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "connected to"));
    CU_ASSERT_PTR_NULL(strstr(c.ebuf, "9999"));
    CU_ASSERT_STRING_EQUAL(c.obuf, "");
    /* Nobody came to the listener. */
    CU_ASSERT_PTR_NULL(strstr(l.ebuf, "connection from"));
    tp_signal(&l, SIGINT);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 1);
    tp_free(&l);
    tp_free(&c);

    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, W, "listen", "127.0.0.1:0", "--key", uri_alice,
                           "--pin-source", bad, "--id", "alice", "--trust", trust, NULL),
                    1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "the token key cannot sign (check the PIN"));
    CU_ASSERT_PTR_NULL(strstr(e, "listening on"));
    CU_ASSERT_PTR_NULL(strstr(e, "9999"));
    free(o);
    free(e);
}

/* Bob listens with lkey, Alice connects with ckey; each trusts the other's
 * fingerprint; a message each way; Alice closes; both end cleanly. */
static void chat(const char *lkey, const char *lfp, const char *ckey, const char *cfp,
                 const char *csession)
{
    char tl[64], tc[64];
    static int n;
    snprintf(tl, sizeof(tl), "trust-l%d", n);
    snprintf(tc, sizeof(tc), "trust-c%d", n++);
    const char *trust_l = strdup(ta_path(tl)), *trust_c = strdup(ta_path(tc));
    ta_write_file(trust_l, strf("alice %s\n", cfp), 6 + 64 + 1);
    ta_write_file(trust_c, strf("bob %s\n", lfp), 4 + 64 + 1);

    TPROC l, c;
    int port =
        tp_listen(&l, "--key", lkey, "--id", "bob", "--pin-source", pin, "--trust", trust_l, NULL);
    CU_ASSERT(port > 0);
    tp_p11chat(&c, "connect", strf("127.0.0.1:%d", port), "--key", ckey, "--id", "alice",
               "--pin-source", pin, "--trust", trust_c, "--session-key", csession, NULL);
    CU_ASSERT(tp_wait_for(&l, 2,
                          strf("trusted: 'alice' %.4s:%.4s:%.4s:%.4s: secure session\n", cfp,
                               cfp + 4, cfp + 8, cfp + 12),
                          W));
    CU_ASSERT(tp_wait_for(&c, 2,
                          strf("trusted: 'bob' %.4s:%.4s:%.4s:%.4s: secure session\n", lfp, lfp + 4,
                               lfp + 8, lfp + 12),
                          W));
    tp_puts(&c, "from alice\n");
    tp_puts(&l, "from bob\n");
    CU_ASSERT(tp_wait_for(&l, 1, "alice> from alice\n", W));
    CU_ASSERT(tp_wait_for(&c, 1, "bob> from bob\n", W));
    tp_close_in(&c);
    CU_ASSERT_EQUAL(tp_wait_exit(&c, W), 0);
    CU_ASSERT_EQUAL(tp_wait_exit(&l, W), 0);
    CU_ASSERT_STRING_EQUAL(l.obuf, "alice> from alice\n");
    CU_ASSERT_STRING_EQUAL(c.obuf, "bob> from bob\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(c.ebuf, "session closed; the peer confirmed 1 of the 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(l.ebuf, "closed by the peer; the peer confirmed 1 of the 1"));
    if (l.status != 0 || c.status != 0)
        fprintf(stderr, "\n[listener]\n%s[connector]\n%s", l.ebuf, c.ebuf);
    tp_free(&l);
    tp_free(&c);
    free((void *)trust_l);
    free((void *)trust_c);
}

static void test_pem_token(void)
{
    chat(pem_bob, ta_fp_hex("bob"), uri_alice, fp_alice, "software");
}

static void test_token_pem(void)
{
    chat(uri_bob, fp_bob, pem_alice, ta_fp_hex("alice"), "software");
}

static void test_token_token(void)
{
    chat(uri_bob, fp_bob, uri_alice, fp_alice, "software");
}

static void test_token_session_keys(void)
{
    /* S made in the token: by a token-key initiator, and by a PEM-key one. */
    chat(uri_bob, fp_bob, uri_alice, fp_alice, "token");
    chat(uri_bob, fp_bob, pem_alice, ta_fp_hex("alice"), "token");
}

static void test_keygen_keys_chat(void)
{
    /* Keys made with `p11chat keygen` do the whole job. */
    char *o;
    char fa[65], fb[65], ua[256], ub[256];
    snprintf(ua, sizeof(ua), "pkcs11:token=%s;object=alice2", TU_TOKEN_LABEL);
    snprintf(ub, sizeof(ub), "pkcs11:token=%s;object=bob2", TU_TOKEN_LABEL);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, W, "keygen", "--key", ua, "--pin-source", pin, NULL), 0);
    free(o);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, W, "keygen", "--key", ub, "--pin-source", pin, NULL), 0);
    free(o);
    fingerprint(ua, fa);
    fingerprint(ub, fb);
    CU_ASSERT_EQUAL_FATAL(strlen(fa), 64);
    CU_ASSERT_EQUAL_FATAL(strlen(fb), 64);
    chat(ub, fb, ua, fa, "software");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_token", setup, NULL);
    CU_add_test(s, "fingerprint of token keys", test_fingerprint_uri);
    CU_add_test(s, "keygen: made, refused when taken", test_keygen);
    CU_add_test(s, "wrong PIN", test_wrong_pin);
    CU_add_test(s, "PEM listener, token connector", test_pem_token);
    CU_add_test(s, "token listener, PEM connector", test_token_pem);
    CU_add_test(s, "token and token", test_token_token);
    CU_add_test(s, "session keys made in the token", test_token_session_keys);
    CU_add_test(s, "keys from p11chat keygen chat", test_keygen_keys_chat);
    return tu_main();
}
