/*
 * Key files that name a token key (PEM "PKCS#11 PROVIDER URI"): the
 * provider's encoder writes pkcs11-provider's layout byte for byte, the
 * decoder gives programs that read PEM key files (PEM_read_bio_PrivateKey,
 * as nginx and stunnel do) the token key, and `p11chat keyfile` writes one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include "ptu.h"

static OSSL_LIB_CTX *libctx;

static const char desc[] = "PKCS#11 Provider URI v1.0";

/* A DER length (below 256). */
static size_t der_len(uint8_t *out, size_t len)
{
    if (len < 128) {
        out[0] = (uint8_t)len;
        return 1;
    }
    out[0] = 0x81;
    out[1] = (uint8_t)len;
    return 2;
}

/* SEQUENCE { VisibleString desc, UTF8String uri }, built by hand. */
static size_t der_by_hand(const char *uri, uint8_t *out)
{
    size_t dl = strlen(desc), ul = strlen(uri), n = 0;
    uint8_t body[256];
    size_t bl = 0;

    CU_ASSERT_FATAL(dl + ul + 6 < sizeof(body));
    body[bl++] = 0x1A; /* VisibleString */
    bl += der_len(body + bl, dl);
    memcpy(body + bl, desc, dl);
    bl += dl;
    body[bl++] = 0x0C; /* UTF8String */
    bl += der_len(body + bl, ul);
    memcpy(body + bl, uri, ul);
    bl += ul;
    out[n++] = 0x30;
    n += der_len(out + n, bl);
    memcpy(out + n, body, bl);
    return n + bl;
}

/* A PEM file with the given DER under the given label, and `before` first. */
static void write_pem(const char *path, const char *label, const uint8_t *der, size_t len,
                      const char *before)
{
    FILE *f = fopen(path, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (before != NULL)
        fputs(before, f);
    CU_ASSERT_TRUE(PEM_write(f, label, "", der, (long)len) > 0);
    fclose(f);
}

/* The key in a PEM file, as PEM_read_bio_PrivateKey_ex reads it. */
static EVP_PKEY *read_private(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, libctx, NULL);
    BIO_free(b);
    return k;
}

/* read_private, with what was written to stderr meanwhile in `said`. */
static EVP_PKEY *read_private_said(const char *path, char *said, size_t size)
{
    FILE *f = tmpfile();
    int saved = dup(2);
    EVP_PKEY *k;
    size_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fflush(stderr);
    dup2(fileno(f), 2);
    k = read_private(path);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    n = fread(said, 1, size - 1, f);
    said[n] = '\0';
    fclose(f);
    return k;
}

/* Signs with the key and verifies with its public half on the host. */
static int signs(EVP_PKEY *k)
{
    static const unsigned char msg[] = "key file";
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    int ok = m != NULL && EVP_DigestSignInit_ex(m, NULL, "SHA256", libctx, NULL, k, NULL) == 1 &&
             EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1;

    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    ok = ok && m != NULL &&
         EVP_DigestVerifyInit_ex(m, NULL, "SHA256", libctx, NULL, k, NULL) == 1 &&
         EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* The encoder: the PEM block and its DER, exactly as built by hand. */
static void test_encoder(void)
{
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    OSSL_ENCODER_CTX *e;
    unsigned char *pem = NULL;
    size_t pemlen = 0;
    char *name = NULL, *header = NULL, *uri;
    unsigned char *der = NULL;
    uint8_t expect[512];
    long derlen = 0;
    BIO *b;

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    e = OSSL_ENCODER_CTX_new_for_pkey(alice, OSSL_KEYMGMT_SELECT_KEYPAIR, "PEM", "pk11-uri", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL_FATAL(OSSL_ENCODER_to_data(e, &pem, &pemlen), 1);
    b = BIO_new_mem_buf(pem, (int)pemlen);
    CU_ASSERT_EQUAL_FATAL(PEM_read_bio(b, &name, &header, &der, &derlen), 1);
    CU_ASSERT_STRING_EQUAL(name, "PKCS#11 PROVIDER URI");
    CU_ASSERT_STRING_EQUAL(header, "");
    /* the URI names the token by its identity and the key by label and id;
     * it runs from "pkcs11:" to the end (the last element); the whole DER
     * must then be what was built by hand around it */
    CU_ASSERT_FATAL(derlen > 7);
    uri = NULL;
    for (long i = 0; i + 7 <= derlen && uri == NULL; i++)
        if (memcmp(der + i, "pkcs11:", 7) == 0)
            uri = (char *)der + i;
    CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
    {
        char u[256];
        size_t ulen = (size_t)derlen - (size_t)(uri - (char *)der);
        CU_ASSERT_FATAL(ulen < sizeof(u));
        memcpy(u, uri, ulen);
        u[ulen] = '\0';
        printf("\n  %s\n", u);
        CU_ASSERT_EQUAL(strncmp(u, "pkcs11:", 7), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(u, "token=p11chat-test"));
        CU_ASSERT_PTR_NOT_NULL(strstr(u, "object=alice"));
        CU_ASSERT_PTR_NOT_NULL(strstr(u, "id=%01"));
        CU_ASSERT_PTR_NOT_NULL(strstr(u, "serial="));
        CU_ASSERT_PTR_NULL(strstr(u, "pin"));
        CU_ASSERT_EQUAL((size_t)derlen, der_by_hand(u, expect));
        CU_ASSERT_EQUAL(memcmp(der, expect, (size_t)derlen), 0);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(b);
    OPENSSL_free(pem);
    OSSL_ENCODER_CTX_free(e);
    EVP_PKEY_free(alice);
}

/* A file built by hand (as pkcs11-provider writes it) gives the token key
 * to PEM_read_bio_PrivateKey, also behind a certificate in the same file. */
static void test_decoder(void)
{
    static const char *uri = "pkcs11:token=p11chat-test;object=bob;id=%02";
    static const char cert_first[] = "-----BEGIN CERTIFICATE-----\n"
                                     "MAA=\n"
                                     "-----END CERTIFICATE-----\n";
    uint8_t der[512];
    size_t len = der_by_hand(uri, der);
    EVP_PKEY *k;

    write_pem(ptu_path("bob.key"), "PKCS#11 PROVIDER URI", der, len, NULL);
    k = read_private(ptu_path("bob.key"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bits(k), 2048);
    CU_ASSERT_STRING_EQUAL(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "p11chat");
    CU_ASSERT_TRUE(signs(k));
    EVP_PKEY_free(k);

    write_pem(ptu_path("bob-behind.key"), "PKCS#11 PROVIDER URI", der, len, cert_first);
    k = read_private(ptu_path("bob-behind.key"));
    CU_ASSERT_PTR_NOT_NULL(k);
    CU_ASSERT_TRUE(k != NULL && signs(k));
    EVP_PKEY_free(k);
}

/* What is wrong in a key file says what, on stderr (OpenSSL drops the
 * errors of decoders that fail). */
static void test_decoder_errors(void)
{
    static const char *bad_form = "p11chat: key file: a PKCS#11 PROVIDER URI block that holds no "
                                  "pkcs11: URI in the expected form\n";
    uint8_t der[512];
    char said[2048];
    size_t len;

    /* a key that is not in the token; the PIN in the query is never shown */
    len = der_by_hand("pkcs11:token=p11chat-test;object=nobody?pin-value=4321", der);
    write_pem(ptu_path("nobody.key"), "PKCS#11 PROVIDER URI", der, len, NULL);
    CU_ASSERT_PTR_NULL(read_private_said(ptu_path("nobody.key"), said, sizeof(said)));
    CU_ASSERT_PTR_NOT_NULL(strstr(said, "p11chat: the key file names "
                                        "pkcs11:token=p11chat-test;object=nobody, which cannot be "
                                        "opened: p11c_key_load on token 'p11chat-test', object "
                                        "'nobody'"));
    CU_ASSERT_PTR_NULL(strstr(said, "4321"));
    /* another description, not a pkcs11: URI, trailing bytes: not ours */
    len = der_by_hand("pkcs11:token=p11chat-test;object=bob", der);
    der[4] = 'X';
    write_pem(ptu_path("desc.key"), "PKCS#11 PROVIDER URI", der, len, NULL);
    CU_ASSERT_PTR_NULL(read_private_said(ptu_path("desc.key"), said, sizeof(said)));
    CU_ASSERT_STRING_EQUAL(said, bad_form);
    len = der_by_hand("file:/etc/ssl/private/key.pem", der);
    write_pem(ptu_path("file.key"), "PKCS#11 PROVIDER URI", der, len, NULL);
    CU_ASSERT_PTR_NULL(read_private_said(ptu_path("file.key"), said, sizeof(said)));
    CU_ASSERT_STRING_EQUAL(said, bad_form);
    len = der_by_hand("pkcs11:token=p11chat-test;object=bob", der);
    der[len++] = 0;
    write_pem(ptu_path("trail.key"), "PKCS#11 PROVIDER URI", der, len, NULL);
    CU_ASSERT_PTR_NULL(read_private_said(ptu_path("trail.key"), said, sizeof(said)));
    CU_ASSERT_STRING_EQUAL(said, bad_form);
    /* a key file of another label is none of our business: nothing said */
    len = der_by_hand("pkcs11:token=p11chat-test;object=bob", der);
    write_pem(ptu_path("other.key"), "SOMETHING ELSE", der, len, NULL);
    CU_ASSERT_PTR_NULL(read_private_said(ptu_path("other.key"), said, sizeof(said)));
    CU_ASSERT_STRING_EQUAL(said, "");
    ERR_clear_error();
}

/* p11chat keyfile writes the file; the file gives the same key. */
static void test_command(void)
{
    char *out = NULL;
    EVP_PKEY *k, *ref;
    int rc;

    rc = tu_run(&out, "OPENSSL_CONF='%s' '%s/p11chat' keyfile --key '%s' --out '%s'", ptu_conf(0),
                tu_apps_dir(), PTU_ALICE, ptu_path("alice.key"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    free(out);
    k = read_private(ptu_path("alice.key"));
    ref = tu_store_load(libctx, PTU_ALICE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(k, ref), 1);
    CU_ASSERT_TRUE(signs(k));
    EVP_PKEY_free(k);
    EVP_PKEY_free(ref);
    /* to standard output; a file name instead of a URI; no such key */
    rc = tu_run(&out, "OPENSSL_CONF='%s' '%s/p11chat' keyfile --key '%s'", ptu_conf(0),
                tu_apps_dir(), PTU_BOB);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(out, "-----BEGIN PKCS#11 PROVIDER URI-----\n", 37), 0);
    free(out);
    rc = tu_run(&out, "'%s/p11chat' keyfile --key alice.pem", tu_apps_dir());
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--key must be a pkcs11: URI"));
    free(out);
    rc = tu_run(&out, "OPENSSL_CONF='%s' '%s/p11chat' keyfile --key '%s'", ptu_conf(0),
                tu_apps_dir(), "pkcs11:token=p11chat-test;object=nobody");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_NO_KEY"));
    free(out);
}

static int setup(void)
{
    libctx = ptu_libctx(0);
    return libctx == NULL;
}

static int teardown(void)
{
    ptu_libctx_free(libctx);
    return 0;
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_keyfile", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_keyfile", setup, teardown);
    CU_add_test(s, "encoder: pkcs11-provider's layout", test_encoder);
    CU_add_test(s, "decoder: PEM_read_bio_PrivateKey gives the token key", test_decoder);
    CU_add_test(s, "decoder: what is wrong in a key file", test_decoder_errors);
    CU_add_test(s, "p11chat keyfile", test_command);
    return tu_main();
}
