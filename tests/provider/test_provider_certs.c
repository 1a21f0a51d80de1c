/*
 * Certificates stored in the token, through OSSL_STORE as `openssl storeutl
 * -certs` and servers read them: imported with pkcs11-tool, read without a
 * PIN, by label, by type=cert, and as a key's certificate found by its id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "ptu.h"

static OSSL_LIB_CTX *nopin;  /* no PIN configured: certificates need none */
static OSSL_LIB_CTX *signer; /* the certificates' library context: kept */
static X509 *alice_cert, *other_cert;

/* A self-signed certificate for `key`, signed through the provider. */
static X509 *make_cert(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *cn, long serial)
{
    X509 *x = X509_new_ex(libctx, NULL);
    X509_NAME *name = X509_NAME_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(X509_set_version(x, X509_VERSION_3), 1);
    CU_ASSERT_EQUAL(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    CU_ASSERT_EQUAL(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    CU_ASSERT_EQUAL(X509_set_subject_name(x, name), 1);
    CU_ASSERT_EQUAL(X509_set_issuer_name(x, name), 1);
    CU_ASSERT_PTR_NOT_NULL(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    CU_ASSERT_PTR_NOT_NULL(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    CU_ASSERT_EQUAL(X509_set_pubkey(x, key), 1);
    CU_ASSERT_TRUE(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* Writes `x` as DER and imports it into the token with pkcs11-tool. */
static void import_cert(X509 *x, const char *label, const char *id)
{
    const char *der = ptu_path("import.der");
    FILE *f = fopen(der, "wb");
    char *out = NULL;
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(i2d_X509_fp(f, x), 1);
    fclose(f);
    rc = tu_run(&out,
                "pkcs11-tool --module '%s' --token-label " TU_TOKEN_LABEL
                " --login --pin " TU_USER_PIN
                " --write-object '%s' --type cert --label '%s' --id %s",
                tu_softhsm_module(), der, label, id);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
}

/* Every certificate `uri` gives through the store, expecting certificates
 * or (expect 0) anything; the keys it also gives are counted in *keys. */
static int load_certs(const char *uri, int expect, X509 **first, int *keys)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, nopin, NULL, NULL, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info;
    int n = 0;

    *first = NULL;
    if (keys != NULL)
        *keys = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    if (expect != 0)
        CU_ASSERT_EQUAL(OSSL_STORE_expect(st, expect), 1);
    while (!OSSL_STORE_eof(st)) {
        info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_CERT) {
            if (n++ == 0)
                *first = OSSL_STORE_INFO_get1_CERT(info);
        } else if (keys != NULL) {
            (*keys)++;
        }
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return n;
}

static void test_certs(void)
{
    X509 *got = NULL;
    int keys = 0;

    /* every certificate of the token */
    CU_ASSERT_EQUAL(load_certs("pkcs11:token=p11chat-test", OSSL_STORE_INFO_CERT, &got, NULL), 2);
    X509_free(got);
    CU_ASSERT_EQUAL(load_certs("pkcs11:token=p11chat-test;type=cert", 0, &got, &keys), 2);
    CU_ASSERT_EQUAL(keys, 0);
    X509_free(got);
    /* by label, the bytes imported */
    CU_ASSERT_EQUAL(
        load_certs("pkcs11:token=p11chat-test;object=alice-cert;type=cert", 0, &got, NULL), 1);
    CU_ASSERT_TRUE(got != NULL && X509_cmp(got, alice_cert) == 0);
    X509_free(got);
    CU_ASSERT_EQUAL(load_certs("pkcs11:token=p11chat-test;id=%02;type=cert", 0, &got, NULL), 1);
    CU_ASSERT_TRUE(got != NULL && X509_cmp(got, other_cert) == 0);
    X509_free(got);
    /* the key's URI: its certificate, found by the key's id (01) */
    CU_ASSERT_EQUAL(load_certs(PTU_ALICE, OSSL_STORE_INFO_CERT, &got, NULL), 1);
    CU_ASSERT_TRUE(got != NULL && X509_cmp(got, alice_cert) == 0);
    X509_free(got);
    /* expecting anything: the key and its certificate */
    CU_ASSERT_EQUAL(load_certs(PTU_ALICE, 0, &got, &keys), 1);
    CU_ASSERT_EQUAL(keys, 1);
    X509_free(got);
    /* a key half named: no certificate */
    CU_ASSERT_EQUAL(load_certs(PTU_ALICE ";type=public", 0, &got, &keys), 0);
    CU_ASSERT_EQUAL(keys, 1);
    /* no certificate of that name, and no key either */
    ERR_clear_error();
    CU_ASSERT_EQUAL(
        load_certs("pkcs11:token=p11chat-test;object=nobody", OSSL_STORE_INFO_CERT, &got, NULL), 0);
    /* a certificate's label only, expecting anything: the certificate, no
     * error about the missing key */
    ERR_clear_error();
    CU_ASSERT_EQUAL(load_certs("pkcs11:token=p11chat-test;object=alice-cert", 0, &got, &keys), 1);
    CU_ASSERT_EQUAL(keys, 0);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    X509_free(got);
}

/* The certificate's public key is the token key's. */
static void test_cert_matches_key(void)
{
    EVP_PKEY *alice = tu_store_load(nopin, PTU_ALICE ";type=public", 0);
    X509 *got = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_EQUAL(load_certs(PTU_ALICE, OSSL_STORE_INFO_CERT, &got, NULL), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_get0_pubkey(got), alice), 1);
    X509_free(got);
    EVP_PKEY_free(alice);
}

/* Certificates for alice (id 01) and bob (id 02), made and signed through
 * the provider, imported with pkcs11-tool under labels of their own. */
static void test_import(void)
{
    EVP_PKEY *alice, *bob;

    signer = ptu_libctx(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(signer);
    alice = tu_store_load(signer, PTU_ALICE, 0);
    bob = tu_store_load(signer, PTU_BOB, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bob);
    alice_cert = make_cert(signer, alice, "alice", 1);
    other_cert = make_cert(signer, bob, "bob", 2);
    import_cert(alice_cert, "alice-cert", "01");
    import_cert(other_cert, "bob-cert", "02");
    EVP_PKEY_free(alice);
    EVP_PKEY_free(bob);
}

static int setup(void)
{
    nopin = ptu_libctx(2);
    return nopin == NULL;
}

static int teardown(void)
{
    X509_free(alice_cert);
    X509_free(other_cert);
    ptu_libctx_free(signer);
    ptu_libctx_free(nopin);
    return 0;
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_certs", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_certs", setup, teardown);
    CU_add_test(s, "certificates imported with pkcs11-tool", test_import);
    CU_add_test(s, "certificates by URI, type, label, id and key", test_certs);
    CU_add_test(s, "the certificate holds the token key", test_cert_matches_key);
    return tu_main();
}
