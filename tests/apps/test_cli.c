/* The p11chat command line: help, version, usage errors, fingerprints and the
 * trust store, with software (PEM) keys. No token needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps_util.h"
#include "testutil.h"

#define T 20000 /* ms: any single command */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A usage error: exit 2, nothing on stdout, one line on stderr holding `needle`. */
#define EXPECT_USAGE(needle, ...)                                                                  \
    do {                                                                                           \
        char *o_, *e_;                                                                             \
        int st_ = ta_run(NULL, &o_, &e_, T, __VA_ARGS__, NULL);                                    \
        CU_ASSERT_EQUAL(st_, 2);                                                                   \
        CU_ASSERT_STRING_EQUAL(o_, "");                                                            \
        CU_ASSERT_EQUAL(ta_lines(e_), 1);                                                          \
        CU_ASSERT_PTR_NOT_NULL(strstr(e_, needle));                                                \
        if (st_ != 2 || strstr(e_, needle) == NULL || ta_lines(e_) != 1)                           \
            fprintf(stderr, "\n  [usage case '%s' gave %d: %s]\n", needle, st_, e_);               \
        free(o_);                                                                                  \
        free(e_);                                                                                  \
    } while (0)

/* A failure: exit 1, nothing on stdout, one line on stderr holding `needle`. */
#define EXPECT_FAIL(needle, ...)                                                                   \
    do {                                                                                           \
        char *o_, *e_;                                                                             \
        int st_ = ta_run(NULL, &o_, &e_, T, __VA_ARGS__, NULL);                                    \
        CU_ASSERT_EQUAL(st_, 1);                                                                   \
        CU_ASSERT_STRING_EQUAL(o_, "");                                                            \
        CU_ASSERT_EQUAL(ta_lines(e_), 1);                                                          \
        CU_ASSERT_PTR_NOT_NULL(strstr(e_, needle));                                                \
        if (st_ != 1 || strstr(e_, needle) == NULL || ta_lines(e_) != 1)                           \
            fprintf(stderr, "\n  [failure case '%s' gave %d: %s]\n", needle, st_, e_);             \
        free(o_);                                                                                  \
        free(e_);                                                                                  \
    } while (0)

static void test_version(void)
{
    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "--version", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(o, "p11chat 0.1.0 (P11C protocol version 1, OpenSSL 3.", 50), 0);
    /* Then the provider built beside the command (tests/install checks the rest). */
    char want[1024];
    snprintf(want, sizeof(want), "\nprovider %s/p11chat.so: p11chat 0.1.0, built with p11-kit ",
             tu_provider_dir());
    CU_ASSERT_EQUAL(ta_lines(o), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, want));
    CU_ASSERT_STRING_EQUAL(e, "");
    free(o);
    free(e);
}

static void test_help(void)
{
    static const char *const cmds[][2] = {
        {"keygen", "usage: p11chat keygen --key URI"},
        {"fingerprint", "usage: p11chat fingerprint --key KEY"},
        {"trust", "usage: p11chat trust add NAME"},
        {"listen", "usage: p11chat listen [HOST:]PORT"},
        {"connect", "usage: p11chat listen [HOST:]PORT"},
        {"wrap", "usage: p11chat wrap [--initiate]"},
    };
    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "--help", NULL), 0);
    CU_ASSERT_EQUAL(strncmp(o, "usage: p11chat COMMAND", 22), 0);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(o);
    free(e);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, cmds[i][0], "--help", NULL), 0);
        CU_ASSERT_EQUAL(strncmp(o, cmds[i][1], strlen(cmds[i][1])), 0);
        CU_ASSERT_STRING_EQUAL(e, "");
        free(o);
        free(e);
        /* -h too */
        CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, cmds[i][0], "-h", NULL), 0);
        CU_ASSERT_EQUAL(strncmp(o, cmds[i][1], strlen(cmds[i][1])), 0);
        free(o);
        free(e);
    }
}

static void test_usage_errors(void)
{
    const char *pem = ta_key_pem("alice");
    char *o, *e;
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, NULL), 2);
    CU_ASSERT_STRING_EQUAL(o, "");
    CU_ASSERT_STRING_EQUAL(e, "p11chat: a command is needed (see 'p11chat --help')\n");
    free(o);
    free(e);
    EXPECT_USAGE("unknown command ''", "");
    EXPECT_USAGE("unknown command 'frobnicate'", "frobnicate");
    EXPECT_USAGE("unknown option '--frob'", "--frob");

    EXPECT_USAGE("--key KEY is required", "fingerprint");
    EXPECT_USAGE("unknown option '--bogus'", "fingerprint", "--key", pem, "--bogus");
    EXPECT_USAGE("option '--key' needs a value", "fingerprint", "--key");
    EXPECT_USAGE("unexpected argument 'extra'", "fingerprint", "--key", pem, "extra");

    EXPECT_USAGE("--key URI is required", "keygen");
    EXPECT_USAGE("--bits must be 2048, 3072 or 4096, not '1024'", "keygen", "--key",
                 "pkcs11:object=x", "--bits", "1024");
    EXPECT_USAGE("--bits must be 2048, 3072 or 4096, not '2048x'", "keygen", "--key",
                 "pkcs11:object=x", "--bits", "2048x");
    EXPECT_USAGE("--type must be ec:p256, ec:p384, rsa:2048, rsa:3072 or rsa:4096, not 'ec:p521'",
                 "keygen", "--key", "pkcs11:object=x", "--type", "ec:p521");
    EXPECT_USAGE("--type must be ec:p256, ec:p384, rsa:2048, rsa:3072 or rsa:4096, not 'rsa'",
                 "keygen", "--key", "pkcs11:object=x", "--type", "rsa");
    EXPECT_USAGE("--key must be a pkcs11: URI", "keygen", "--key", pem);
    EXPECT_USAGE("the URI must name the new key: object=LABEL", "keygen", "--key",
                 "pkcs11:token=t");
    EXPECT_USAGE("malformed percent-encoding", "keygen", "--key", "pkcs11:object=a%zz");
    EXPECT_USAGE("the URI's id attribute is empty", "keygen", "--key", "pkcs11:object=a;id=");

    EXPECT_USAGE("an action is needed", "trust");
    EXPECT_USAGE("unknown action 'frob'", "trust", "frob");
    EXPECT_USAGE("NAME is required", "trust", "add", "--fingerprint", ta_fp_hex("bob"));
    EXPECT_USAGE("give exactly one of --key KEY and --fingerprint HEX", "trust", "add", "bob");
    EXPECT_USAGE("give exactly one of --key KEY and --fingerprint HEX", "trust", "add", "bob",
                 "--key", pem, "--fingerprint", ta_fp_hex("bob"));
    EXPECT_USAGE("--fingerprint needs the full fingerprint", "trust", "add", "bob", "--fingerprint",
                 ta_fp_short("bob"), "--trust", ta_path("unused"));
    EXPECT_USAGE("NAME must be 1 to 255 bytes", "trust", "add", "bad\x01name", "--fingerprint",
                 ta_fp_hex("bob"));
    EXPECT_USAGE("unexpected argument 'x'", "trust", "list", "x");
    EXPECT_USAGE("NAME is required", "trust", "remove");
    EXPECT_USAGE("too many arguments", "trust", "remove", "a", "b");
    EXPECT_USAGE("are for 'trust add'", "trust", "list", "--key", pem);

    EXPECT_USAGE("[HOST:]PORT is required", "listen", "--key", pem, "--id", "a");
    EXPECT_USAGE("'99999' is not [HOST:]PORT", "listen", "99999", "--key", pem, "--id", "a");
    EXPECT_USAGE("'::1:5' is not [HOST:]PORT", "listen", "::1:5", "--key", pem, "--id", "a");
    EXPECT_USAGE("--key KEY is required", "listen", "0", "--id", "a");
    EXPECT_USAGE("--id NAME is required", "listen", "0", "--key", pem);
    EXPECT_USAGE("--id must be 1 to 255 bytes", "listen", "0", "--key", pem, "--id", "");
    EXPECT_USAGE("--policy must be strict or window, not 'loose'", "listen", "0", "--key", pem,
                 "--id", "a", "--policy", "loose");
    EXPECT_USAGE("--session-key must be software or token, not 'hsm'", "connect", "h:1", "--key",
                 pem, "--id", "a", "--session-key", "hsm");
    EXPECT_USAGE("--timeout must be 1 to 3600 seconds, not '0'", "connect", "h:1", "--key", pem,
                 "--id", "a", "--timeout", "0");
    EXPECT_USAGE("'1234' is not HOST:PORT", "connect", "1234", "--key", pem, "--id", "a");
    EXPECT_USAGE("'localhost:0' is not HOST:PORT", "connect", "localhost:0", "--key", pem, "--id",
                 "a");
    EXPECT_USAGE("unexpected argument 'more'", "connect", "h:1", "more", "--key", pem, "--id", "a");

    EXPECT_USAGE("the chat program to run is required", "wrap", "--key", pem, "--id", "a");
    EXPECT_USAGE("--max-line must be 0 (no limit) or 64 to 16777216 bytes, not 'abc'", "wrap",
                 "--max-line", "abc", "--key", pem, "--id", "a", "--", "cat");
    EXPECT_USAGE("--max-line must be 0 (no limit) or 64 to 16777216 bytes, not '40'", "wrap",
                 "--max-line", "40", "--key", pem, "--id", "a", "--", "cat");
    EXPECT_USAGE("--max-line 70 leaves no room", "wrap", "--max-line", "70", "--send-prefix",
                 "PRIVMSG #chan :", "--key", pem, "--id", "a", "--", "cat");
    EXPECT_USAGE("--handshake-timeout must be 1 to 3600 seconds, not '0'", "wrap",
                 "--handshake-timeout", "0", "--key", pem, "--id", "a", "--", "cat");
    EXPECT_USAGE("--line-delay must be 0 to 10000 ms, not '-1'", "wrap", "--line-delay", "-1",
                 "--key", pem, "--id", "a", "--", "cat");
    EXPECT_USAGE("unknown option '--policy'", "wrap", "--policy", "strict", "--key", pem, "--id",
                 "a", "--", "cat");
}

static void check_fingerprint(const char *file, const char *name)
{
    char *o, *e, want[256];
    snprintf(want, sizeof(want), "short: %s\nfull:  %s\n", ta_fp_short(name), ta_fp_hex(name));
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "fingerprint", "--key", file, NULL), 0);
    CU_ASSERT_STRING_EQUAL(o, want);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(o);
    free(e);
}

static void test_fingerprint_pem(void)
{
    check_fingerprint(ta_key_pem("alice"), "alice");
    check_fingerprint(ta_pub_pem("alice"), "alice");
    check_fingerprint(ta_key_pem("bob"), "bob");
    check_fingerprint(ta_pub_pem("carol3072"), "carol3072");
}

static void test_fingerprint_errors(void)
{
    const char *junk = ta_path("junk.pem");
    ta_write_file(junk, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58);
    EXPECT_FAIL("holds no RSA or EC key OpenSSL can read", "fingerprint", "--key", junk);
    EXPECT_FAIL("cannot open the key file", "fingerprint", "--key", ta_path("missing.pem"));
    /* A PIN both in the URI and from --pin-source is refused before any token is asked. */
    const char *pin = ta_path("pin");
    ta_write_file(pin, "1234", 4);
    EXPECT_FAIL("give only one", "fingerprint", "--key", "pkcs11:object=a?pin-value=1234",
                "--pin-source", pin);
    EXPECT_FAIL("cannot read the PIN file", "fingerprint", "--key", "pkcs11:object=a",
                "--pin-source", ta_path("no-such-pin"));
}

static void test_trust_store(void)
{
    const char *store = ta_path("store/sub/trust");
    char *o, *e, want[512];

    /* Added by key (public PEM) and by fingerprint; the directories are made. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "trust", "add", "bob", "--key", ta_pub_pem("bob"),
                           "--trust", store, NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(o, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "trusted 'bob' (9f22:694b:a719:04f1)"));
    free(o);
    free(e);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, NULL, T, "trust", "--trust", store, "add", "carol",
                           "--fingerprint",
                           "38d4:4a5f:c4c3:52a5:2da2:4e9c:d6e8:4d43:1a6c:c76b:74c8:7e32:e0d6:"
                           "23b2:10c0:59e7",
                           NULL),
                    0);

    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "trust", "list", "--trust", store, NULL), 0);
    snprintf(want, sizeof(want), "%s  %s  bob\n%s  %s  carol\n", ta_fp_short("bob"),
             ta_fp_hex("bob"), "38d4:4a5f:c4c3:52a5",
             "38d44a5fc4c352a52da24e9cd6e84d431a6cc76b74c87e32e0d623b210c059e7");
    CU_ASSERT_STRING_EQUAL(o, want);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(o);
    free(e);

    /* The same binding again is fine; a changed key or a second name is not. */
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, T, "trust", "add", "bob", "--fingerprint",
                           ta_fp_hex("bob"), "--trust", store, NULL),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "already trusted with this key"));
    free(e);
    char *before = read_file(store);
    EXPECT_FAIL("'bob' is already trusted with another key", "trust", "add", "bob", "--key",
                ta_key_pem("alice"), "--trust", store);
    EXPECT_FAIL("this key is already trusted as 'bob'", "trust", "add", "robert", "--fingerprint",
                ta_fp_hex("bob"), "--trust", store);
    char *after = read_file(store);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);

    /* Remove: once, then it is gone. */
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, NULL, T, "trust", "remove", "carol", "--trust", store, NULL),
                    0);
    EXPECT_FAIL("'carol' is not in the trust store", "trust", "remove", "carol", "--trust", store);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, T, "trust", "list", "--trust", store, NULL), 0);
    snprintf(want, sizeof(want), "%s  %s  bob\n", ta_fp_short("bob"), ta_fp_hex("bob"));
    CU_ASSERT_STRING_EQUAL(o, want);
    free(o);

    /* A missing store lists as empty. */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, T, "trust", "list", "--trust", ta_path("none"), NULL),
                    0);
    CU_ASSERT_STRING_EQUAL(o, "");
    free(o);
}

/* A trust store others can read or write draws a warning (it is read all
 * the same); a private one none. */
static void test_trust_shared_warning(void)
{
    const char *store = ta_path("shared-trust");
    char *o, *e, want[1024];
    const char *line = "bob 9f22694ba71904f1b0ba1d0bcd66f8ac79dd3b1bfa86d1a0f4e1a6ed6b4b1bd3\n";

    ta_write_file(store, line, strlen(line));
    CU_ASSERT_EQUAL(chmod(store, 0644), 0);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "trust", "list", "--trust", store, NULL), 0);
    snprintf(want, sizeof(want),
             "p11chat: warning: the trust store '%s' is readable by other users (mode 0644): "
             "run 'chmod 600 %s'\n",
             store, store);
    CU_ASSERT_STRING_EQUAL(e, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "  bob\n"));
    free(o);
    free(e);
    CU_ASSERT_EQUAL(chmod(store, 0620), 0);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, T, "trust", "list", "--trust", store, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "is writable by other users (mode 0620)"));
    free(e);
    CU_ASSERT_EQUAL(chmod(store, 0600), 0);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, &e, T, "trust", "list", "--trust", store, NULL), 0);
    CU_ASSERT_STRING_EQUAL(e, "");
    free(e);
}

static void test_trust_malformed(void)
{
    const char *store = ta_path("bad-trust");
    const char *text =
        "# comment\n\nbob 9f22694ba71904f1a9295a46e2205b4aac638b63aeab2e27345facfcb5016846\n"
        "carol not-a-fingerprint\n";
    ta_write_file(store, text, strlen(text));
    EXPECT_FAIL("line 4: malformed entry", "trust", "list", "--trust", store);
    EXPECT_FAIL("line 4: malformed entry", "trust", "add", "x", "--fingerprint", ta_fp_hex("alice"),
                "--trust", store);
}

static void test_trust_default_path(void)
{
    char *o;
    const char *home = ta_path("home");
    const char *xdg = ta_path("xdg");
    const char *env = ta_path("envstore");
    mkdir(home, 0700);
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    /* ~/.config/p11chat/trust without XDG_CONFIG_HOME or P11CHAT_TRUST. */
    setenv("HOME", home, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("P11CHAT_TRUST");
    CU_ASSERT_EQUAL(
        ta_run(NULL, NULL, NULL, T, "trust", "add", "bob", "--fingerprint", ta_fp_hex("bob"), NULL),
        0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/.config/p11chat/trust", home);
    char *text = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "bob 9f22694ba71904f1"));
    free(text);

    /* $XDG_CONFIG_HOME/p11chat/trust when set. */
    setenv("XDG_CONFIG_HOME", xdg, 1);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, NULL, T, "trust", "add", "alice", "--fingerprint",
                           ta_fp_hex("alice"), NULL),
                    0);
    snprintf(path, sizeof(path), "%s/p11chat/trust", xdg);
    text = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "alice 0856e264"));
    CU_ASSERT_PTR_NULL(strstr(text, "bob"));
    free(text);

    /* $P11CHAT_TRUST above both; --trust above everything. */
    setenv("P11CHAT_TRUST", env, 1);
    CU_ASSERT_EQUAL(ta_run(NULL, NULL, NULL, T, "trust", "add", "carol", "--fingerprint",
                           ta_fp_hex("carol3072"), NULL),
                    0);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, T, "trust", "list", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "  carol\n"));
    CU_ASSERT_EQUAL(ta_lines(o), 1);
    free(o);
    CU_ASSERT_EQUAL(ta_run(NULL, &o, NULL, T, "trust", "list", "--trust", path, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o, "  alice\n"));
    CU_ASSERT_EQUAL(ta_lines(o), 1);
    free(o);

    unsetenv("P11CHAT_TRUST");
    unsetenv("XDG_CONFIG_HOME");
    if (old_home != NULL)
        setenv("HOME", old_home, 1);
    free(old_home);
}

static void test_connect_refused(void)
{
    /* A port nobody listens on (bound, never listened). */
    EXPECT_FAIL("cannot connect to 127.0.0.1:1: Connection refused", "connect", "127.0.0.1:1",
                "--key", ta_key_pem("alice"), "--id", "alice", "--trust", ta_path("none"));
    EXPECT_FAIL("cannot listen on 192.0.2.1:", "listen", "192.0.2.1:0", "--key",
                ta_key_pem("alice"), "--id", "alice", "--trust", ta_path("none"));
}

static void test_provider_lookup(void)
{
    /* A copy of the command outside the build tree looks for the provider
     * where it would be installed, and only when a pkcs11: URI needs it. */
    const char *copy = ta_path("elsewhere-p11chat");
    char cmd[4096], *o, *e;
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", ta_p11chat(), copy);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    TPROC p;
    char *argv[] = {(char *)copy, "fingerprint", "--key", (char *)ta_key_pem("bob"), NULL};
    tp_start(&p, argv);
    CU_ASSERT_EQUAL(tp_wait_exit(&p, T), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p.obuf, ta_fp_hex("bob")));
    tp_free(&p);
    char so[1024];
    snprintf(so, sizeof(so), "%s/p11chat.so", P11C_INSTALL_MODULES_DIR);
    if (access(so, F_OK) != 0) {
        char *argv2[] = {(char *)copy, "fingerprint", "--key", "pkcs11:object=alice", NULL};
        tp_start(&p, argv2);
        CU_ASSERT_EQUAL(tp_wait_exit(&p, T), 1);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(p.ebuf, "cannot load the p11chat provider from " P11C_INSTALL_MODULES_DIR));
        tp_free(&p);
    }
    /* The command in the build tree finds the provider built beside it: a
     * URI gets as far as the token layer (no such token here). */
    CU_ASSERT_EQUAL(ta_run(NULL, &o, &e, T, "fingerprint", "--key",
                           "pkcs11:token=p11chat-no-such-token;object=alice", NULL),
                    1);
    CU_ASSERT_PTR_NULL(strstr(e, "cannot load the p11chat provider"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "p11chat-no-such-token"));
    free(o);
    free(e);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_cli", NULL, NULL);
    CU_add_test(s, "--version", test_version);
    CU_add_test(s, "--help on every command", test_help);
    CU_add_test(s, "usage errors: exit 2, one line", test_usage_errors);
    CU_add_test(s, "fingerprint of PEM keys", test_fingerprint_pem);
    CU_add_test(s, "fingerprint errors", test_fingerprint_errors);
    CU_add_test(s, "trust add, list, remove", test_trust_store);
    CU_add_test(s, "malformed trust store", test_trust_malformed);
    CU_add_test(s, "default trust store path", test_trust_default_path);
    CU_add_test(s, "connect refused, listen impossible", test_connect_refused);
    CU_add_test(s, "provider found beside the command, loaded only for URIs", test_provider_lookup);
    CU_add_test(s, "trust store readable by others: warning", test_trust_shared_warning);
    return tu_main();
}
