/* pkcs11/: EC and Edwards keys on a private SoftHSM2 token: loading by URI
 * (pair, private, public), CKA_EC_POINT raw or DER-wrapped, ECDSA and EdDSA
 * signatures checked by OpenSSL, ECDH against OpenSSL with no secret left in
 * the token, generation (persistent, ephemeral), and the error paths. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <p11-kit/p11-kit.h>

static char errbuf[512];
static CK_FUNCTION_LIST *raw;
static CK_SLOT_ID slot = (CK_SLOT_ID)-1;

#define ASSERT_RV(expr, want)                                                                      \
    do {                                                                                           \
        CK_RV rv_ = (expr);                                                                        \
        if (rv_ != (CK_RV)(want))                                                                  \
            fprintf(stderr, "\n%s:%d: %s, expected %s (%s)\n", __FILE__, __LINE__,                 \
                    p11c_rv_name(rv_), p11c_rv_name(want),                                         \
                    p11c_err_string(&err, errbuf, sizeof(errbuf)));                                \
        CU_ASSERT_EQUAL(rv_, (CK_RV)(want));                                                       \
    } while (0)

/* An OpenSSL key of the curve: private when want_priv. */
static EVP_PKEY *sw_key(const char *curve)
{
    if (strcmp(curve, "Ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

/* Raw public point and private value of an OpenSSL key. */
static void sw_parts(EVP_PKEY *pk, int ed, uint8_t *pt, size_t *ptlen, uint8_t *priv,
                     size_t *privlen, size_t flen)
{
    if (ed) {
        CU_ASSERT_EQUAL(EVP_PKEY_get_raw_public_key(pk, pt, ptlen), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_get_raw_private_key(pk, priv, privlen), 1);
        return;
    }
    BIGNUM *d = NULL;
    CU_ASSERT_EQUAL(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, *ptlen, ptlen),
                    1);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    CU_ASSERT_EQUAL(BN_bn2binpad(d, priv, (int)flen), (int)flen);
    *privlen = flen;
    BN_clear_free(d);
}

static P11C_KEY *load(P11C_MODULE *m, const char *uri, p11c_want want)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    ASSERT_RV(p11c_key_load(m, uri, want, &k, &err), CKR_OK);
    return k;
}

/* A signature of "msg" made in the token verifies with OpenSSL. */
static int sign_ok(P11C_KEY *k, EVP_PKEY *pub)
{
    static const uint8_t msg[] = "msg";
    uint8_t dgst[32], sig[132], der[160];
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {0};
    P11C_ERR err = {0};
    EVP_MD_CTX *m = NULL;
    int ok = 0;

    if (p11c_key_type(k) == CKK_EC_EDWARDS) {
        mech.type = CKM_EDDSA;
        if (p11c_key_sign(k, &mech, msg, 3, sig, &siglen, &err) != CKR_OK)
            goto end;
        m = EVP_MD_CTX_new();
        ok = EVP_DigestVerifyInit(m, NULL, NULL, NULL, pub) == 1 &&
             EVP_DigestVerify(m, sig, siglen, msg, 3) == 1;
        goto end;
    }
    mech.type = CKM_ECDSA;
    SHA256(msg, 3, dgst);
    if (p11c_key_sign(k, &mech, dgst, sizeof(dgst), sig, &siglen, &err) != CKR_OK ||
        siglen != p11c_key_sig_len(k))
        goto end;
    {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)siglen / 2, NULL);
        BIGNUM *s = BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL);
        unsigned char *p = der;
        ECDSA_SIG_set0(es, r, s);
        int len = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pub, NULL);
        ok = v != NULL && EVP_PKEY_verify_init(v) == 1 &&
             EVP_PKEY_verify(v, der, (size_t)len, dgst, sizeof(dgst)) == 1;
        EVP_PKEY_CTX_free(v);
    }
end:
    if (!ok)
        fprintf(stderr, "sign: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
    EVP_MD_CTX_free(m);
    return ok;
}

/* Secret key objects in the token, seen by the application. */
static CK_ULONG secrets(void)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[1] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE hs[16];
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s;

    if (raw == NULL && (raw = th_raw(&slot)) == NULL)
        return 99;
    if (raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return 99;
    if (raw->C_FindObjectsInit(s, tmpl, 1) != CKR_OK || raw->C_FindObjects(s, hs, 16, &n) != CKR_OK)
        n = 99;
    raw->C_FindObjectsFinal(s);
    raw->C_CloseSession(s);
    return n;
}

/* Imported keys of each curve load as a pair, a private and a public key,
 * with the same point; they sign; EC keys derive what OpenSSL derives. */
static void test_import_load_use(void)
{
    static const struct {
        const char *curve, *label;
        size_t flen;
        unsigned int bits;
    } cs[] = {
        {"P-256", "ec256", 32, 256},
        {"P-384", "ec384", 48, 384},
        {"P-521", "ec521", 66, 521},
        {"Ed25519", "ed", 32, 256},
    };
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);

    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        int ed = strcmp(cs[i].curve, "Ed25519") == 0;
        EVP_PKEY *sw = sw_key(cs[i].curve);
        uint8_t pt[133], priv[66], id[1] = {(uint8_t)(0x40 + i)};
        size_t ptlen = sizeof(pt), privlen = sizeof(priv);
        P11C_ERR err = {0};
        P11C_KEY *k = NULL;
        char uri[256];

        CU_ASSERT_PTR_NOT_NULL_FATAL(sw);
        sw_parts(sw, ed, pt, &ptlen, priv, &privlen, cs[i].flen);
        ASSERT_RV(p11c_key_import_ec(t, cs[i].curve, priv, privlen, pt, ptlen, cs[i].label, id, 1,
                                     1, &k, &err),
                  CKR_OK);
        OPENSSL_cleanse(priv, sizeof(priv));
        p11c_key_free(k);
        for (int w = 0; w < 3; w++) {
            snprintf(uri, sizeof(uri), TH_TOKEN_URI ";object=%s%s", cs[i].label,
                     w == 0   ? ""
                     : w == 1 ? ";type=private"
                              : ";type=public");
            k = load(m, uri, P11C_WANT_ANY);
            CU_ASSERT_PTR_NOT_NULL_FATAL(k);
            const uint8_t *kp;
            size_t kplen;
            p11c_key_ec_point(k, &kp, &kplen);
            CU_ASSERT_EQUAL(p11c_key_type(k), ed ? CKK_EC_EDWARDS : CKK_EC);
            CU_ASSERT_STRING_EQUAL(p11c_key_curve(k), cs[i].curve);
            CU_ASSERT_EQUAL(p11c_key_bits(k), cs[i].bits);
            CU_ASSERT_TRUE(kplen == ptlen && memcmp(kp, pt, ptlen) == 0);
            CU_ASSERT_EQUAL(p11c_key_has_private(k), w != 2);
            if (w != 2)
                CU_ASSERT_TRUE(sign_ok(k, sw));
            char *u = NULL;
            CU_ASSERT_EQUAL(p11c_key_uri(k, 0, &u), CKR_OK);
            CU_ASSERT_PTR_NOT_NULL(strstr(u, ";token=p11chat-test;"));
            CU_ASSERT_PTR_NOT_NULL(strstr(u, cs[i].label));
            CU_ASSERT_EQUAL(strstr(u, "type=public") != NULL, w == 2);
            free(u);
            p11c_key_free(k);
        }
        if (!ed) {
            /* ECDH: the token's secret is OpenSSL's, and no object stays */
            EVP_PKEY *peer = sw_key(cs[i].curve);
            uint8_t ppt[133], s1[66], s2[66];
            size_t ppt_len = sizeof(ppt), n1 = sizeof(s1), n2 = sizeof(s2);
            CU_ASSERT_EQUAL(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, ppt,
                                                            sizeof(ppt), &ppt_len),
                            1);
            snprintf(uri, sizeof(uri), TH_TOKEN_URI ";object=%s", cs[i].label);
            k = load(m, uri, P11C_WANT_PRIVATE);
            ASSERT_RV(p11c_key_derive(k, ppt, ppt_len, NULL, &n1, &err), CKR_OK);
            CU_ASSERT_EQUAL(n1, cs[i].flen);
            n1 = sizeof(s1);
            ASSERT_RV(p11c_key_derive(k, ppt, ppt_len, s1, &n1, &err), CKR_OK);
            CU_ASSERT_EQUAL(secrets(), 0);
            EVP_PKEY_CTX *d = EVP_PKEY_CTX_new(peer, NULL);
            CU_ASSERT_TRUE(d != NULL && EVP_PKEY_derive_init(d) == 1 &&
                           EVP_PKEY_derive_set_peer(d, sw) == 1 &&
                           EVP_PKEY_derive(d, s2, &n2) == 1);
            CU_ASSERT_TRUE(n1 == n2 && memcmp(s1, s2, n1) == 0);
            EVP_PKEY_CTX_free(d);
            /* a short buffer, a bad peer, a peer point of another size */
            n1 = cs[i].flen - 1;
            ASSERT_RV(p11c_key_derive(k, ppt, ppt_len, s1, &n1, &err), CKR_BUFFER_TOO_SMALL);
            CU_ASSERT_EQUAL(secrets(), 0);
            n1 = sizeof(s1);
            ASSERT_RV(p11c_key_derive(k, ppt, ppt_len - 1, s1, &n1, &err), CKR_ARGUMENTS_BAD);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "not an uncompressed point of the key's"));
            ppt[0] = 0x02;
            ASSERT_RV(p11c_key_derive(k, ppt, ppt_len, s1, &n1, &err), CKR_ARGUMENTS_BAD);
            p11c_key_free(k);
            EVP_PKEY_free(peer);
        }
        snprintf(uri, sizeof(uri), TH_TOKEN_URI ";object=%s", cs[i].label);
        k = load(m, uri, P11C_WANT_ANY);
        ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
        p11c_key_free(k);
        EVP_PKEY_free(sw);
    }
    p11c_module_free(m);
}

/* CKA_EC_POINT as raw bytes (some tokens store it so) loads like the
 * DER-wrapped form; a point of neither form is no key. */
static void test_raw_point(void)
{
    P11C_MODULE *m = th_module(1);
    EVP_PKEY *sw = sw_key("P-256");
    uint8_t pt[65], bad[66];
    size_t ptlen = sizeof(pt);
    static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL no = CK_FALSE;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(th_token(m)); /* SoftHSM2 initialised by the module */
    CU_ASSERT_EQUAL(
        EVP_PKEY_get_octet_string_param(sw, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &ptlen), 1);
    if (raw == NULL)
        raw = th_raw(&slot);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    CU_ASSERT_EQUAL_FATAL(
        raw->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    memcpy(bad, pt, sizeof(pt));
    bad[65] = 0;
    for (int form = 0; form < 2; form++) {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, &cls, sizeof(cls)},
            {CKA_KEY_TYPE, &kt, sizeof(kt)},
            {CKA_TOKEN, &no, sizeof(no)},
            {CKA_LABEL, form == 0 ? "rawpoint" : "badpoint", 8},
            {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
            {CKA_EC_POINT, form == 0 ? pt : bad, form == 0 ? 65 : 66},
        };
        CU_ASSERT_EQUAL(raw->C_CreateObject(s, a, 6, &h), CKR_OK);
    }
    k = load(m, TH_TOKEN_URI ";object=rawpoint;type=public", P11C_WANT_PUBLIC);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    const uint8_t *kp;
    size_t kplen;
    p11c_key_ec_point(k, &kp, &kplen);
    CU_ASSERT_TRUE(kplen == 65 && memcmp(kp, pt, 65) == 0);
    p11c_key_free(k);
    k = NULL;
    ASSERT_RV(
        p11c_key_load(m, TH_TOKEN_URI ";object=badpoint;type=public", P11C_WANT_PUBLIC, &k, &err),
        P11C_CKR_NOT_RSA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "not a key of a kind p11chat uses"));
    raw->C_CloseSession(s);
    EVP_PKEY_free(sw);
    p11c_module_free(m);
}

/* Generated in the token: persistent keys stay, ephemeral ones go with
 * the key; both sign. Unknown curves and bad imports are refused. */
static void test_generate(void)
{
    static const char *curves[] = {"P-256", "P-384", "Ed25519", "Ed448"};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;

    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        char label[32], uri[128];
        for (int persistent = 0; persistent < 2; persistent++) {
            snprintf(label, sizeof(label), "gen-%zu-%d", i, persistent);
            ASSERT_RV(p11c_key_generate_ec(t, curves[i], label, NULL, 0, persistent, &k, &err),
                      CKR_OK);
            CU_ASSERT_PTR_NOT_NULL_FATAL(k);
            CU_ASSERT_STRING_EQUAL(p11c_key_curve(k), curves[i]);
            CU_ASSERT_EQUAL(p11c_key_is_ephemeral(k), !persistent);
            const uint8_t *kp;
            size_t kplen;
            p11c_key_ec_point(k, &kp, &kplen);
            EVP_PKEY *pub = NULL;
            if (i < 2) {
                OSSL_PARAM ps[3] = {
                    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curves[i],
                                                     0),
                    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)kp, kplen),
                    OSSL_PARAM_construct_end(),
                };
                EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                CU_ASSERT_TRUE(EVP_PKEY_fromdata_init(c) == 1 &&
                               EVP_PKEY_fromdata(c, &pub, EVP_PKEY_PUBLIC_KEY, ps) == 1);
                EVP_PKEY_CTX_free(c);
            } else {
                pub = EVP_PKEY_new_raw_public_key_ex(NULL, i == 2 ? "ED25519" : "ED448", NULL, kp,
                                                     kplen);
            }
            CU_ASSERT_PTR_NOT_NULL(pub);
            CU_ASSERT_TRUE(sign_ok(k, pub));
            EVP_PKEY_free(pub);
            p11c_key_free(k);
            k = NULL;
            snprintf(uri, sizeof(uri), TH_TOKEN_URI ";object=%s", label);
            CK_RV rv = p11c_key_load(m, uri, P11C_WANT_ANY, &k, &err);
            CU_ASSERT_EQUAL(rv, persistent ? CKR_OK : P11C_CKR_NO_KEY);
            if (k != NULL)
                ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
            p11c_key_free(k);
            k = NULL;
        }
    }
    ASSERT_RV(p11c_key_generate_ec(t, "secp256k1", NULL, NULL, 0, 0, &k, &err), CKR_ARGUMENTS_BAD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "curve not supported"));
    ASSERT_RV(p11c_key_import_ec(t, "P-256", NULL, 0, (const uint8_t *)"\x04", 1, NULL, NULL, 0, 0,
                                 &k, &err),
              CKR_ARGUMENTS_BAD);
    /* ECDH with an RSA key */
    P11C_KEY *alice = load(m, TH_TOKEN_URI ";object=alice", P11C_WANT_ANY);
    uint8_t buf[66], peer[65] = {0x04};
    size_t n = sizeof(buf);
    ASSERT_RV(p11c_key_derive(alice, peer, sizeof(peer), buf, &n, &err), CKR_KEY_TYPE_INCONSISTENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "ECDH needs an EC key"));
    CU_ASSERT_PTR_NULL(p11c_key_curve(alice));
    p11c_key_free(alice);
    p11c_module_free(m);
}

/* A key on a curve p11chat does not use is named as such. */
static void test_other_curve(void)
{
    P11C_MODULE *m = th_module(1);
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    char *out = NULL;
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module '%s' --token-label %s --login --pin 1234 --keypairgen "
             "--key-type EC:secp256k1 --label k1 --id 61",
             tu_softhsm_module(), TU_TOKEN_LABEL);
    if (th_sh(&out, cmd) != 0) {
        printf("\n(skipped: pkcs11-tool made no secp256k1 key)\n");
        free(out);
        p11c_module_free(m);
        return;
    }
    free(out);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=k1", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NOT_RSA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "not a key of a kind p11chat uses (RSA; EC on P-256"));
    p11c_module_free(m);
}

int main(void)
{
    tu_token_make("pkcs11_ec", 1);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_ec", NULL, NULL);
    CU_add_test(s, "import, load by URI, sign, derive", test_import_load_use);
    CU_add_test(s, "CKA_EC_POINT raw or wrapped", test_raw_point);
    CU_add_test(s, "generate persistent and ephemeral", test_generate);
    CU_add_test(s, "a curve p11chat does not use", test_other_curve);
    int rc = tu_main();
    if (raw != NULL)
        p11_kit_module_release(raw);
    return rc;
}
