/*
 * Wycheproof through the provider for EC and Ed25519 keys: ECDSA P-256 and
 * P-384 and Ed25519 verification with each group's public key imported into
 * the token; ECDH P-256 and P-384 with each test's private key in the token
 * and the peer's public key from the vector. Valid vectors must pass,
 * invalid ones must fail, and every tcId is counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "p11c_pkcs11.h"
#include "ptu.h"

static OSSL_LIB_CTX *libctx;
static P11C_MODULE *mod;
static P11C_TOKEN *tok;
static int key_no;

static P11C_KEY *imported; /* the key of the group or test, destroyed after it */

static void drop_key(void)
{
    P11C_ERR err;

    memset(&err, 0, sizeof(err));
    if (imported != NULL)
        CU_ASSERT_EQUAL(p11c_key_destroy(imported, &err), CKR_OK);
    p11c_key_free(imported);
    imported = NULL;
}

/* Imports a key (session objects) and loads it back through the store. */
static EVP_PKEY *import_key(const char *curve, const uint8_t *priv, size_t privlen,
                            const uint8_t *pt, size_t ptlen)
{
    P11C_ERR err;
    char label[32], uri[128];
    uint8_t id[2];
    EVP_PKEY *pkey;

    key_no++;
    snprintf(label, sizeof(label), "wpec-%d", key_no);
    id[0] = (uint8_t)(0x80 | (key_no >> 8));
    id[1] = (uint8_t)key_no;
    memset(&err, 0, sizeof(err));
    if (p11c_key_import_ec(tok, curve, priv, privlen, pt, ptlen, label, id, sizeof(id), 0,
                           &imported, &err) != CKR_OK) {
        char buf[400];
        fprintf(stderr, "import %s: %s\n", label, p11c_err_string(&err, buf, sizeof(buf)));
        return NULL;
    }
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test;object=%s%s", label,
             priv != NULL ? "" : ";type=public");
    pkey = tu_store_load(libctx, uri, priv != NULL ? OSSL_STORE_INFO_PKEY : OSSL_STORE_INFO_PUBKEY);
    if (pkey == NULL)
        ERR_print_errors_fp(stderr);
    return pkey;
}

/* Verification through the provider's own signature (property query). */
static int verify_one(EVP_PKEY *pkey, const char *md, const uint8_t *msg, size_t msglen,
                      const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (m == NULL ||
        EVP_DigestVerifyInit_ex(m, &pctx, md, libctx, P11CHAT_PROVIDER_PROPQ, pkey, NULL) != 1)
        goto end;
    if (strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pctx)), "p11chat") != 0)
        goto end;
    ok = EVP_DigestVerify(m, sig, siglen, msg, msglen) == 1;
end:
    ERR_clear_error();
    EVP_MD_CTX_free(m);
    return ok;
}

static void run_verify_file(const char *file, const char *curve, const char *md,
                            const int expect[5])
{
    json_t *j = tu_vector_load(file);
    json_t *groups = json_object_get(j, "testGroups"), *g;
    PTU_COUNTS c;
    size_t gi, total = 0;

    memset(&c, 0, sizeof(c));
    json_array_foreach(groups, gi, g)
    {
        json_t *tests = json_object_get(g, "tests"), *t;
        json_t *pub = json_object_get(g, "publicKey");
        size_t ptlen, ti;
        uint8_t *pt = tu_json_hex(pub, md != NULL ? "uncompressed" : "pk", &ptlen);
        EVP_PKEY *pkey = import_key(curve, NULL, 0, pt, ptlen);

        free(pt);
        total += json_array_size(tests);
        if (pkey == NULL) {
            c.skipped += (int)json_array_size(tests);
            drop_key();
            continue;
        }
        json_array_foreach(tests, ti, t)
        {
            size_t msglen, siglen;
            uint8_t *msg = tu_json_hex(t, "msg", &msglen);
            uint8_t *sig = tu_json_hex(t, "sig", &siglen);
            ptu_count(&c, t, verify_one(pkey, md, msg, msglen, sig, siglen), file);
            free(msg);
            free(sig);
        }
        EVP_PKEY_free(pkey);
        drop_key();
    }
    ptu_check_counts(file, &c, expect);
    /* every test id counted once */
    CU_ASSERT_EQUAL(ptu_counts_total(&c), total);
    CU_ASSERT_EQUAL(total, (size_t)json_integer_value(json_object_get(j, "numberOfTests")));
    json_decref(j);
}

/* The uncompressed public point of private scalar d on the curve. */
static int point_of(int nid, const uint8_t *d, size_t dlen, uint8_t *pt, size_t *ptlen)
{
    EC_GROUP *grp = EC_GROUP_new_by_curve_name(nid);
    EC_POINT *p = grp != NULL ? EC_POINT_new(grp) : NULL;
    BIGNUM *bn = BN_bin2bn(d, (int)dlen, NULL);
    int ok = p != NULL && bn != NULL && EC_POINT_mul(grp, p, bn, NULL, NULL, NULL) == 1;

    if (ok)
        *ptlen = EC_POINT_point2oct(grp, p, POINT_CONVERSION_UNCOMPRESSED, pt, *ptlen, NULL);
    ok = ok && *ptlen > 0;
    BN_clear_free(bn);
    EC_POINT_free(p);
    EC_GROUP_free(grp);
    return ok;
}

/* ECDH in the token: our private key imported, the peer's from the vector. */
static int derive_one(EVP_PKEY *ours, const uint8_t *peer_der, size_t peer_len,
                      const uint8_t *shared, size_t shared_len)
{
    const unsigned char *p = peer_der;
    EVP_PKEY *peer = d2i_PUBKEY_ex(NULL, &p, (long)peer_len, libctx, "provider=default");
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t out[128];
    size_t outlen = sizeof(out);
    int ok = 0;

    if (peer == NULL || p != peer_der + peer_len)
        goto end;
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, ours, P11CHAT_PROVIDER_PROPQ);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(ctx)), "p11chat") != 0 ||
        EVP_PKEY_derive_set_peer(ctx, peer) != 1 || EVP_PKEY_derive(ctx, out, &outlen) != 1)
        goto end;
    ok = outlen == shared_len && memcmp(out, shared, shared_len) == 0;
end:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return ok;
}

static void run_ecdh_file(const char *file, const char *curve, int nid, size_t flen,
                          const int expect[5])
{
    json_t *j = tu_vector_load(file);
    json_t *groups = json_object_get(j, "testGroups"), *g;
    PTU_COUNTS c;
    size_t gi, total = 0;

    memset(&c, 0, sizeof(c));
    json_array_foreach(groups, gi, g)
    {
        json_t *tests = json_object_get(g, "tests"), *t;
        size_t ti;

        json_array_foreach(tests, ti, t)
        {
            size_t dlen, peerlen, sharedlen, ptlen = 2 * 66 + 1;
            uint8_t *d = tu_json_hex(t, "private", &dlen);
            uint8_t *peer = tu_json_hex(t, "public", &peerlen);
            uint8_t *shared = tu_json_hex(t, "shared", &sharedlen);
            uint8_t scalar[66] = {0}, pt[2 * 66 + 1];
            size_t skip = 0;
            EVP_PKEY *ours = NULL;

            total++;
            /* Wycheproof's sign byte off; the token takes the field's length */
            while (dlen - skip > flen && d[skip] == 0)
                skip++;
            if (dlen - skip <= flen && point_of(nid, d + skip, dlen - skip, pt, &ptlen)) {
                memcpy(scalar + flen - (dlen - skip), d + skip, dlen - skip);
                ours = import_key(curve, scalar, flen, pt, ptlen);
            }
            if (ours == NULL) {
                c.skipped++;
            } else {
                ptu_count(&c, t, derive_one(ours, peer, peerlen, shared, sharedlen), file);
            }
            EVP_PKEY_free(ours);
            drop_key();
            OPENSSL_cleanse(scalar, sizeof(scalar));
            free(d);
            free(peer);
            free(shared);
        }
    }
    ptu_check_counts(file, &c, expect);
    /* every test id counted once */
    CU_ASSERT_EQUAL(ptu_counts_total(&c), total);
    CU_ASSERT_EQUAL(total, (size_t)json_integer_value(json_object_get(j, "numberOfTests")));
    json_decref(j);
}

static void test_ecdsa_p256(void)
{
    static const int expect[] = {174, 310, 0, 0, 0};
    run_verify_file("wycheproof/ecdsa_secp256r1_sha256_test.json", "P-256", "SHA256", expect);
}

static void test_ecdsa_p384(void)
{
    static const int expect[] = {194, 310, 0, 0, 0};
    run_verify_file("wycheproof/ecdsa_secp384r1_sha384_test.json", "P-384", "SHA384", expect);
}

static void test_ed25519(void)
{
    static const int expect[] = {88, 63, 0, 0, 0};
    run_verify_file("wycheproof/ed25519_test.json", "Ed25519", NULL, expect);
}

/* "acceptable": of 230, 15 derive (a compressed peer point, DER that
 * OpenSSL's decoder takes); the rest are refused: DER that OpenSSL will not
 * decode, and peers with explicit curve parameters, which the provider does
 * not take even when they describe the key's own curve. */
static void test_ecdh_p256(void)
{
    static const int expect[] = {330, 52, 15, 215, 0};
    run_ecdh_file("wycheproof/ecdh_secp256r1_test.json", "P-256", NID_X9_62_prime256v1, 32, expect);
}

static void test_ecdh_p384(void)
{
    static const int expect[] = {771, 46, 15, 215, 0};
    run_ecdh_file("wycheproof/ecdh_secp384r1_test.json", "P-384", NID_secp384r1, 48, expect);
}

static int setup(void)
{
    P11C_ERR err;

    memset(&err, 0, sizeof(err));
    libctx = ptu_libctx(0);
    if (libctx == NULL)
        return 1;
    if (p11c_module_load(tu_softhsm_module(), &mod, &err) != CKR_OK ||
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

    ptu_setup("provider_wycheproof_ec", 0);
    CU_initialize_registry();
    s = CU_add_suite("provider_wycheproof_ec", setup, teardown);
    CU_add_test(s, "ECDSA P-256 SHA-256", test_ecdsa_p256);
    CU_add_test(s, "ECDSA P-384 SHA-384", test_ecdsa_p384);
    CU_add_test(s, "Ed25519", test_ed25519);
    CU_add_test(s, "ECDH P-256 (private key in the token)", test_ecdh_p256);
    CU_add_test(s, "ECDH P-384 (private key in the token)", test_ecdh_p384);
    return tu_main();
}
