/* The trust store (spec section 7), identities (section 3) and fingerprint parsing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ptest.h"

static char dir[256];

static int suite_init(void)
{
    snprintf(dir, sizeof(dir), "/tmp/p11c-trust-test.%ld", (long)getpid());
    return mkdir(dir, 0700) == 0 ? 0 : 1;
}

static int suite_clean(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static const char *path_of(const char *name)
{
    static char p[400];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void fp_of(uint8_t fp[32], uint8_t v)
{
    memset(fp, v, 32);
}

static void test_check(void)
{
    P11C_TRUST *t = p11c_trust_new();
    uint8_t fa[32], fb[32], fc[32];
    const uint8_t *f;

    fp_of(fa, 0xaa);
    fp_of(fb, 0xbb);
    fp_of(fc, 0xcc);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alice", 5, fa), P11C_UNKNOWN);
    CU_ASSERT_EQUAL(p11c_trust_check(NULL, (const uint8_t *)"Alice", 5, fa), P11C_UNKNOWN);
    CU_ASSERT_EQUAL(p11c_trust_add(t, "Alice", fa), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_add(t, "Bob Smith", fb), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_count(t), 2);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alice", 5, fa), P11C_TRUSTED);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alice", 5, fc), P11C_MISMATCH);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Mallory", 7, fa), P11C_MISMATCH);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alic", 4, fc), P11C_UNKNOWN);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alicee", 6, fc), P11C_UNKNOWN);
    /* add replaces the entry for an identity */
    CU_ASSERT_EQUAL(p11c_trust_add(t, "Alice", fc), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_count(t), 2);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alice", 5, fc), P11C_TRUSTED);
    CU_ASSERT_STRING_EQUAL(p11c_trust_entry(t, 1, &f), "Bob Smith");
    CU_ASSERT(memcmp(f, fb, 32) == 0);
    CU_ASSERT_PTR_NULL(p11c_trust_entry(t, 2, &f));
    CU_ASSERT_EQUAL(p11c_trust_remove(t, "Alice"), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_remove(t, "Alice"), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_trust_count(t), 1);
    CU_ASSERT_EQUAL(p11c_trust_check(t, (const uint8_t *)"Alice", 5, fc), P11C_UNKNOWN);
    /* identities the file could not hold */
    CU_ASSERT_EQUAL(p11c_trust_add(t, "#chan", fa), P11C_ERR_IDENTITY);
    CU_ASSERT_EQUAL(p11c_trust_add(t, " lead", fa), P11C_ERR_IDENTITY);
    CU_ASSERT_EQUAL(p11c_trust_add(t, "trail ", fa), P11C_ERR_IDENTITY);
    CU_ASSERT_EQUAL(p11c_trust_add(t, "new\nline", fa), P11C_ERR_IDENTITY);
    CU_ASSERT_EQUAL(p11c_trust_add(t, "", fa), P11C_ERR_IDENTITY);
    CU_ASSERT_EQUAL(p11c_trust_add(NULL, "x", fa), P11C_ERR_ARG);
    p11c_trust_free(t);
    p11c_trust_free(NULL);
}

static void test_save_load(void)
{
    P11C_TRUST *t = p11c_trust_new(), *u = p11c_trust_new();
    uint8_t fa[32], fb[32];
    const uint8_t *f;
    unsigned bad = 99;
    FILE *fh;
    char buf[512];
    DIR *d;
    struct dirent *de;
    int others = 0;

    fp_of(fa, 0x01);
    fp_of(fb, 0xfe);
    p11c_trust_add(t, "Alice", fa);
    p11c_trust_add(t, "Jürgen Groß", fb);
    CU_ASSERT_EQUAL(p11c_trust_save(t, path_of("store")), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_load(u, path_of("store"), &bad), P11C_OK);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(p11c_trust_count(u), 2);
    CU_ASSERT_STRING_EQUAL(p11c_trust_entry(u, 1, &f), "Jürgen Groß");
    CU_ASSERT(memcmp(f, fb, 32) == 0);
    fh = fopen(path_of("store"), "r");
    CU_ASSERT_FATAL(fh != NULL);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof(buf), fh)); /* comment */
    CU_ASSERT(buf[0] == '#');
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof(buf), fh));
    CU_ASSERT_STRING_EQUAL(
        buf, "Alice 0101010101010101010101010101010101010101010101010101010101010101\n");
    fclose(fh);
    /* Saving over the file again leaves no temporary file behind. */
    p11c_trust_remove(t, "Alice");
    CU_ASSERT_EQUAL(p11c_trust_save(t, path_of("store")), P11C_OK);
    d = opendir(dir);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "store.tmp", 9) == 0)
            others++;
    closedir(d);
    CU_ASSERT_EQUAL(others, 0);
    CU_ASSERT_EQUAL(p11c_trust_load(u, path_of("store"), NULL), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_count(u), 1);
    /* A missing file is an empty store. */
    CU_ASSERT_EQUAL(p11c_trust_load(u, path_of("absent"), &bad), P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_count(u), 0);
    p11c_trust_free(t);
    p11c_trust_free(u);
}

static void test_save_failure_is_atomic(void)
{
    P11C_TRUST *t = p11c_trust_new(), *u = p11c_trust_new();
    uint8_t fa[32];
    DIR *d;
    struct dirent *de;
    int tmps = 0;

    fp_of(fa, 0x42);
    p11c_trust_add(t, "Alice", fa);
    /* The target is a directory: rename fails, nothing is left half-written. */
    CU_ASSERT_FATAL(mkdir(path_of("adir"), 0700) == 0);
    CU_ASSERT_EQUAL(p11c_trust_save(t, path_of("adir")), P11C_ERR_TRUST_FILE);
    d = opendir(dir);
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp.") != NULL)
            tmps++;
    closedir(d);
    CU_ASSERT_EQUAL(tmps, 0);
    /* A directory that does not exist. */
    CU_ASSERT_EQUAL(p11c_trust_save(t, path_of("nodir/store")), P11C_ERR_TRUST_FILE);
    CU_ASSERT_EQUAL(p11c_trust_save(t, ""), P11C_ERR_ARG);
    /* Loading a directory is an error, and the store keeps what it had. */
    p11c_trust_add(u, "Keep", fa);
    CU_ASSERT_EQUAL(p11c_trust_load(u, path_of("adir"), NULL), P11C_ERR_TRUST_FILE);
    CU_ASSERT_EQUAL(p11c_trust_count(u), 1);
    p11c_trust_free(t);
    p11c_trust_free(u);
}

static void test_load_comments_and_malformed(void)
{
    static const struct {
        const char *text;
        unsigned bad_line; /* 0: loads */
        size_t count;
    } cases[] = {
        {"# comment\n\n   \nAlice "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
         0, 1},
        {"  Alice Smith \t "
         "aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:"
         "aa:aa:aa:aa:aa:aa:aa \r\n   # indented comment\n",
         0, 1},
        {"Alice AAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
         1},                     /* no final newline */
        {"# ok\nAlice\n", 2, 0}, /* no fingerprint */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1,
         0},                    /* no identity */
        {"Alice aaaa\n", 1, 0}, /* short */
        {"Alice aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaag\n", 1,
         0}, /* 65, bad */
        {"Alice gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, 0},
        {"Al\x01ice aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, 0},
        {"Al\xc0\xafice aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, 0},
        {"A aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
         "A bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
         2, 0}, /* the same identity twice */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        P11C_TRUST *t = p11c_trust_new();
        unsigned bad = 77;
        p11c_err e;

        write_file("case", cases[i].text);
        e = p11c_trust_load(t, path_of("case"), &bad);
        CU_ASSERT_EQUAL(e, cases[i].bad_line ? P11C_ERR_TRUST_FILE : P11C_OK);
        CU_ASSERT_EQUAL(bad, cases[i].bad_line);
        CU_ASSERT_EQUAL(p11c_trust_count(t), cases[i].count);
        if (e != (cases[i].bad_line ? P11C_ERR_TRUST_FILE : P11C_OK) || bad != cases[i].bad_line)
            fprintf(stderr, "trust case %zu: err %d line %u\n", i, e, bad);
        p11c_trust_free(t);
    }
    /* A line longer than any valid one. */
    {
        char *big = malloc(5000);
        P11C_TRUST *t = p11c_trust_new();
        unsigned bad = 0;
        memset(big, 'a', 4998);
        big[4998] = '\n';
        big[4999] = '\0';
        write_file("long", big);
        CU_ASSERT_EQUAL(p11c_trust_load(t, path_of("long"), &bad), P11C_ERR_TRUST_FILE);
        CU_ASSERT_EQUAL(bad, 1);
        p11c_trust_free(t);
        free(big);
    }
}

/* The line each entry came from, and what makes a mismatch. */
static void test_lines_and_conflicts(void)
{
    P11C_TRUST *t = p11c_trust_new();
    uint8_t fa[P11C_FP_LEN], fb[P11C_FP_LEN], fc[P11C_FP_LEN];
    long by_id = 7, by_fp = 7;
    unsigned bad = 0;

    memset(fa, 0xaa, sizeof(fa));
    memset(fb, 0xbb, sizeof(fb));
    memset(fc, 0xcc, sizeof(fc));
    write_file("lines",
               "# peers\n\nalice aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
               "bob bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
    CU_ASSERT_FATAL(p11c_trust_load(t, path_of("lines"), &bad) == P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_entry_line(t, 0), 3);
    CU_ASSERT_EQUAL(p11c_trust_entry_line(t, 1), 4);
    CU_ASSERT_EQUAL(p11c_trust_entry_line(t, 2), 0); /* no such entry */
    CU_ASSERT_EQUAL(p11c_trust_entry_line(NULL, 0), 0);
    /* alice presenting carol's key: bound by name (entry 0) */
    p11c_trust_conflicts(t, (const uint8_t *)"alice", 5, fc, &by_id, &by_fp);
    CU_ASSERT(by_id == 0 && by_fp == -1);
    /* dave presenting bob's key: bound by key (entry 1) */
    p11c_trust_conflicts(t, (const uint8_t *)"dave", 4, fb, &by_id, &by_fp);
    CU_ASSERT(by_id == -1 && by_fp == 1);
    /* alice presenting bob's key: both */
    p11c_trust_conflicts(t, (const uint8_t *)"alice", 5, fb, &by_id, &by_fp);
    CU_ASSERT(by_id == 0 && by_fp == 1);
    /* trusted, or unknown: no conflict */
    p11c_trust_conflicts(t, (const uint8_t *)"alice", 5, fa, &by_id, &by_fp);
    CU_ASSERT(by_id == -1 && by_fp == -1);
    p11c_trust_conflicts(t, (const uint8_t *)"erin", 4, fc, &by_id, &by_fp);
    CU_ASSERT(by_id == -1 && by_fp == -1);
    /* an entry added since the load has no line */
    CU_ASSERT_FATAL(p11c_trust_add(t, "carol", fc) == P11C_OK);
    CU_ASSERT_EQUAL(p11c_trust_entry_line(t, 2), 0);
    p11c_trust_free(t);
}

static void test_identities(void)
{
    static const struct {
        const char *id;
        size_t len;
        int valid;
    } cases[] = {
        {"Alice", 5, 1},
        {"Grüße", 7, 1},
        {"\xe2\x82\xac", 3, 1},         /* euro sign */
        {"\xf0\x9f\x94\x91 key", 8, 1}, /* U+1F511 */
        {"\xef\xbf\xbd", 3, 1},         /* U+FFFD */
        {"a b", 3, 1},
        {"", 0, 0},
        {"a\x1b", 2, 0},            /* ESC */
        {"a\x7f", 2, 0},            /* DEL */
        {"\xc2\x80", 2, 0},         /* U+0080, C1 */
        {"\xc2\x9f", 2, 0},         /* U+009F, C1 */
        {"\xc2\xa0", 2, 1},         /* U+00A0 */
        {"\xc0\xaf", 2, 0},         /* overlong '/' */
        {"\xc1\xbf", 2, 0},         /* overlong */
        {"\xe0\x80\xaf", 3, 0},     /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", 4, 0}, /* overlong, 4 bytes */
        {"\xed\xa0\x80", 3, 0},     /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3, 0},     /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xe2\x82", 2, 0},          /* truncated */
        {"\x80", 1, 0},              /* lone continuation */
        {"\xe2\x28\xa1", 3, 0},      /* bad continuation */
        {"ab\0cd", 5, 0},            /* NUL */
        {"a\xe2\x80\xae-", 5, 0},    /* U+202E right-to-left override */
        {"a\xe2\x81\xa6-", 5, 0},    /* U+2066 left-to-right isolate */
        {"a\xe2\x80\x8b-", 5, 0},    /* U+200B zero-width space */
        {"a\xe2\x80\x8d-", 5, 0},    /* U+200D zero-width joiner */
        {"\xef\xbb\xbf-", 4, 0},     /* U+FEFF byte order mark */
        {"a\xc2\xad-", 4, 0},        /* U+00AD soft hyphen (Cf) */
        {"a\xf3\xa0\x80\x81", 5, 0}, /* U+E0001 language tag (Cf) */
        {"a\xe2\x80\xa8-", 5, 0},    /* U+2028 line separator */
        {"a\xe2\x80\xa9-", 5, 0},    /* U+2029 paragraph separator */
        {" a", 2, 0},                /* leading space */
        {"a ", 2, 0},                /* trailing space */
        {" ", 1, 0},
        {"a\xc2\xa0", 3, 1},      /* U+00A0 at the end: not a space of section 3 */
        {"a\xe2\x80\x8a-", 5, 1}, /* U+200A hair space (Zs, not Cf) */
    };
    char big[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int v = p11c_identity_valid((const uint8_t *)cases[i].id, cases[i].len);
        if (v != cases[i].valid)
            fprintf(stderr, "identity case %zu\n", i);
        CU_ASSERT_EQUAL(v, cases[i].valid);
    }
    memset(big, 'x', sizeof(big));
    CU_ASSERT_EQUAL(p11c_identity_valid((const uint8_t *)big, 255), 1);
    CU_ASSERT_EQUAL(p11c_identity_valid((const uint8_t *)big, 256), 0);
    CU_ASSERT_EQUAL(p11c_identity_valid(NULL, 3), 0);
}

static void test_fingerprint_parse(void)
{
    uint8_t fp[32];
    char hex[65];

    for (int i = 0; i < 32; i++)
        fp[i] = (uint8_t)(i * 8);
    p11c_fingerprint_hex(fp, hex);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(hex, fp), P11C_OK);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse("0856:e264:f021:50cc:7f5f:5db2:e321:efce:0312:cdb4:"
                                           "8eb1:1b24:0461:717d:e5ac:f0c1",
                                           fp),
                    P11C_OK);
    CU_ASSERT(fp[0] == 0x08 && fp[31] == 0xc1);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse("0856", fp), P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        ":0856e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c1", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        "0856e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c1:", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        "0856e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c1a", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        "0856e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        "0:856e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c1", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(
                        "08::56e264f02150cc7f5f5db2e321efce0312cdb48eb11b240461717de5acf0c1", fp),
                    P11C_ERR_ARG);
    CU_ASSERT_EQUAL(p11c_fingerprint_parse(NULL, fp), P11C_ERR_ARG);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_trust", suite_init, suite_clean);
    CU_add_test(s, "trusted, unknown, mismatch; add, replace, remove", test_check);
    CU_add_test(s, "save and load", test_save_load);
    CU_add_test(s, "a failed save leaves nothing half-written", test_save_failure_is_atomic);
    CU_add_test(s, "comments and malformed lines", test_load_comments_and_malformed);
    CU_add_test(s, "identity validation", test_identities);
    CU_add_test(s, "entry lines and conflicts", test_lines_and_conflicts);
    CU_add_test(s, "fingerprint parsing", test_fingerprint_parse);
    return tu_main();
}
