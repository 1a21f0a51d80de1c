/*
 * The identity rules of spec section 3 against Python's unicodedata, for
 * every code point: the table of format characters (general category Cf)
 * and p11c_identity_valid() on "a" + the character + "a".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11chat.h"
#include "testutil.h"

#define NCP 0x110000

static const char pyprog[] =
    "import sys, unicodedata\n"
    "sys.stdout.write(unicodedata.unidata_version + '\\n')\n"
    "sys.stdout.write(''.join('1' if unicodedata.category(chr(c)) == 'Cf' else '0'"
    " for c in range(0x110000)))\n";

static char *cf;       /* NCP characters '0' or '1' */
static char pyver[32]; /* Python's Unicode version */

static size_t utf8(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static void test_table_version(void)
{
    /* A table from another Unicode version than the Python here: regenerate
     * it with scripts/gen_format_table.py (and review the difference). */
    CU_ASSERT_STRING_EQUAL(pyver, p11c_format_unicode_version());
    if (strcmp(pyver, p11c_format_unicode_version()) != 0)
        fprintf(stderr, "table: Unicode %s, python3: Unicode %s\n", p11c_format_unicode_version(),
                pyver);
}

static void test_every_code_point(void)
{
    size_t wrong_cf = 0, wrong_ok = 0, wrong_id = 0, nf = 0;

    for (uint32_t cp = 0; cp < NCP; cp++) {
        int is_cf = cf[cp] == '1';
        int ok = !(cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || is_cf || cp == 0x2028 ||
                   cp == 0x2029 || (cp >= 0xd800 && cp <= 0xdfff));
        uint8_t id[6];
        size_t n = 1;

        nf += (size_t)is_cf;
        if (p11c_char_format(cp) != is_cf && wrong_cf++ < 5)
            fprintf(stderr, "U+%04X: Cf %d in unicodedata\n", (unsigned)cp, is_cf);
        if (p11c_identity_char_ok(cp) != ok && wrong_ok++ < 5)
            fprintf(stderr, "U+%04X: allowed should be %d\n", (unsigned)cp, ok);
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue; /* not encodable: the UTF-8 tests cover surrogates */
        id[0] = 'a';
        n += utf8(cp, id + 1);
        id[n++] = 'a';
        if (p11c_identity_valid(id, n) != ok && wrong_id++ < 5)
            fprintf(stderr, "identity with U+%04X: valid should be %d\n", (unsigned)cp, ok);
    }
    CU_ASSERT_EQUAL(wrong_cf, 0);
    CU_ASSERT_EQUAL(wrong_ok, 0);
    CU_ASSERT_EQUAL(wrong_id, 0);
    CU_ASSERT(nf > 150); /* Unicode 14 has 163 format characters */
    /* U+2028 and U+2029 are Zl and Zp, not Cf: refused all the same. */
    CU_ASSERT_EQUAL(cf[0x2028], '0');
    CU_ASSERT_EQUAL(p11c_identity_char_ok(0x2028), 0);
    CU_ASSERT_EQUAL(p11c_identity_char_ok(0x110000), 0);
}

int main(void)
{
    FILE *py;
    size_t got = 0;

    cf = malloc(NCP + 1);
    if (cf == NULL)
        return 1;
    if (setenv("P11C_PYPROG", pyprog, 1) != 0)
        return 1;
    py = popen("python3 -c \"$P11C_PYPROG\" 2>/dev/null", "r");
    if (py == NULL || fgets(pyver, sizeof(pyver), py) == NULL) {
        if (py != NULL)
            pclose(py);
        printf("protocol_identity: skipped: python3 with unicodedata is not available\n");
        free(cf);
        return 77;
    }
    pyver[strcspn(pyver, "\n")] = '\0';
    got = fread(cf, 1, NCP, py);
    pclose(py);
    if (got != NCP) {
        fprintf(stderr, "python3 gave %zu of %d categories\n", got, NCP);
        free(cf);
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("protocol_identity", NULL, NULL);
    CU_add_test(s, "table from the Unicode version of python3", test_table_version);
    CU_add_test(s, "every code point against unicodedata", test_every_code_point);
    int r = tu_main();
    free(cf);
    return r;
}
