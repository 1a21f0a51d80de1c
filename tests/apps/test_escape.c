/* Received text reaches the terminal only escaped (apps/escape.c). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "testutil.h"

static void check(const char *in, size_t len, const char *want)
{
    char *got = app_escape((const uint8_t *)in, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void test_plain_ascii(void)
{
    check("hello, world ~!", 15, "hello, world ~!");
    check("", 0, "");
}

static void test_controls(void)
{
    check("a\tb\rc\nd", 7, "a\\tb\\rc\\nd");
    check("\x1b[31mred", 8, "\\x1b[31mred");
    check("\x00\x07\x7f", 3, "\\x00\\x07\\x7f");
    check("back\\slash", 10, "back\\\\slash");
}

static void test_utf8(void)
{
    /* Valid printable UTF-8 is shown as it is. */
    check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* C1 controls (U+0085, U+009B CSI) and bidi overrides are escaped. */
    check("\xc2\x85", 2, "\\u{0085}");
    check("\xc2\x9b"
          "2J",
          4, "\\u{009b}2J");
    check("a\xe2\x80\xae"
          "b",
          5, "a\\u{202e}b");
    check("\xe2\x81\xa6"
          "x\xe2\x81\xa9",
          7, "\\u{2066}x\\u{2069}");
    check("\xef\xbb\xbf", 3, "\\u{feff}");
    check("\xe2\x80\x8b", 3, "\\u{200b}");
    /* every format character (Cf), not only the best known ones */
    check("\xd8\x80", 2, "\\u{0600}");          /* Arabic number sign */
    check("\xf3\xa0\x81\x81", 4, "\\u{e0041}"); /* tag latin capital A */
    check("\xe2\x80\xa9", 3, "\\u{2029}");      /* paragraph separator */
}

static void test_invalid_utf8(void)
{
    check("\xff", 1, "\\xff");
    check("\xc0\xaf", 2, "\\xc0\\xaf");                   /* overlong '/' */
    check("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");          /* surrogate */
    check("\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"); /* beyond U+10FFFF */
    check("\xe2\x82", 2, "\\xe2\\x82");                   /* truncated */
    check("\xe2\x82"
          "A",
          3,
          "\\xe2\\x82"
          "A");
    check("\x80"
          "z",
          2, "\\x80z"); /* lone continuation */
}

static void test_worst_case_size(void)
{
    /* Every byte escaped: four times the input, and nothing more. */
    size_t n = 65536;
    uint8_t *in = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    memset(in, 0x01, n);
    char *got = app_escape(in, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(strlen(got), 4 * n);
    CU_ASSERT_EQUAL(memcmp(got, "\\x01\\x01", 8), 0);
    free(got);
    /* Two-byte C1 sequences become 8 characters each: also four a byte. */
    for (size_t i = 0; i < n; i += 2) {
        in[i] = 0xc2;
        in[i + 1] = 0x80;
    }
    got = app_escape(in, n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(strlen(got), 4 * n);
    free(got);
    free(in);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("apps_escape", NULL, NULL);
    CU_add_test(s, "plain ASCII unchanged", test_plain_ascii);
    CU_add_test(s, "control characters escaped", test_controls);
    CU_add_test(s, "UTF-8 kept, C1 and bidi escaped", test_utf8);
    CU_add_test(s, "invalid UTF-8 escaped byte by byte", test_invalid_utf8);
    CU_add_test(s, "worst-case size", test_worst_case_size);
    return tu_main();
}
