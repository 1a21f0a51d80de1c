/*
 * The provider through EVP and OSSL_STORE in a fresh library context:
 * configuration (file, both orders, environment), keys from pkcs11-tool and
 * from EVP_PKEY_keygen, threads, fork, every error the user can meet, the
 * private key refused, and the exit ordering.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "p11c_pkcs11.h"
#include "ptu.h"

static const char *self_path;

static const unsigned char msg[] = "p11chat provider test message";

/* Signs msg with `key` (PSS SHA-256, salt 32, like the protocol) and
 * verifies with the default provider in a context without ours. */
static int sign_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq, int pss)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_LIB_CTX *plain = OSSL_LIB_CTX_new();
    EVP_PKEY *pub = NULL;
    unsigned char sig[1024], *der = NULL;
    const unsigned char *p;
    size_t siglen = sizeof(sig);
    int derlen, ok = 0;

    if (m == NULL || plain == NULL ||
        EVP_DigestSignInit_ex(m, &pctx, "SHA256", libctx, propq, key, NULL) != 1)
        goto end;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
                EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1))
        goto end;
    if (EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1)
        goto end;
    /* the public key, through our encoder, read back by the default provider */
    derlen = i2d_PUBKEY(key, &der);
    p = der;
    if (derlen <= 0 || (pub = d2i_PUBKEY_ex(NULL, &p, derlen, plain, NULL)) == NULL)
        goto end;
    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    if (m == NULL || EVP_DigestVerifyInit_ex(m, &pctx, "SHA256", plain, NULL, pub, NULL) != 1)
        goto end;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
        goto end;
    ok = EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1;
end:
    OPENSSL_free(der);
    EVP_PKEY_free(pub);
    EVP_MD_CTX_free(m);
    OSSL_LIB_CTX_free(plain);
    return ok;
}

static void test_config_orders(void)
{
    for (int which = 0; which < 2; which++) {
        OSSL_LIB_CTX *libctx = ptu_libctx(which);
        EVP_PKEY *alice;
        CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
        alice = tu_store_load(libctx, PTU_ALICE, 0);
        CU_ASSERT_PTR_NOT_NULL(alice);
        if (alice != NULL) {
            CU_ASSERT_TRUE(EVP_PKEY_is_a(alice, "RSA"));
            CU_ASSERT_EQUAL(EVP_PKEY_get_bits(alice), 2048);
            CU_ASSERT_EQUAL(EVP_PKEY_get_security_bits(alice), 112);
            CU_ASSERT_EQUAL(EVP_PKEY_get_size(alice), 256);
            CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1));
            CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 0));
            CU_ASSERT_TRUE(sign_verify(libctx, alice, P11CHAT_PROVIDER_PROPQ, 1));
        }
        EVP_PKEY_free(alice);
        ptu_libctx_free(libctx);
    }
}

static void test_env_config(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx_env();
    EVP_PKEY *bob;

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    bob = tu_store_load(libctx, PTU_BOB, 0);
    CU_ASSERT_PTR_NOT_NULL(bob);
    if (bob != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, bob, NULL, 1));
    EVP_PKEY_free(bob);
    ptu_libctx_free(libctx);
}

/* Public components and public-only export; the private half never leaves. */
static void test_export(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char *der = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bn_param(alice, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_get_bn_param(alice, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    CU_ASSERT_EQUAL(BN_num_bits(n), 2048);
    CU_ASSERT_TRUE(BN_is_word(e, 65537));
    CU_ASSERT_EQUAL(EVP_PKEY_todata(alice, EVP_PKEY_PUBLIC_KEY, &params), 1);
    CU_ASSERT_PTR_NOT_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N));
    CU_ASSERT_PTR_NULL(OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_D));
    OSSL_PARAM_free(params);
    params = NULL;
    ERR_clear_error();
    CU_ASSERT_EQUAL(EVP_PKEY_todata(alice, EVP_PKEY_KEYPAIR, &params), 0);
    CU_ASSERT_PTR_NULL(params);
    CU_ASSERT_TRUE(ptu_error_has("private key not exportable"));
    CU_ASSERT_TRUE(i2d_PrivateKey(alice, &der) <= 0);
    CU_ASSERT_PTR_NULL(der);
    ERR_clear_error();
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
}

static int count_lines(const char *out, const char *what)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static char *list_objects(void)
{
    char *out = NULL;
    tu_run(&out,
           "pkcs11-tool --module '%s' --token-label p11chat-test --login --pin 1234 "
           "--list-objects",
           tu_softhsm_module());
    return out;
}

/* EVP_PKEY_keygen in the token: persistent with label and id (visible to
 * pkcs11-tool), and ephemeral by default (gone when freed). */
static void test_keygen(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    EVP_PKEY_CTX *g;
    EVP_PKEY *key = NULL, *again;
    OSSL_PARAM params[4];
    char label[] = "gen-carol", idhex[] = "c0ffee";
    size_t bits = 2048;
    char *before, *after;

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_LABEL, label, 0);
    params[1] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_ID, idhex, 0);
    params[2] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
    params[3] = OSSL_PARAM_construct_end();
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    CU_ASSERT_TRUE(sign_verify(libctx, key, NULL, 1));
    EVP_PKEY_free(key);
    key = NULL;
    /* the same label again is refused: no key is ever lost */
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_keygen(g, &key) <= 0);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_TRUE(ptu_error_has("P11C_KEY_EXISTS"));
    EVP_PKEY_CTX_free(g);

    after = list_objects();
    CU_ASSERT_PTR_NOT_NULL(strstr(after, "gen-carol"));
    CU_ASSERT_PTR_NOT_NULL(strstr(after, "c0ffee"));
    /* and it loads back by URI */
    again = tu_store_load(libctx, "pkcs11:token=p11chat-test;object=gen-carol;id=%c0%ff%ee", 0);
    CU_ASSERT_PTR_NOT_NULL(again);
    if (again != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, again, NULL, 0));
    EVP_PKEY_free(again);

    /* ephemeral: no label, a session object that dies with the key */
    before = after;
    g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    key = NULL;
    CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
    CU_ASSERT_PTR_NOT_NULL(key);
    if (key != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, key, NULL, 1));
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(g);
    after = list_objects();
    CU_ASSERT_EQUAL(count_lines(before, "Private Key Object"),
                    count_lines(after, "Private Key Object"));
    free(before);
    free(after);

    /* bad parameters */
    g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    bits = 1024;
    params[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
    params[1] = OSSL_PARAM_construct_end();
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_params(g, params) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("2048, 3072 or 4096"));
    EVP_PKEY_CTX_free(g);
    ptu_libctx_free(libctx);
}

/* OAEP (SHA-1) of msg to key's public half, decrypted by key: 1 on success. */
static int oaep_roundtrip(OSSL_LIB_CTX *libctx, EVP_PKEY *key)
{
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(libctx, key, P11CHAT_PROVIDER_PROPQ);
    unsigned char ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    int ok;

    ok = e != NULL && d != NULL && EVP_PKEY_encrypt_init(e) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_encrypt(e, ct, &ctlen, msg, sizeof(msg)) == 1 && EVP_PKEY_decrypt_init(d) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_decrypt(d, pt, &ptlen, ct, ctlen) == 1 && ptlen == sizeof(msg) &&
         memcmp(pt, msg, sizeof(msg)) == 0;
    EVP_PKEY_CTX_free(e);
    EVP_PKEY_CTX_free(d);
    return ok;
}

/* usage: a persistent key made through the provider signs and decrypts by
 * default (a TLS 1.2 server with RSA key exchange needs both); usage=sign,
 * what p11chat keygen asks for, makes one that never decrypts; any other
 * word is refused. */
static void test_keygen_usage(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    static const struct {
        const char *label, *usage;
        int decrypts;
    } cases[] = {{"use-any", NULL, 1}, {"use-sign", "sign", 0}};
    char bogus[] = "encrypt";
    OSSL_PARAM params[3];

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
        EVP_PKEY *key = NULL;
        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        params[0] =
            OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_LABEL, (char *)cases[i].label, 0);
        params[1] = cases[i].usage != NULL
                        ? OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_USAGE,
                                                           (char *)cases[i].usage, 0)
                        : OSSL_PARAM_construct_end();
        params[2] = OSSL_PARAM_construct_end();
        CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(key);
        CU_ASSERT_TRUE(sign_verify(libctx, key, NULL, 1));
        ERR_clear_error();
        CU_ASSERT_EQUAL(oaep_roundtrip(libctx, key), cases[i].decrypts);
        EVP_PKEY_free(key);
        EVP_PKEY_CTX_free(g);
    }

    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_USAGE, bogus, 0);
    params[1] = OSSL_PARAM_construct_end();
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_params(g, params) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("usage must be sign, decrypt (RSA), derive (EC) or any"));
    EVP_PKEY_CTX_free(g);
    ptu_libctx_free(libctx);
}

/* Signs msg with key (through whichever provider holds it), verifies with
 * the key's public half exported to the default provider: 1 on success. */
static int ec_sign_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *md)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    unsigned char *der = NULL, sig[256];
    const unsigned char *p;
    size_t siglen = sizeof(sig);
    EVP_PKEY *pub = NULL;
    int len, ok;

    ok = m != NULL && v != NULL &&
         EVP_DigestSignInit_ex(m, NULL, md, libctx, NULL, key, NULL) == 1 &&
         EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1;
    len = ok ? i2d_PUBKEY(key, &der) : -1;
    p = der;
    ok = ok && len > 0 && (pub = d2i_PUBKEY_ex(NULL, &p, len, NULL, "provider=default")) != NULL &&
         EVP_DigestVerifyInit_ex(v, NULL, md, NULL, "provider=default", pub, NULL) == 1 &&
         EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) == 1;
    OPENSSL_free(der);
    EVP_PKEY_free(pub);
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(v);
    return ok;
}

/* The same for EC keys: usage=sign never derives (CKA_DERIVE false),
 * usage=derive (and decrypt, its RSA word) never signs; an Edwards key that
 * derives is refused with the reason. Session keys: nothing stays. */
static int ecdh_ok(OSSL_LIB_CTX *libctx, EVP_PKEY *key)
{
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    unsigned char z[32];
    size_t zlen = sizeof(z);
    int ok = peer != NULL && d != NULL && EVP_PKEY_derive_init(d) == 1 &&
             EVP_PKEY_derive_set_peer(d, peer) == 1 && EVP_PKEY_derive(d, z, &zlen) == 1 &&
             zlen == 32;

    EVP_PKEY_CTX_free(d);
    EVP_PKEY_free(peer);
    ERR_clear_error();
    return ok;
}

static void test_keygen_usage_ec(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    static const struct {
        const char *alg, *usage;
        int signs, derives;
    } cases[] = {{"EC", "any", 1, 1},        {"EC", "sign", 1, 0},
                 {"EC", "derive", 0, 1},     {"EC", "decrypt", 0, 1},
                 {"ED25519", "sign", 1, -1}, {"ED25519", "derive", -1, -1}};
    char no[] = "no", p256[] = "P-256";

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, cases[i].alg, P11CHAT_PROVIDER_PROPQ);
        EVP_PKEY *key = NULL;
        OSSL_PARAM params[4];
        size_t n = 0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        if (strcmp(cases[i].alg, "EC") == 0)
            params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, p256, 0);
        params[n++] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, no, 0);
        params[n++] =
            OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_USAGE, (char *)cases[i].usage, 0);
        params[n] = OSSL_PARAM_construct_end();
        CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
        ERR_clear_error();
        if (cases[i].signs < 0) {
            CU_ASSERT_TRUE(EVP_PKEY_keygen(g, &key) <= 0);
            CU_ASSERT_PTR_NULL(key);
            CU_ASSERT_TRUE(ptu_error_has("Edwards keys only sign"));
        } else {
            CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(key);
            CU_ASSERT_EQUAL(
                ec_sign_verify(libctx, key, strcmp(cases[i].alg, "EC") == 0 ? "SHA256" : NULL),
                cases[i].signs);
            ERR_clear_error();
            if (cases[i].derives >= 0)
                CU_ASSERT_EQUAL(ecdh_ok(libctx, key), cases[i].derives);
        }
        EVP_PKEY_free(key);
        EVP_PKEY_CTX_free(g);
    }
    ptu_libctx_free(libctx);
}

/* EC and Edwards keys made in the token, persistent and ephemeral, sign and
 * (EC) derive; an ephemeral key's objects go with the key. */
static void test_keygen_ec(void)
{
    static const struct {
        const char *alg, *group, *md;
    } kinds[] = {{"EC", "P-384", "SHA384"},
                 {"EC", "prime256v1", "SHA256"},
                 {"ED25519", NULL, NULL},
                 {"ED448", NULL, NULL}};
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    char label[32], no[] = "no";

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            EVP_PKEY_CTX *g =
                EVP_PKEY_CTX_new_from_name(libctx, kinds[i].alg, P11CHAT_PROVIDER_PROPQ);
            OSSL_PARAM params[3];
            EVP_PKEY *key = NULL;
            char *before = list_objects(), *after;
            size_t n = 0;

            snprintf(label, sizeof(label), "gen-ec-%zu", i);
            if (kinds[i].group != NULL)
                params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                               (char *)kinds[i].group, 0);
            params[n++] =
                persistent ? OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_LABEL, label, 0)
                           : OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, no, 0);
            params[n] = OSSL_PARAM_construct_end();
            CU_ASSERT_PTR_NOT_NULL_FATAL(g);
            CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
            CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
            CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(key);
            CU_ASSERT_TRUE(EVP_PKEY_is_a(key, kinds[i].alg));
            CU_ASSERT_TRUE(ec_sign_verify(libctx, key, kinds[i].md));
            if (kinds[i].group != NULL) {
                /* ECDH in the token with a default-provider peer */
                EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kinds[i].group);
                EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
                unsigned char s[66];
                size_t slen = sizeof(s);
                CU_ASSERT_TRUE(d != NULL && EVP_PKEY_derive_init(d) == 1 &&
                               EVP_PKEY_derive_set_peer(d, peer) == 1 &&
                               EVP_PKEY_derive(d, s, &slen) == 1);
                CU_ASSERT_EQUAL(slen, i == 0 ? 48 : 32);
                EVP_PKEY_CTX_free(d);
                EVP_PKEY_free(peer);
            }
            EVP_PKEY_free(key);
            EVP_PKEY_CTX_free(g);
            after = list_objects();
            CU_ASSERT_EQUAL(count_lines(after, "Private Key Object") -
                                count_lines(before, "Private Key Object"),
                            persistent);
            CU_ASSERT_EQUAL(strstr(after, label) != NULL, persistent);
            free(before);
            free(after);
        }
    }
    ptu_libctx_free(libctx);
    /* the persistent ones go, so that later tests find the token as made */
    P11C_MODULE *m = NULL;
    P11C_ERR err;
    memset(&err, 0, sizeof(err));
    CU_ASSERT_EQUAL_FATAL(p11c_module_load(tu_softhsm_module(), &m, &err), CKR_OK);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char uri[128];
        P11C_KEY *k = NULL;
        snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test;object=gen-ec-%zu?pin-value=1234", i);
        CU_ASSERT_EQUAL(p11c_key_load(m, uri, P11C_WANT_ANY, &k, &err), CKR_OK);
        CU_ASSERT_EQUAL(p11c_key_destroy(k, &err), CKR_OK);
        p11c_key_free(k);
    }
    p11c_module_free(m);
}

/* A signature over msg with SHA-256, checked by the default provider. */
static int verify_sha256(EVP_PKEY *pub, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    int ok = v != NULL &&
             EVP_DigestVerifyInit_ex(v, NULL, "SHA256", NULL, "provider=default", pub, NULL) == 1 &&
             EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) == 1;

    EVP_MD_CTX_free(v);
    return ok;
}

/* The token's r||s becomes DER written by hand: every shape of INTEGER must
 * come out canonical (as i2d_ECDSA_SIG writes it) and verify. Over 2 000
 * signatures, r or s has a leading zero byte with probability 1 - 2^-23,
 * and its top bit set (a zero byte added) about half the time. The same
 * context signs each time: EVP_DigestSign hashes the message afresh. */
static void test_ecdsa_der(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    EVP_PKEY_CTX *g = NULL;
    EVP_PKEY *key = NULL, *pub = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    const unsigned char *p;
    char no[] = "no";
    OSSL_PARAM params[3];
    int len, bad = 0, short_int = 0, padded = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    g = EVP_PKEY_CTX_new_from_name(libctx, "EC", P11CHAT_PROVIDER_PROPQ);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    params[1] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, no, 0);
    params[2] = OSSL_PARAM_construct_end();
    CU_ASSERT_FATAL(g != NULL && EVP_PKEY_keygen_init(g) == 1 &&
                    EVP_PKEY_CTX_set_params(g, params) == 1 && EVP_PKEY_keygen(g, &key) == 1);
    len = i2d_PUBKEY(key, &der);
    p = der;
    pub = len > 0 ? d2i_PUBKEY_ex(NULL, &p, len, NULL, "provider=default") : NULL;
    OPENSSL_free(der);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    CU_ASSERT_EQUAL_FATAL(EVP_DigestSignInit_ex(m, NULL, "SHA256", libctx, NULL, key, NULL), 1);
    for (int i = 0; i < 2000; i++) {
        unsigned char sig[80], *again = NULL;
        size_t siglen = sizeof(sig);
        const unsigned char *q = sig;
        ECDSA_SIG *es = NULL;
        const BIGNUM *r, *s;
        int ok = EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1 &&
                 (es = d2i_ECDSA_SIG(NULL, &q, (long)siglen)) != NULL && q == sig + siglen &&
                 i2d_ECDSA_SIG(es, &again) == (int)siglen && memcmp(again, sig, siglen) == 0 &&
                 verify_sha256(pub, sig, siglen);
        if (ok) {
            ECDSA_SIG_get0(es, &r, &s);
            short_int += BN_num_bytes(r) < 32 || BN_num_bytes(s) < 32;
            padded += BN_num_bits(r) == 256 || BN_num_bits(s) == 256;
        }
        bad += !ok;
        OPENSSL_free(again);
        ECDSA_SIG_free(es);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(short_int > 0);
    CU_ASSERT_TRUE(padded > 0);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(g);
    ptu_libctx_free(libctx);
}

typedef struct {
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *key;
    int ok;
} THREAD_ARG;

static void *signer(void *arg)
{
    THREAD_ARG *a = arg;
    a->ok = 1;
    for (int i = 0; i < 10; i++)
        a->ok &= sign_verify(a->libctx, a->key, NULL, i & 1);
    return NULL;
}

/* One keygen through the URI parameter; 1 on success. */
static int keygen_uri(OSSL_LIB_CTX *libctx, const char *uri, EVP_PKEY **key)
{
    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    OSSL_PARAM params[3];
    char no[] = "no";
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_URI, (char *)uri, 0);
    params[1] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, no, 0);
    params[2] = OSSL_PARAM_construct_end();
    *key = NULL;
    ok = g != NULL && EVP_PKEY_keygen_init(g) == 1 && EVP_PKEY_CTX_set_params(g, params) == 1 &&
         EVP_PKEY_keygen(g, key) == 1;
    EVP_PKEY_CTX_free(g);
    return ok;
}

/* No PIN configured: the uri parameter's pin-source logs in, as for the store. */
static void test_keygen_pin_source(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(2);
    EVP_PKEY *key = NULL;
    char uri[4400];

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test?pin-source=%s", ptu_path("pin"));
    ERR_clear_error();
    CU_ASSERT_EQUAL(keygen_uri(libctx, uri, &key), 1);
    CU_ASSERT_PTR_NOT_NULL(key);
    if (key != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, key, NULL, 1));
    EVP_PKEY_free(key);
    /* "file:" as elsewhere */
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test?pin-source=file:%s", ptu_path("pin"));
    CU_ASSERT_EQUAL(keygen_uri(libctx, uri, &key), 1);
    EVP_PKEY_free(key);
    /* an unreadable pin-source is said so, naming the file and not a PIN */
    snprintf(uri, sizeof(uri), "pkcs11:token=p11chat-test?pin-source=%s", ptu_path("no-such-pin"));
    ERR_clear_error();
    CU_ASSERT_EQUAL(keygen_uri(libctx, uri, &key), 0);
    CU_ASSERT_PTR_NULL(key);
    CU_ASSERT_TRUE(ptu_error_has("P11C_PIN_SOURCE"));
    ptu_libctx_free(libctx);
}

/* Words and digest names in parameters: one parser each for every operation. */
static void test_param_words(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    EVP_PKEY_CTX *g, *c;
    EVP_PKEY *key = NULL, *alice;
    OSSL_PARAM params[2];
    char maybe[] = "maybe", off[] = "off";

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, maybe, 0);
    params[1] = OSSL_PARAM_construct_end();
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_params(g, params) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("persistent must be yes or no"));
    /* the words the configuration takes for yes and no */
    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_PERSISTENT, off, 0);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
    CU_ASSERT_PTR_NOT_NULL(key);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(g);

    alice = tu_store_load(libctx, PTU_ALICE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(EVP_PKEY_decrypt_init(c), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "MD5", NULL) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("digest MD5 is not supported for OAEP"));
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "MD5", NULL) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("digest MD5 is not supported for OAEP"));
    EVP_PKEY_CTX_free(c);
    c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, P11CHAT_PROVIDER_PROPQ);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(EVP_PKEY_sign_init(c), 1);
    ERR_clear_error();
    CU_ASSERT_TRUE(EVP_PKEY_CTX_set_signature_md(c, EVP_md5()) <= 0);
    CU_ASSERT_TRUE(ptu_error_has("digest MD5 is not supported"));
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
}

static void test_threads(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    EVP_PKEY *bob = tu_store_load(libctx, PTU_BOB, 0);
    pthread_t th[6];
    THREAD_ARG args[6];

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bob);
    for (int i = 0; i < 6; i++) {
        args[i] = (THREAD_ARG){libctx, i % 2 ? alice : bob, 0};
        CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, signer, &args[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_TRUE(args[i].ok);
    }
    EVP_PKEY_free(alice);
    EVP_PKEY_free(bob);
    ptu_libctx_free(libctx);
}

/* The forked child: signs with PSS (and PKCS#1 v1.5 too when `both`), then
 * frees what it inherited, as a well-behaved program's child does. */
static int fork_child(OSSL_LIB_CTX *libctx, EVP_PKEY *key, int both)
{
    int ok = sign_verify(libctx, key, NULL, 1) && (!both || sign_verify(libctx, key, NULL, 0));

    EVP_PKEY_free(key);
    ptu_libctx_free(libctx);
    return ok ? 0 : 3;
}

/* A key loaded before fork() signs in the child (PIN from the configuration). */
static void test_fork(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    int status = -1;
    pid_t pid;

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1));
    pid = fork();
    if (pid == 0)
        _exit(fork_child(libctx, alice, 1));
    CU_ASSERT_TRUE_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
    /* the parent goes on */
    CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1));
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);

    /* the PIN from the URI instead; the child is the first to sign */
    {
        char uri[4400];
        libctx = ptu_libctx(2);
        snprintf(uri, sizeof(uri), "%s?pin-source=file:%s", PTU_BOB, ptu_path("pin"));
        alice = tu_store_load(libctx, uri, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
        pid = fork();
        if (pid == 0)
            _exit(fork_child(libctx, alice, 0));
        CU_ASSERT_TRUE_FATAL(pid > 0);
        CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
        CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 0));
        EVP_PKEY_free(alice);
        ptu_libctx_free(libctx);
    }
}

/* Only keys live here: asking for certificates finds nothing, quietly. */
static void test_store_expect(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    OSSL_STORE_CTX *st;
    EVP_PKEY *kept = NULL;
    int n = 0;

    st =
        OSSL_STORE_open_ex("pkcs11:token=p11chat-test", libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(OSSL_STORE_expect(st, OSSL_STORE_INFO_CERT), 1);
    CU_ASSERT_EQUAL(OSSL_STORE_supports_search(st, OSSL_STORE_SEARCH_BY_NAME), 0);
    while (!OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        n++;
        OSSL_STORE_INFO_free(info);
    }
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(OSSL_STORE_close(st), 1);
    /* and with no expectation: both key pairs, as private keys */
    st =
        OSSL_STORE_open_ex("pkcs11:token=p11chat-test", libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    while (!OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        CU_ASSERT_EQUAL(OSSL_STORE_INFO_get_type(info), OSSL_STORE_INFO_PKEY);
        if (kept == NULL)
            kept = OSSL_STORE_INFO_get1_PKEY(info);
        n++;
        OSSL_STORE_INFO_free(info);
    }
    CU_ASSERT_TRUE(n >= 2);
    OSSL_STORE_close(st);
    /* an enumerated key outlives the enumeration and the store (each holds
     * its own reference to the token key) */
    CU_ASSERT_PTR_NOT_NULL(kept);
    if (kept != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, kept, NULL, 1));
    EVP_PKEY_free(kept);
    ERR_clear_error();
    ptu_libctx_free(libctx);
}

static int sign_fails_with(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *reason)
{
    ERR_clear_error();
    if (sign_verify(libctx, key, NULL, 1))
        return 0;
    return ptu_error_has(reason);
}

static void test_errors(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(2); /* no PIN configured */
    EVP_PKEY *k;

    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    /* no such key, no such token, malformed URI */
    ERR_clear_error();
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, "pkcs11:token=p11chat-test;object=nobody", 0));
    CU_ASSERT_TRUE(ptu_error_has("P11C_NO_KEY"));
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, "pkcs11:token=elsewhere;object=alice", 0));
    CU_ASSERT_TRUE(ptu_error_has("P11C_NO_TOKEN"));
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, "pkcs11:token=p11chat-test;object=%zz", 0));
    CU_ASSERT_TRUE(ptu_error_has("P11C_URI_MALFORMED"));
    /* wrong PIN in the URI: loads (public half), signing says why not */
    k = tu_store_load(libctx, PTU_ALICE "?pin-value=9999", 0);
    CU_ASSERT_PTR_NOT_NULL(k);
    if (k != NULL)
        CU_ASSERT_TRUE(sign_fails_with(libctx, k, "CKR_PIN_INCORRECT"));
    EVP_PKEY_free(k);
    /* no PIN anywhere */
    k = tu_store_load(libctx, PTU_BOB, 0);
    CU_ASSERT_PTR_NOT_NULL(k);
    if (k != NULL)
        CU_ASSERT_TRUE(sign_fails_with(libctx, k, "P11C_NO_PIN"));
    EVP_PKEY_free(k);
    /* the public half cannot sign */
    k = tu_store_load(libctx, PTU_ALICE ";type=public", OSSL_STORE_INFO_PUBKEY);
    CU_ASSERT_PTR_NOT_NULL(k);
    if (k != NULL)
        CU_ASSERT_TRUE(sign_fails_with(libctx, k, "private"));
    EVP_PKEY_free(k);
    ptu_libctx_free(libctx);
}

/* A configuration of its own (module, PIN and fallback lines); NULL when
 * OpenSSL refuses to load it. */
static OSSL_LIB_CTX *libctx_with(const char *lines)
{
    const char *path = ptu_path("openssl-custom.cnf");
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    FILE *f = fopen(path, "w");

    if (f == NULL || libctx == NULL)
        return NULL;
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s/p11chat.so\n%s"
            "activate = 1\n",
            tu_provider_dir(), lines);
    fclose(f);
    if (!OSSL_LIB_CTX_load_config(libctx, path)) {
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    return libctx;
}

/* Bob's key signs under a configuration with the module, the PIN as a value,
 * and `more`. */
static void bob_signs_with(const char *more)
{
    char lines[4400];
    snprintf(lines, sizeof(lines), "pkcs11-module = %s\npkcs11-pin = %s\n%s", tu_softhsm_module(),
             TU_USER_PIN, more);
    OSSL_LIB_CTX *libctx = libctx_with(lines);
    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    EVP_PKEY *k = tu_store_load(libctx, PTU_BOB, 0);
    CU_ASSERT_PTR_NOT_NULL(k);
    if (k != NULL)
        CU_ASSERT_TRUE(sign_verify(libctx, k, NULL, 1));
    EVP_PKEY_free(k);
    ptu_libctx_free(libctx);
}

static void test_config_errors(void)
{
    OSSL_LIB_CTX *libctx;
    char lines[4400];

    /* a module that is not there: the provider loads, keys do not */
    libctx = libctx_with("pkcs11-module = /nonexistent/module.so\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    ERR_clear_error();
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, PTU_ALICE, 0));
    CU_ASSERT_TRUE(ptu_error_has("P11C_MODULE_LOAD"));
    ptu_libctx_free(libctx);
    /* an unreadable PIN file */
    snprintf(lines, sizeof(lines), "pkcs11-module = %s\npkcs11-pin = file:%s\n",
             tu_softhsm_module(), ptu_path("no-such-pin"));
    libctx = libctx_with(lines);
    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    ERR_clear_error();
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, PTU_ALICE, 0));
    CU_ASSERT_TRUE(ptu_error_has("P11C_PIN_SOURCE"));
    ptu_libctx_free(libctx);
    libctx = libctx_with(lines);
    CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
    ERR_clear_error();
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, PTU_ALICE, 0));
    CU_ASSERT_TRUE(ptu_error_has("no-such-pin': No such file or directory)"));
    ptu_libctx_free(libctx);
    /* the same reader as a URI's pin-source: one trailing newline (CRLF too)
     * dropped; an empty file, blank lines and stray blanks are refused with
     * what is wrong, before any PIN try is spent */
    static const char *const files[] = {"1234", "1234\n", "1234\r\n", "1234\n\n", "",
                                        "\n",   " 1234",  "1234 \n",  "\n1234",   "12\t"};
    static const char *const why[] = {
        NULL,       NULL,           NULL,           "more than one line", "is empty",
        "is empty", "space or tab", "space or tab", "more than one line", "space or tab"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = fopen(ptu_path("pin-variant"), "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(files[i], f);
        fclose(f);
        snprintf(lines, sizeof(lines), "pkcs11-module = %s\npkcs11-pin = file:%s\n",
                 tu_softhsm_module(), ptu_path("pin-variant"));
        libctx = libctx_with(lines);
        CU_ASSERT_PTR_NOT_NULL_FATAL(libctx);
        ERR_clear_error();
        EVP_PKEY *k = tu_store_load(libctx, PTU_ALICE, 0);
        if (why[i] == NULL) {
            CU_ASSERT_PTR_NOT_NULL(k);
            if (k != NULL)
                CU_ASSERT_TRUE(sign_verify(libctx, k, NULL, 1));
        } else {
            CU_ASSERT_PTR_NULL(k);
            CU_ASSERT_TRUE(ptu_error_has(why[i]));
        }
        EVP_PKEY_free(k);
        ptu_libctx_free(libctx);
    }
    remove(ptu_path("pin-variant"));
    /* the PIN as a value works too */
    bob_signs_with("");
    /* a fallback switch that means nothing: the provider refuses to start */
    ERR_clear_error();
    libctx = libctx_with("oaep-fallback = perhaps\n");
    CU_ASSERT_FALSE(OSSL_PROVIDER_available(libctx, "p11chat"));
    ptu_libctx_free(libctx);
    ERR_clear_error();
    libctx = libctx_with("pkcs11-copy-keys = sometimes\n");
    CU_ASSERT_FALSE(OSSL_PROVIDER_available(libctx, "p11chat"));
    ptu_libctx_free(libctx);
    ERR_clear_error();
    /* without session copies, keys work the same */
    bob_signs_with("pkcs11-copy-keys = no\n");
}

/* A key destroyed between load and use fails cleanly. */
static void test_deleted_key(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY_CTX *g = EVP_PKEY_CTX_new_from_name(libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    EVP_PKEY *key = NULL, *doomed;
    OSSL_PARAM params[2];
    char label[] = "doomed";
    P11C_MODULE *m = NULL;
    P11C_KEY *raw = NULL;
    P11C_ERR err;

    params[0] = OSSL_PARAM_construct_utf8_string(P11CHAT_PKEY_PARAM_LABEL, label, 0);
    params[1] = OSSL_PARAM_construct_end();
    CU_ASSERT_EQUAL(EVP_PKEY_keygen_init(g), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_params(g, params), 1);
    CU_ASSERT_EQUAL(EVP_PKEY_keygen(g, &key), 1);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(g);
    doomed = tu_store_load(libctx, "pkcs11:token=p11chat-test;object=doomed", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doomed);
    CU_ASSERT_TRUE(sign_verify(libctx, doomed, NULL, 1));

    memset(&err, 0, sizeof(err));
    CU_ASSERT_EQUAL(p11c_module_load(tu_softhsm_module(), &m, &err), CKR_OK);
    CU_ASSERT_EQUAL(p11c_key_load(m, "pkcs11:token=p11chat-test;object=doomed?pin-value=1234",
                                  P11C_WANT_ANY, &raw, &err),
                    CKR_OK);
    CU_ASSERT_EQUAL(p11c_key_destroy(raw, &err), CKR_OK);
    p11c_key_free(raw);
    p11c_module_free(m);

    ERR_clear_error();
    CU_ASSERT_FALSE(sign_verify(libctx, doomed, NULL, 1));
    CU_ASSERT_TRUE(ERR_peek_error() != 0);
    ERR_print_errors_fp(stdout);
    EVP_PKEY_free(doomed);
    ptu_libctx_free(libctx);
}

/* Decryption through the provider: OAEP SHA-1 (token) and SHA-256 (host). */
static void test_decrypt(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(1);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    static const char *mds[] = {"SHA1", "SHA256", "SHA384", "SHA512"};

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
        unsigned char ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);

        CU_ASSERT_EQUAL(EVP_PKEY_encrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, mds[i], NULL), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_encrypt(c, ct, &ctlen, msg, sizeof(msg)), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_decrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, mds[i], NULL), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen), 1);
        CU_ASSERT_EQUAL(ptlen, sizeof(msg));
        CU_ASSERT_EQUAL(memcmp(pt, msg, sizeof(msg)), 0);
        /* a buffer too small for the message fails, and writes nothing past it */
        {
            unsigned char small[12];
            size_t smalllen = 10;
            memset(small, 0xAA, sizeof(small));
            ERR_clear_error();
            CU_ASSERT_TRUE(EVP_PKEY_decrypt(c, small, &smalllen, ct, ctlen) <= 0);
            CU_ASSERT_EQUAL(small[10], 0xAA);
            CU_ASSERT_EQUAL(small[11], 0xAA);
            ERR_clear_error();
        }
        /* one flipped bit: one uniform error */
        ct[100] ^= 1;
        ptlen = sizeof(pt);
        ERR_clear_error();
        CU_ASSERT_TRUE(EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen) <= 0);
        CU_ASSERT_TRUE(ptu_error_has("RSA decryption failed"));
        EVP_PKEY_CTX_free(c);
    }
    /* PKCS#1 v1.5: decrypts; a damaged ciphertext gives the same one error */
    {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
        unsigned char ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);

        CU_ASSERT_EQUAL(EVP_PKEY_encrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_encrypt(c, ct, &ctlen, msg, sizeof(msg)), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_decrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen), 1);
        CU_ASSERT_EQUAL(ptlen, sizeof(msg));
        ct[7] ^= 0x40;
        ptlen = sizeof(pt);
        ERR_clear_error();
        CU_ASSERT_TRUE(EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen) <= 0);
        CU_ASSERT_TRUE(ptu_error_has("RSA decryption failed"));
        EVP_PKEY_CTX_free(c);
    }
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
}

/* With the fallback off, what the token refuses is refused, and says why. */
static void test_no_fallback(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(3);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    static const char *mds[] = {"SHA1", "SHA256"};

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, alice, NULL);
        unsigned char ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
        int rc;

        CU_ASSERT_EQUAL(EVP_PKEY_encrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, mds[i], NULL), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_encrypt(c, ct, &ctlen, msg, sizeof(msg)), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_decrypt_init(c), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
        CU_ASSERT_EQUAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, mds[i], NULL), 1);
        ERR_clear_error();
        rc = EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen);
        if (i == 0) {
            CU_ASSERT_EQUAL(rc, 1);
            CU_ASSERT_EQUAL(ptlen, sizeof(msg));
        } else {
            /* SoftHSM2 2.6.1 refuses SHA-256 OAEP in C_DecryptInit */
            CU_ASSERT_TRUE(rc <= 0);
            CU_ASSERT_TRUE(ptu_error_has("C_DecryptInit"));
        }
        EVP_PKEY_CTX_free(c);
    }
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
}

#ifdef P11C_FAULT_SO

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/*
 * A token that does not sign digests with CKM_RSA_PKCS_PSS: the fault module
 * in front of SoftHSM2 fails the first C_GetMechanismInfo (0x70 is
 * CKR_MECHANISM_INVALID), the provider's question about CKM_RSA_PKCS_PSS, so
 * the message goes to the token whole,
 * for CKM_SHA256_RSA_PKCS_PSS. When the token offers nothing, a clear error.
 */
static void test_hash_and_sign(void)
{
    char conf[4400], spec[4400];
    void *fault = NULL;
    unsigned long (*fired)(void) = NULL;
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *alice;
    FILE *f;

    snprintf(spec, sizeof(spec), "%s", ptu_path("fault.spec"));
    snprintf(conf, sizeof(conf), "%s", ptu_path("openssl-fault.cnf"));
    write_file(spec, "");
    setenv("P11C_FAULT_FILE", spec, 1);
    f = fopen(conf, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s/p11chat.so\n"
            "pkcs11-module = %s\npkcs11-pin = file:%s\nactivate = 1\n",
            tu_provider_dir(), P11C_FAULT_SO, ptu_path("pin"));
    fclose(f);

    /* the signing path: two PKCS#11 calls, no login, no object search */
    {
        unsigned long (*calls)(void) = NULL;
        const char *(*call_name)(unsigned long) = NULL;
        libctx = OSSL_LIB_CTX_new();
        CU_ASSERT_EQUAL_FATAL(OSSL_LIB_CTX_load_config(libctx, conf), 1);
        alice = tu_store_load(libctx, PTU_ALICE, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
        CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1)); /* warm: login, handles */
        fault = dlopen(P11C_FAULT_SO, RTLD_NOW | RTLD_NOLOAD);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fault);
        *(void **)&calls = dlsym(fault, "p11c_fault_calls");
        *(void **)&call_name = dlsym(fault, "p11c_fault_call_name");
        CU_ASSERT_PTR_NOT_NULL_FATAL(calls);
        CU_ASSERT_PTR_NOT_NULL_FATAL(call_name);
        write_file(spec, "count");
        CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1));
        CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 0));
        CU_ASSERT_EQUAL(calls(), 4);
        for (unsigned long i = 0; i < 4 && i < calls(); i++)
            CU_ASSERT_STRING_EQUAL(call_name(i), i % 2 ? "C_Sign" : "C_SignInit");
        write_file(spec, "");
        EVP_PKEY_free(alice);
        ptu_libctx_free(libctx);
        dlclose(fault);
    }

    for (int round = 0; round < 2; round++) {
        libctx = OSSL_LIB_CTX_new();
        CU_ASSERT_EQUAL_FATAL(OSSL_LIB_CTX_load_config(libctx, conf), 1);
        alice = tu_store_load(libctx, PTU_ALICE, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
        fault = dlopen(P11C_FAULT_SO, RTLD_NOW | RTLD_NOLOAD);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fault);
        *(void **)&fired = dlsym(fault, "p11c_fault_fired");
        CU_ASSERT_PTR_NOT_NULL_FATAL(fired);
        write_file(spec, round == 0 ? "C_GetMechanismInfo:1:0x70" : "C_GetMechanismInfo:1+:0x70");
        ERR_clear_error();
        if (round == 0) {
            CU_ASSERT_TRUE(sign_verify(libctx, alice, NULL, 1));
            CU_ASSERT_EQUAL(fired(), 1);
        } else {
            CU_ASSERT_FALSE(sign_verify(libctx, alice, NULL, 1));
            CU_ASSERT_TRUE(fired() >= 1);
            CU_ASSERT_TRUE(ptu_error_has("CKR_MECHANISM_INVALID"));
        }
        write_file(spec, "");
        EVP_PKEY_free(alice);
        ptu_libctx_free(libctx);
        dlclose(fault);
    }
    unsetenv("P11C_FAULT_FILE");
}
#endif

/* Child mode: load, sign, then exit with everything still alive. */
static int exit_with_live_key(int in_default_ctx)
{
    OSSL_LIB_CTX *libctx = in_default_ctx ? NULL : ptu_libctx(0);
    EVP_PKEY *alice;

    if (in_default_ctx && !OSSL_LIB_CTX_load_config(NULL, ptu_conf(1)))
        return 4;
    alice = tu_store_load(libctx, PTU_ALICE, 0);
    if (alice == NULL || !sign_verify(libctx, alice, NULL, 1))
        return 5;
    exit(0); /* alice and the context stay alive: atexit ordering is tested */
}

static void test_exit_ordering(void)
{
    for (int mode = 0; mode < 2; mode++) {
        char *out = NULL;
        int rc = tu_run(&out, "ASAN_OPTIONS=detect_leaks=0 '%s' --exit-live %d '%s'", self_path,
                        mode, ptu_dir());
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "exit-live %d: %d\n%s\n", mode, rc, out);
        free(out);
    }
}

/* Raw C_Sign against EVP_DigestSign through the provider, same key. */
static double now(void)
{
    struct timespec ts;
    /* CPU time of this thread (SoftHSM2 signs in it): a loaded machine
     * changes the wall clock far more than the work */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_speed(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0);
    P11C_MODULE *m = NULL;
    P11C_KEY *raw = NULL;
    P11C_ERR err;
    P11C_MECH mech = {CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32, NULL, 0};
    unsigned char dgst[32] = {1}, sig[256];
    size_t siglen;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const char *propqs[2] = {NULL, P11CHAT_PROVIDER_PROPQ};
    const int n = 200;
    double t0, raw_s, prov_s[2];
    int ok = 1;

    memset(&err, 0, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_EQUAL_FATAL(p11c_module_load(tu_softhsm_module(), &m, &err), CKR_OK);
    CU_ASSERT_EQUAL_FATAL(
        p11c_key_load(m, PTU_ALICE "?pin-value=1234", P11C_WANT_PRIVATE, &raw, &err), CKR_OK);
    siglen = sizeof(sig);
    ok &= p11c_key_sign(raw, &mech, dgst, 32, sig, &siglen, &err) == CKR_OK;
    /* interleaved rounds, so that a loaded machine slows all alike; the
     * provider with no property query (OpenSSL first tries the default
     * provider, which cannot take the key) and with "provider=p11chat" */
    raw_s = prov_s[0] = prov_s[1] = 0;
    for (int round = 0; round < 10; round++) {
        t0 = now();
        for (int i = 0; i < n / 10; i++) {
            siglen = sizeof(sig);
            ok &= p11c_key_sign(raw, &mech, dgst, 32, sig, &siglen, &err) == CKR_OK;
        }
        raw_s += now() - t0;
        for (int q = 0; q < 2; q++) {
            t0 = now();
            for (int i = 0; i < n / 10; i++) {
                siglen = sizeof(sig);
                ok &= EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", libctx, propqs[q], alice,
                                            NULL) == 1 &&
                      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
                      EVP_DigestSign(mctx, sig, &siglen, msg, sizeof(msg)) == 1;
            }
            prov_s[q] += now() - t0;
        }
    }
    CU_ASSERT_TRUE(ok);
    printf("\nspeed (CPU time): raw C_Sign %.0f/s; EVP_DigestSign %.0f/s (ratio %.3f), with "
           "provider=p11chat %.0f/s (ratio %.3f)\n",
           n / raw_s, n / prov_s[0], raw_s / prov_s[0], n / prov_s[1], raw_s / prov_s[1]);
    EVP_MD_CTX_free(mctx);
    p11c_key_free(raw);
    p11c_module_free(m);
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
}

/* The token disappears (its directory removed): errors, no crash. Last. */
static void test_token_gone(void)
{
    OSSL_LIB_CTX *libctx = ptu_libctx(0);
    EVP_PKEY *alice = tu_store_load(libctx, PTU_ALICE, 0), *bob;
    char *out = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(alice);
    CU_ASSERT_EQUAL(tu_run(&out, "mv '%s/tokens' '%s/tokens.gone'", ptu_dir(), ptu_dir()), 0);
    free(out);
    ERR_clear_error();
    (void)sign_verify(libctx, alice, NULL, 1); /* SoftHSM may still hold it: either way */
    ERR_clear_error();
    bob = tu_store_load(libctx, "pkcs11:token=p11chat-test;object=nobody", 0);
    CU_ASSERT_PTR_NULL(bob);
    ERR_clear_error();
    EVP_PKEY_free(alice);
    ptu_libctx_free(libctx);
    /* a fresh context on the vanished token */
    libctx = ptu_libctx(0);
    CU_ASSERT_PTR_NULL(tu_store_load(libctx, PTU_ALICE, 0));
    CU_ASSERT_TRUE(ptu_error_has("C_Initialize: CKR_GENERAL_ERROR"));
    ptu_libctx_free(libctx);
    CU_ASSERT_EQUAL(tu_run(NULL, "mv '%s/tokens.gone' '%s/tokens'", ptu_dir(), ptu_dir()), 0);
}

int main(int argc, char **argv)
{
    CU_pSuite s;

    self_path = argv[0];
    /* SoftHSM2 stays mapped after the provider finalises it, so that
     * LeakSanitizer can name it in the stacks of its own small leaks (one
     * per EdDSA signature) and the suppression of tests/common/lsan.supp
     * applies. */
    (void)dlopen(tu_softhsm_module(), RTLD_LAZY | RTLD_LOCAL);
    if (argc == 4 && strcmp(argv[1], "--exit-live") == 0) {
        /* the parent's token and configuration files */
        ptu_use_dir(argv[3]);
        return exit_with_live_key(atoi(argv[2]));
    }
    ptu_setup("provider", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider", NULL, NULL);
    CU_add_test(s, "configuration file, both provider orders", test_config_orders);
    CU_add_test(s, "configuration from the environment", test_env_config);
    CU_add_test(s, "public export only", test_export);
    CU_add_test(s, "key generation in the token", test_keygen);
    CU_add_test(s, "key generation: usage sign, decrypt or both", test_keygen_usage);
    CU_add_test(s, "EC and EdDSA key generation in the token", test_keygen_ec);
    CU_add_test(s, "EC key generation: usage sign, derive or both", test_keygen_usage_ec);
    CU_add_test(s, "ECDSA signatures: DER of every shape, context signing again", test_ecdsa_der);
    CU_add_test(s, "key generation, PIN from the URI's pin-source", test_keygen_pin_source);
    CU_add_test(s, "words and digest names in parameters", test_param_words);
    CU_add_test(s, "threads", test_threads);
    CU_add_test(s, "fork", test_fork);
    CU_add_test(s, "store expectations", test_store_expect);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "configuration errors", test_config_errors);
    CU_add_test(s, "key deleted between load and use", test_deleted_key);
    CU_add_test(s, "decryption", test_decrypt);
    CU_add_test(s, "OAEP fallback off", test_no_fallback);
#ifdef P11C_FAULT_SO
    CU_add_test(s, "hash-and-sign mechanisms", test_hash_and_sign);
#endif
    CU_add_test(s, "exit with live keys", test_exit_ordering);
    CU_add_test(s, "speed", test_speed);
    CU_add_test(s, "token disappears", test_token_gone);
    return tu_main();
}
