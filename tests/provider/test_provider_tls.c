/*
 * Decryption the way TLS servers ask for it, and what OAEP says when the
 * token cannot do it: the TLS pre-master secret (RSA_PKCS1_WITH_TLS_PADDING)
 * with implicit rejection, an OAEP label the token would ignore, and SHA-2
 * OAEP the token refuses, with the fallback off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "ptu.h"

#define PREMASTER 48

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *alice;

/* Encrypts `m` for alice with PKCS#1 v1.5 (on the host). */
static size_t encrypt_pkcs1(const uint8_t *m, size_t mlen, uint8_t *ct, size_t ctsize)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
    size_t ctlen = ctsize;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(EVP_PKEY_encrypt_init(c), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_encrypt(c, ct, &ctlen, m, mlen), 1);
    EVP_PKEY_CTX_free(c);
    return ctlen;
}

/*
 * Decrypts with TLS padding as libssl does (client version, and the
 * negotiated one when nonzero). Returns EVP_PKEY_decrypt's result.
 */
static int decrypt_tls(const uint8_t *ct, size_t ctlen, unsigned int client, unsigned int alt,
                       uint8_t *out, size_t *outlen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
    OSSL_PARAM params[3], *p = params;
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(EVP_PKEY_decrypt_init(c), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_WITH_TLS_PADDING), 1);
    if (client != 0)
        *p++ = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &client);
    if (alt != 0)
        *p++ = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, &alt);
    *p = OSSL_PARAM_construct_end();
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(c, params), 1);
    rc = EVP_PKEY_decrypt(c, out, outlen, ct, ctlen);
    EVP_PKEY_CTX_free(c);
    return rc;
}

static void premaster(uint8_t pms[PREMASTER], unsigned int version)
{
    for (size_t i = 0; i < PREMASTER; i++)
        pms[i] = (uint8_t)(0xA0 + i);
    pms[0] = (uint8_t)(version >> 8);
    pms[1] = (uint8_t)version;
}

/* A good pre-master secret comes back; anything wrong gives 48 random
 * bytes, a different draw each time, and the same success. */
static void test_tls_premaster(void)
{
    uint8_t pms[PREMASTER], ct[512], out[512], out2[512];
    size_t ctlen, outlen;

    premaster(pms, 0x0303);
    ctlen = encrypt_pkcs1(pms, sizeof(pms), ct, sizeof(ct));

    /* the size asked for first is the secret's */
    outlen = 0;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0303, 0, NULL, &outlen), 1);
    CU_ASSERT_EQUAL(outlen, PREMASTER);

    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0303, 0, out, &outlen), 1);
    CU_ASSERT_EQUAL(outlen, PREMASTER);
    CU_ASSERT_EQUAL(memcmp(out, pms, PREMASTER), 0);

    /* a version rollback: random, twice different, no error */
    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0302, 0, out, &outlen), 1);
    CU_ASSERT_EQUAL(outlen, PREMASTER);
    CU_ASSERT_NOT_EQUAL(memcmp(out, pms, PREMASTER), 0);
    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0302, 0, out2, &outlen), 1);
    CU_ASSERT_NOT_EQUAL(memcmp(out, out2, PREMASTER), 0);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);

    /* the negotiated version is accepted too (SSL_OP_TLS_ROLLBACK_BUG) */
    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0302, 0x0303, out, &outlen), 1);
    CU_ASSERT_EQUAL(memcmp(out, pms, PREMASTER), 0);

    /* a secret of 47 bytes, or of 49: random */
    ctlen = encrypt_pkcs1(pms, PREMASTER - 1, ct, sizeof(ct));
    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0303, 0, out, &outlen), 1);
    CU_ASSERT_NOT_EQUAL(memcmp(out, pms, PREMASTER), 0);
    memcpy(out2, pms, PREMASTER);
    out2[PREMASTER] = 0x55;
    ctlen = encrypt_pkcs1(out2, PREMASTER + 1, ct, sizeof(ct));
    outlen = PREMASTER;
    CU_ASSERT_EQUAL(decrypt_tls(ct, ctlen, 0x0303, 0, out, &outlen), 1);
    CU_ASSERT_NOT_EQUAL(memcmp(out, pms, PREMASTER), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(out, out2 + 1, PREMASTER), 0);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
}

/* What the caller gets wrong is an error, not a random secret. */
static void test_tls_misuse(void)
{
    uint8_t pms[PREMASTER], ct[512], out[512];
    size_t ctlen, outlen;

    premaster(pms, 0x0303);
    ctlen = encrypt_pkcs1(pms, sizeof(pms), ct, sizeof(ct));
    ERR_clear_error();
    outlen = PREMASTER;
    CU_ASSERT_TRUE(decrypt_tls(ct, ctlen, 0, 0, out, &outlen) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("needs the client version"));
    outlen = PREMASTER - 1;
    CU_ASSERT_TRUE(decrypt_tls(ct, ctlen, 0x0303, 0, out, &outlen) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("output buffer too small"));
    /* a ciphertext of the wrong length is public: the uniform error */
    outlen = PREMASTER;
    CU_ASSERT_TRUE(decrypt_tls(ct, ctlen - 1, 0x0303, 0, out, &outlen) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("RSA decryption failed"));
}

/* OAEP under the configuration with the fallback off. */
static int decrypt_oaep(OSSL_LIB_CTX *ctx, EVP_PKEY *key, const char *md, const char *label)
{
    static const uint8_t m[] = "oaep message";
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(ctx, key, NULL);
    uint8_t ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    int rc = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int dec = 0; dec < 2; dec++) {
        CU_ASSERT_EQUAL(dec ? EVP_PKEY_decrypt_init(c) : EVP_PKEY_encrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, md, NULL), 1);
        if (label != NULL) {
            void *l = OPENSSL_strdup(label);
            CU_ASSERT_EQUAL(EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)strlen(label)), 1);
        }
        if (!dec)
            CU_ASSERT_EQUAL(EVP_PKEY_encrypt(c, ct, &ctlen, m, sizeof(m)), 1);
    }
    ERR_clear_error();
    rc = EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen);
    if (rc == 1)
        CU_ASSERT_TRUE(ptlen == sizeof(m) && memcmp(pt, m, ptlen) == 0);
    EVP_PKEY_CTX_free(c);
    return rc;
}

static void test_oaep_without_fallback(void)
{
    OSSL_LIB_CTX *nofb = ptu_libctx(3);
    EVP_PKEY *key;

    CU_ASSERT_PTR_NOT_NULL_FATAL(nofb);
    key = tu_store_load(nofb, PTU_ALICE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    /* SHA-1 without a label: the token does it */
    CU_ASSERT_EQUAL(decrypt_oaep(nofb, key, "SHA1", NULL), 1);
    /* SHA-256: SoftHSM2 2.6.1 refuses; the error names the way out */
    CU_ASSERT_TRUE(decrypt_oaep(nofb, key, "SHA256", NULL) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("oaep-fallback = yes"));
    CU_ASSERT_TRUE(decrypt_oaep(nofb, key, "SHA256", NULL) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("does not decrypt OAEP with SHA2-256 and MGF1-SHA2-256"));
    /* a label SoftHSM2 would ignore: refused, twice (the answer is kept) */
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_TRUE(decrypt_oaep(nofb, key, "SHA1", "context") <= 0);
        CU_ASSERT_TRUE(ptu_error_has("the token ignores OAEP labels"));
    }
    /* without a label it still works on the same key */
    CU_ASSERT_EQUAL(decrypt_oaep(nofb, key, "SHA1", NULL), 1);
    EVP_PKEY_free(key);
    ptu_libctx_free(nofb);
    /* with the fallback on, the label is checked on the host */
    CU_ASSERT_EQUAL(decrypt_oaep(libctx, alice, "SHA1", "context"), 1);
    CU_ASSERT_EQUAL(decrypt_oaep(libctx, alice, "SHA256", "context"), 1);
}

static int setup(void)
{
    libctx = ptu_libctx(0);
    if (libctx == NULL)
        return 1;
    alice = tu_store_load(libctx, PTU_ALICE, 0);
    return alice == NULL;
}

static int teardown(void)
{
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
    return 0;
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_tls", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_tls", setup, teardown);
    CU_add_test(s, "TLS pre-master secret, implicit rejection", test_tls_premaster);
    CU_add_test(s, "TLS pre-master secret, caller errors", test_tls_misuse);
    CU_add_test(s, "OAEP the token refuses or would ignore, fallback off",
                test_oaep_without_fallback);
    return tu_main();
}
