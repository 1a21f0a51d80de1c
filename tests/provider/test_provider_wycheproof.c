/*
 * Wycheproof through the provider: each test key is imported into the token
 * (C_CreateObject), loaded back through OSSL_STORE, and used with EVP.
 * Valid vectors must pass, invalid ones must fail, and every tcId is counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include "p11c_pkcs11.h"
#include "ptu.h"

static OSSL_LIB_CTX *libctx;
static P11C_MODULE *mod;
static P11C_TOKEN *tok;
static int key_no;

/* Hex without the sign byte Wycheproof puts in front of the modulus. */
static uint8_t *unhex_trim(const json_t *obj, const char *key, size_t *len)
{
    uint8_t *b = tu_json_hex(obj, key, len);
    size_t skip = 0;

    while (skip + 1 < *len && b[skip] == 0)
        skip++;
    memmove(b, b + skip, *len - skip);
    *len -= skip;
    return b;
}

/* Imports the group's key and loads it through the provider's store. */
static P11C_KEY *imported; /* the group's key, destroyed after the group */

/* Session objects (no disk writes), one group at a time. */
static void drop_key(void)
{
    P11C_ERR err;

    memset(&err, 0, sizeof(err));
    if (imported != NULL)
        CU_ASSERT_EQUAL(p11c_key_destroy(imported, &err), CKR_OK);
    p11c_key_free(imported);
    imported = NULL;
}

static EVP_PKEY *import_key(const json_t *k, int private, unsigned int *bits)
{
    static const char *names[] = {"modulus", "publicExponent", "privateExponent", "prime1",
                                  "prime2",  "exponent1",      "exponent2",       "coefficient"};
    uint8_t *v[8] = {0};
    size_t l[8] = {0};
    P11C_RSA_PARTS parts;
    P11C_KEY *key = NULL;
    P11C_ERR err;
    EVP_PKEY *pkey = NULL;
    char label[32], uri[128];
    uint8_t id[2];
    CK_RV rv;

    for (int i = 0; i < (private ? 8 : 2); i++)
        v[i] = unhex_trim(k, names[i], &l[i]);
    memset(&parts, 0, sizeof(parts));
    parts.n = v[0], parts.nlen = l[0], parts.e = v[1], parts.elen = l[1];
    if (private) {
        parts.d = v[2], parts.dlen = l[2], parts.p = v[3], parts.plen = l[3];
        parts.q = v[4], parts.qlen = l[4], parts.dp = v[5], parts.dplen = l[5];
        parts.dq = v[6], parts.dqlen = l[6], parts.qinv = v[7], parts.qinvlen = l[7];
    }
    *bits = (unsigned int)l[0] * 8;
    key_no++;
    snprintf(label, sizeof(label), "wp-%d", key_no);
    id[0] = (uint8_t)(0x80 | (key_no >> 8));
    id[1] = (uint8_t)key_no;
    memset(&err, 0, sizeof(err));
    rv = p11c_key_import(tok, &parts, label, id, sizeof(id), 0, &key, &err);
    for (int i = 0; i < 8; i++)
        free(v[i]);
    if (rv != CKR_OK) {
        char buf[400];
        fprintf(stderr, "import %s: %s\n", label, p11c_err_string(&err, buf, sizeof(buf)));
        return NULL;
    }
    imported = key;
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test;object=%s%s", label,
             private ? "" : ";type=public");
    pkey = tu_store_load(libctx, uri, private ? OSSL_STORE_INFO_PKEY : OSSL_STORE_INFO_PUBKEY);
    if (pkey == NULL)
        ERR_print_errors_fp(stderr);
    return pkey;
}

static const char *md_name(const char *sha)
{
    if (strcmp(sha, "SHA-1") == 0)
        return "SHA1";
    if (strcmp(sha, "SHA-224") == 0)
        return "SHA224";
    if (strcmp(sha, "SHA-256") == 0)
        return "SHA256";
    if (strcmp(sha, "SHA-384") == 0)
        return "SHA384";
    if (strcmp(sha, "SHA-512") == 0)
        return "SHA512";
    return NULL;
}

/* Verification through the provider's own signature (property query). */
static int verify_one(EVP_PKEY *pkey, const char *md, int pss, const char *mgf, int slen,
                      const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (m == NULL ||
        EVP_DigestVerifyInit_ex(m, &pctx, md, libctx, P11CHAT_PROVIDER_PROPQ, pkey, NULL) != 1)
        goto end;
    /* the operation runs in this provider, not in the default one */
    if (strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pctx)), "p11chat") != 0)
        goto end;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, slen) != 1 ||
                EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mgf, NULL) != 1))
        goto end;
    ok = EVP_DigestVerify(m, sig, siglen, msg, msglen) == 1;
end:
    ERR_clear_error();
    EVP_MD_CTX_free(m);
    return ok;
}

static void run_verify_file(const char *file, int pss, const int expect[5])
{
    json_t *j = tu_vector_load(file);
    json_t *groups = json_object_get(j, "testGroups"), *g;
    PTU_COUNTS c;
    size_t gi;

    memset(&c, 0, sizeof(c));
    json_array_foreach(groups, gi, g)
    {
        json_t *tests = json_object_get(g, "tests"), *t;
        const char *md = md_name(tu_json_str(g, "sha"));
        const char *mgf = pss ? md_name(tu_json_str(g, "mgfSha")) : NULL;
        int slen = pss ? (int)json_integer_value(json_object_get(g, "sLen")) : 0;
        unsigned int bits = 0;
        EVP_PKEY *pkey = import_key(json_object_get(g, "publicKey"), 0, &bits);
        size_t ti;

        if (pkey == NULL) {
            c.skipped += (int)json_array_size(tests);
            drop_key();
            continue;
        }
        CU_ASSERT_PTR_NOT_NULL(md);
        json_array_foreach(tests, ti, t)
        {
            size_t msglen, siglen;
            uint8_t *msg = tu_json_hex(t, "msg", &msglen);
            uint8_t *sig = tu_json_hex(t, "sig", &siglen);
            int ok = verify_one(pkey, md, pss, mgf, slen, msg, msglen, sig, siglen);
            ptu_count(&c, t, ok, file);
            free(msg);
            free(sig);
        }
        EVP_PKEY_free(pkey);
        drop_key();
    }
    ptu_check_counts(file, &c, expect);
    json_decref(j);
}

static char last_failure[512];

static int decrypt_one(EVP_PKEY *pkey, const char *md, const char *mgf, const uint8_t *label,
                       size_t label_len, const uint8_t *ct, size_t ctlen, const uint8_t *msg,
                       size_t msglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL);
    uint8_t out[1024];
    size_t outlen = sizeof(out);
    int ok = 0;

    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, mgf, NULL) != 1)
        goto end;
    if (label_len > 0) {
        uint8_t *l = OPENSSL_memdup(label, label_len);
        if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)label_len) != 1) {
            OPENSSL_free(l);
            goto end;
        }
    }
    if (EVP_PKEY_decrypt(ctx, out, &outlen, ct, ctlen) == 1) {
        ok = outlen == msglen && memcmp(out, msg, msglen) == 0;
    } else {
        /* every failure looks the same: one error, one text */
        const char *data = NULL;
        unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, NULL);
        char reason[256];
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(last_failure, sizeof(last_failure), "%s|%s|%lu",
                 strstr(reason, ":p11chat:") ? strstr(reason, ":p11chat:") : reason,
                 data != NULL ? data : "", ERR_peek_error());
    }
end:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void run_oaep_file(const char *file, const int expect[5])
{
    json_t *j = tu_vector_load(file);
    json_t *groups = json_object_get(j, "testGroups"), *g;
    PTU_COUNTS c;
    size_t gi;

    memset(&c, 0, sizeof(c));
    json_array_foreach(groups, gi, g)
    {
        json_t *tests = json_object_get(g, "tests"), *t;
        const char *md = md_name(tu_json_str(g, "sha"));
        const char *mgf = md_name(tu_json_str(g, "mgfSha"));
        json_int_t size = json_integer_value(json_object_get(g, "keySize"));
        unsigned int bits = 0;
        EVP_PKEY *pkey;
        size_t ti;

        /* the token's range, and a few seconds in all */
        if (size < 2048 || size > 4096) {
            c.skipped += (int)json_array_size(tests);
            continue;
        }
        pkey = import_key(json_object_get(g, "privateKey"), 1, &bits);
        if (pkey == NULL) {
            c.skipped += (int)json_array_size(tests);
            drop_key();
            continue;
        }
        json_array_foreach(tests, ti, t)
        {
            size_t msglen, ctlen, llen;
            uint8_t *msg = tu_json_hex(t, "msg", &msglen);
            uint8_t *ct = tu_json_hex(t, "ct", &ctlen);
            uint8_t *label = tu_json_hex(t, "label", &llen);
            int ok;
            last_failure[0] = '\0';
            ok = decrypt_one(pkey, md, mgf, label, llen, ct, ctlen, msg, msglen);
            long tc = (long)json_integer_value(json_object_get(t, "tcId"));
            if (strcmp(tu_json_str(t, "result"), "invalid") == 0 && tu_token_is_nss() &&
                strstr(tu_json_str(t, "comment"), "added n to c") != NULL) {
                /* NSS refuses a ciphertext not below the modulus before any
                 * padding is looked at (public information, no oracle). */
                CU_ASSERT_PTR_NOT_NULL(
                    strstr(last_failure, ":p11chat::CKR_ARGUMENTS_BAD|C_Decrypt"));
            } else if (strcmp(tu_json_str(t, "result"), "invalid") == 0) {
                /* the reason, the text, and nothing else queued behind */
                CU_ASSERT_STRING_EQUAL(last_failure, ":p11chat::CKR_ENCRYPTED_DATA_INVALID|RSA "
                                                     "decryption failed|0");
                if (strcmp(last_failure, ":p11chat::CKR_ENCRYPTED_DATA_INVALID|RSA "
                                         "decryption failed|0") != 0)
                    fprintf(stderr, "tcId %ld: %s\n", tc, last_failure);
            }
            ptu_count(&c, t, ok, file);
            free(msg);
            free(ct);
            free(label);
        }
        EVP_PKEY_free(pkey);
        drop_key();
    }
    ptu_check_counts(file, &c, expect);
    json_decref(j);
}

/*
 * PKCS#1 v1.5 decryption, through the provider twice per vector: with
 * RSA_PKCS1_PADDING (decrypted in the token; a valid vector gives its
 * message, every invalid one the same single error), and with
 * RSA_PKCS1_WITH_TLS_PADDING as a TLS server asks (no vector holds a 48-byte
 * pre-master secret, so each one that the token can decrypt must give 48
 * random bytes, different on each call, and no error; a ciphertext of the
 * wrong length or not below the modulus is refused).
 */
static int has_flag(const json_t *t, const char *flag)
{
    json_t *flags = json_object_get(t, "flags"), *f;
    size_t i;

    json_array_foreach(flags, i, f)
    {
        if (strcmp(json_string_value(f), flag) == 0)
            return 1;
    }
    return 0;
}

static int decrypt_pkcs1(EVP_PKEY *pkey, int tls, const uint8_t *ct, size_t ctlen, uint8_t *out,
                         size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, NULL);
    unsigned int version = 0x0303;
    OSSL_PARAM params[2];
    int ok = 0;

    params[0] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &version);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, tls ? RSA_PKCS1_WITH_TLS_PADDING : RSA_PKCS1_PADDING) !=
            1 ||
        (tls && EVP_PKEY_CTX_set_params(ctx, params) != 1))
        goto end;
    ok = EVP_PKEY_decrypt(ctx, out, outlen, ct, ctlen) == 1;
    if (!ok) {
        const char *data = NULL;
        unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, NULL);
        char reason[256];
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(last_failure, sizeof(last_failure), "%s|%s|%lu",
                 strstr(reason, ":p11chat:") ? strstr(reason, ":p11chat:") : reason,
                 data != NULL ? data : "", ERR_peek_error());
    }
end:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* The one failure an invalid PKCS#1 v1.5 ciphertext may give. NSS refuses a
 * ciphertext not below the modulus before any padding is looked at (public
 * information, no oracle), with its own CKR. */
static void assert_uniform_pkcs1(const json_t *t, const char *uniform)
{
    const char *comment = tu_json_str(t, "comment");
    if (tu_token_is_nss() &&
        (strstr(comment, "added n to c") != NULL || strcmp(comment, "c = n") == 0)) {
        CU_ASSERT_PTR_NOT_NULL(strstr(last_failure, ":p11chat::CKR_ARGUMENTS_BAD|C_Decrypt"));
    } else {
        CU_ASSERT_STRING_EQUAL(last_failure, uniform);
        if (strcmp(last_failure, uniform) != 0)
            fprintf(stderr, "tcId %lld (%s): %s\n",
                    (long long)json_integer_value(json_object_get(t, "tcId")), comment,
                    last_failure);
    }
}

static void test_pkcs1_decrypt(void)
{
    static const char *file = "wycheproof/rsa_pkcs1_2048_test.json";
    static const char *uniform = ":p11chat::CKR_ENCRYPTED_DATA_INVALID|RSA decryption failed|0";
    json_t *j = tu_vector_load(file);
    json_t *groups = json_object_get(j, "testGroups"), *g;
    PTU_COUNTS c, tls;
    size_t gi;

    memset(&c, 0, sizeof(c));
    memset(&tls, 0, sizeof(tls));
    json_array_foreach(groups, gi, g)
    {
        json_t *tests = json_object_get(g, "tests"), *t;
        unsigned int bits = 0;
        EVP_PKEY *pkey = import_key(json_object_get(g, "privateKey"), 1, &bits);
        size_t ti;

        CU_ASSERT_PTR_NOT_NULL_FATAL(pkey);
        json_array_foreach(tests, ti, t)
        {
            size_t msglen, ctlen, outlen = 1024, out2len = 1024;
            uint8_t *msg = tu_json_hex(t, "msg", &msglen);
            uint8_t *ct = tu_json_hex(t, "ct", &ctlen);
            uint8_t out[1024], out2[1024];
            const char *result = tu_json_str(t, "result");
            int ok, tls_ok, tls_ok2;

            last_failure[0] = '\0';
            ok = decrypt_pkcs1(pkey, 0, ct, ctlen, out, &outlen);
            if (ok)
                ok = outlen == msglen && memcmp(out, msg, msglen) == 0;
            else if (strcmp(result, "invalid") == 0)
                assert_uniform_pkcs1(t, uniform);
            ptu_count(&c, t, ok, file);

            /* TLS: 48 random bytes unless the ciphertext's length is wrong */
            outlen = out2len = 48;
            tls_ok = decrypt_pkcs1(pkey, 1, ct, ctlen, out, &outlen);
            tls_ok2 = decrypt_pkcs1(pkey, 1, ct, ctlen, out2, &out2len);
            CU_ASSERT_EQUAL(tls_ok, tls_ok2);
            if (tls_ok) {
                CU_ASSERT_TRUE(outlen == 48 && out2len == 48);
                CU_ASSERT_NOT_EQUAL(memcmp(out, out2, 48), 0);
                CU_ASSERT_TRUE(msglen < 48 || memcmp(out, msg, 48) != 0);
                tls.valid_pass++;
            } else {
                /* only what is public: length, or not below the modulus */
                CU_ASSERT_TRUE(has_flag(t, "InvalidCiphertextFormat"));
                assert_uniform_pkcs1(t, uniform);
                tls.invalid_fail++;
            }
            free(msg);
            free(ct);
        }
        EVP_PKEY_free(pkey);
        drop_key();
    }
    ptu_print_counts(file, &c);
    printf("%s, TLS padding: %d random secrets, %d wrong lengths refused\n", file, tls.valid_pass,
           tls.invalid_fail);
    CU_ASSERT_EQUAL(c.valid_pass, 42);
    CU_ASSERT_EQUAL(c.valid_fail, 0);
    CU_ASSERT_EQUAL(c.invalid_fail, 25);
    CU_ASSERT_EQUAL(c.invalid_pass, 0);
    CU_ASSERT_EQUAL(tls.valid_pass, 61);
    CU_ASSERT_EQUAL(tls.invalid_fail, 6);
    json_decref(j);
}

/* {valid passed, invalid failed, acceptable passed, acceptable failed, skipped} */
static void test_pss_2048_sha256(void)
{
    static const int expect[] = {63, 45, 0, 0, 0};
    run_verify_file("wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json", 1, expect);
}

static void test_pss_misc(void)
{
    static const int expect[] = {150, 0, 0, 0, 0};
    run_verify_file("wycheproof/rsa_pss_misc_test.json", 1, expect);
}

/* tcId 8 ("acceptable": DigestInfo without the NULL) is rejected, as
 * OpenSSL's default provider rejects it. */
static void test_pkcs1_2048_sha256(void)
{
    static const int expect[] = {9, 249, 0, 1, 0};
    run_verify_file("wycheproof/rsa_signature_2048_sha256_test.json", 0, expect);
}

static void test_oaep_sha1(void)
{
    static const int expect[] = {17, 19, 0, 0, 0};
    run_oaep_file("wycheproof/rsa_oaep_2048_sha1_mgf1sha1_test.json", expect);
}

static void test_oaep_sha256(void)
{
    static const int expect[] = {18, 19, 0, 0, 0};
    run_oaep_file("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json", expect);
}

/* 1024- and 1536-bit keys (below the token's minimum) and 8192-bit keys (too
 * slow for the suite) are skipped and counted: 120 tests. The three
 * "acceptable" vectors (em is a small integer) decrypt correctly. */
static void test_oaep_misc(void)
{
    static const int expect[] = {227, 0, 3, 0, 165};
    run_oaep_file("wycheproof/rsa_oaep_misc_test.json", expect);
}

static int setup(void)
{
    P11C_ERR err;

    memset(&err, 0, sizeof(err));
    libctx = ptu_libctx(0);
    if (libctx == NULL)
        return 1;
    if (p11c_module_load_args(tu_token_module(), tu_token_init_args(), &mod, &err) != CKR_OK ||
        p11c_token_find(mod, "pkcs11:token=p11chat-test", &tok, &err) != CKR_OK ||
        p11c_token_login(tok, TU_USER_PIN, &err) != CKR_OK) {
        char buf[400];
        fprintf(stderr, "setup: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
        return 1;
    }
    return 0;
}

static int teardown(void)
{
    ptu_libctx_free(libctx);
    p11c_module_free(mod);
    return 0;
}

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_wycheproof", 0);
    CU_initialize_registry();
    s = CU_add_suite("provider_wycheproof", setup, teardown);
    CU_add_test(s, "RSA-PSS 2048 SHA-256 MGF1 32", test_pss_2048_sha256);
    CU_add_test(s, "RSA-PSS misc", test_pss_misc);
    CU_add_test(s, "PKCS#1 v1.5 2048 SHA-256", test_pkcs1_2048_sha256);
    CU_add_test(s, "RSA-OAEP 2048 SHA-1 (token)", test_oaep_sha1);
    CU_add_test(s, "RSA-OAEP 2048 SHA-256 (host decoding)", test_oaep_sha256);
    CU_add_test(s, "RSA-OAEP misc 2048-4096", test_oaep_misc);
    CU_add_test(s, "PKCS#1 v1.5 decryption, and as a TLS pre-master secret", test_pkcs1_decrypt);
    return tu_main();
}
