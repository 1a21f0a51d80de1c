/*
 * Many threads at once: signing and decrypting with token keys through the
 * provider, loading keys, and running P11C sessions (software and token
 * keys) in one process. Built in the ThreadSanitizer tree
 * (-DP11CHAT_TSAN=ON) it shows the absence of data races; in the other trees
 * it checks that every result is still correct under contention.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "p11chat.h"

#define THREADS 8
#define ROUNDS  12

static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *prov_default, *prov_p11;
static EVP_PKEY *tok_alice, *tok_bob, *pub_alice, *sw_alice, *sw_bob, *fixed_s;
static P11C_KEYPOOL *pool;

static int sign_verify(EVP_PKEY *key, EVP_PKEY *pub, int round)
{
    unsigned char msg[32], sig[512];
    size_t siglen = sizeof(sig);
    memset(msg, round, sizeof(msg));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, "SHA256", libctx, NULL, key, NULL) &&
             EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    ok = ok && md != NULL &&
         EVP_DigestVerifyInit_ex(md, NULL, "SHA256", libctx, "provider=default", pub, NULL) &&
         EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static int encrypt_decrypt(EVP_PKEY *key, EVP_PKEY *pub, int round)
{
    unsigned char pt[48], ct[512], out[512];
    size_t ctlen = sizeof(ct), outlen = sizeof(out);
    memset(pt, round + 1, sizeof(pt));
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(libctx, pub, "provider=default");
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(libctx, key, NULL);
    int ok = e != NULL && d != NULL && EVP_PKEY_encrypt_init(e) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_encrypt(e, ct, &ctlen, pt, sizeof(pt)) == 1 &&
             EVP_PKEY_decrypt_init(d) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_decrypt(d, out, &outlen, ct, ctlen) == 1 && outlen == sizeof(pt) &&
             memcmp(out, pt, outlen) == 0;
    EVP_PKEY_CTX_free(e);
    EVP_PKEY_CTX_free(d);
    return ok;
}

static void *token_worker(void *arg)
{
    long id = (long)arg;
    long ok = 1;
    for (int r = 0; r < ROUNDS && ok; r++) {
        ok = sign_verify(tok_alice, pub_alice, r) && encrypt_decrypt(tok_alice, pub_alice, r);
        if (ok && (id + r) % 4 == 0) { /* loads race with use */
            EVP_PKEY *k =
                tu_store_load(libctx, "pkcs11:token=p11chat-test;object=bob;type=private", 0);
            ok = k != NULL && EVP_PKEY_get_bits(k) == 2048;
            EVP_PKEY_free(k);
        }
    }
    if (!ok)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
    return (void *)ok;
}

static p11c_err pump(P11C_SESSION *from, P11C_SESSION *to)
{
    uint8_t *m;
    size_t n;
    p11c_err e = P11C_OK;
    while (e == P11C_OK && p11c_session_pop_output(from, &m, &n)) {
        e = p11c_session_recv(to, m, n);
        OPENSSL_free(m);
    }
    return e;
}

static EVP_PKEY *fixed_session_key(void *arg)
{
    (void)arg;
    return EVP_PKEY_dup(fixed_s);
}

/* Session keys from one pool shared by every thread, or a fixed one. */
static int one_session(EVP_PKEY *ka, EVP_PKEY *kb, int round, int pooled)
{
    P11C_CONFIG ca, cb;
    memset(&ca, 0, sizeof(ca));
    ca.libctx = libctx;
    ca.role = P11C_INITIATOR;
    ca.key = ka;
    ca.identity = "Alice";
    ca.session_key_fn = pooled ? p11c_keypool_take : fixed_session_key;
    ca.session_key_arg = pool;
    cb = ca;
    cb.role = P11C_RESPONDER;
    cb.key = kb;
    cb.identity = "Bob";
    p11c_err err;
    P11C_SESSION *a = p11c_session_new(&ca, &err), *b = p11c_session_new(&cb, &err);
    int got = 0;
    uint8_t msg[16];
    memset(msg, round, sizeof(msg));
    if (a != NULL && b != NULL && p11c_session_start(a) == P11C_OK && pump(a, b) == P11C_OK &&
        pump(b, a) == P11C_OK && pump(a, b) == P11C_OK && pump(b, a) == P11C_OK &&
        p11c_session_send_data(a, msg, sizeof(msg)) == P11C_OK && pump(a, b) == P11C_OK &&
        p11c_session_send_close(b, NULL) == P11C_OK && pump(b, a) == P11C_OK) {
        P11C_EVENT ev;
        while (p11c_session_next_event(b, &ev)) {
            if (ev.type == P11C_EV_DATA && ev.len == sizeof(msg) &&
                memcmp(ev.data, msg, sizeof(msg)) == 0)
                got = 1;
            p11c_event_clear(&ev);
        }
    }
    p11c_session_free(a);
    p11c_session_free(b);
    return got;
}

static void *session_worker(void *arg)
{
    long id = (long)arg;
    long ok = 1;
    for (int r = 0; r < ROUNDS / 2 && ok; r++)
        ok = one_session(id % 2 ? tok_alice : sw_alice, id % 3 ? sw_bob : tok_bob, r, id % 4 == 0);
    ERR_clear_error();
    return (void *)ok;
}

static void run_threads(void *(*fn)(void *))
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, fn, (void *)i), 0);
    for (long i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        CU_ASSERT_EQUAL(ret, (void *)1L);
    }
}

static void test_token_threads(void)
{
    run_threads(token_worker);
}

static void test_session_threads(void)
{
    run_threads(session_worker);
}

static EVP_PKEY *pem_key(json_t *keys, const char *name)
{
    const char *pem = tu_json_str(json_object_get(keys, name), "private_pkcs8_pem");
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, libctx, "provider=default");
    BIO_free(b);
    return k;
}

static int suite_init(void)
{
    tu_token_make("concurrency", 1);
    setenv("P11CHAT_PKCS11_MODULE", tu_softhsm_module(), 1);
    setenv("P11CHAT_PKCS11_PIN", TU_USER_PIN, 1);
    libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER_set_default_search_path(libctx, tu_provider_dir());
    prov_default = OSSL_PROVIDER_load(libctx, "default");
    prov_p11 = OSSL_PROVIDER_load(libctx, "p11chat");
    if (prov_default == NULL || prov_p11 == NULL)
        return 1;
    tok_alice = tu_store_load(libctx, "pkcs11:token=p11chat-test;object=alice;type=private", 0);
    tok_bob = tu_store_load(libctx, "pkcs11:token=p11chat-test;object=bob;type=private", 0);
    if (tok_alice == NULL || tok_bob == NULL)
        return 1;
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(tok_alice, &der);
    const unsigned char *p = der;
    pub_alice = len > 0 ? d2i_PUBKEY_ex(NULL, &p, len, libctx, "provider=default") : NULL;
    OPENSSL_free(der);
    json_t *root = tu_vector_load("protocol/keys.json");
    json_t *keys = json_object_get(root, "keys");
    sw_alice = pem_key(keys, "alice");
    sw_bob = pem_key(keys, "bob");
    fixed_s = pem_key(keys, "session");
    json_decref(root);
    pool = p11c_keypool_new(libctx, NULL, 2, NULL);
    return pub_alice == NULL || sw_alice == NULL || sw_bob == NULL || fixed_s == NULL ||
           pool == NULL;
}

static int suite_clean(void)
{
    EVP_PKEY_free(tok_alice);
    EVP_PKEY_free(tok_bob);
    EVP_PKEY_free(pub_alice);
    EVP_PKEY_free(sw_alice);
    EVP_PKEY_free(sw_bob);
    EVP_PKEY_free(fixed_s);
    p11c_keypool_free(pool);
    OSSL_PROVIDER_unload(prov_p11);
    OSSL_PROVIDER_unload(prov_default);
    OSSL_LIB_CTX_free(libctx);
    return 0;
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("concurrency", suite_init, suite_clean);
    CU_add_test(s, "threads signing, decrypting, loading token keys", test_token_threads);
    CU_add_test(s, "threads running sessions, software and token keys", test_session_threads);
    return tu_main();
}
