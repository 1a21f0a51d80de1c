/*
 * The protocol with keys in a SoftHSM2 token, used through the p11chat
 * provider: the keys.json keys imported into the token, the vectors run with
 * them, and complete handshakes with token keys and token session keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/store.h>

#include "p11c_internal.h"
#include "p11c_pkcs11.h"
#include "ptest.h"

#define URI_PRIV "pkcs11:token=" TU_TOKEN_LABEL ";object=%s;type=private?pin-value=" TU_USER_PIN

static OSSL_LIB_CTX *libctx;
static char tokdir[4096];

static uint8_t *bn_bytes(const EVP_PKEY *k, const char *name, size_t *len)
{
    BIGNUM *bn = NULL;
    uint8_t *b;

    if (!EVP_PKEY_get_bn_param(k, name, &bn))
        return NULL;
    *len = (size_t)BN_num_bytes(bn);
    b = OPENSSL_malloc(*len);
    BN_bn2bin(bn, b);
    BN_free(bn);
    return b;
}

/* Imports keys.json `name` into the token as a token object labelled `name`. */
static int import_key(P11C_TOKEN *t, const char *name, uint8_t id)
{
    EVP_PKEY *k = pt_key(NULL, name);
    P11C_RSA_PARTS parts;
    P11C_KEY *key = NULL;
    P11C_ERR err;
    uint8_t *bufs[8];
    static const char *names[8] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                   OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                   OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    size_t lens[8];
    CK_RV rv;
    char msg[512];

    for (int i = 0; i < 8; i++)
        bufs[i] = bn_bytes(k, names[i], &lens[i]);
    parts.n = bufs[0], parts.nlen = lens[0];
    parts.e = bufs[1], parts.elen = lens[1];
    parts.d = bufs[2], parts.dlen = lens[2];
    parts.p = bufs[3], parts.plen = lens[3];
    parts.q = bufs[4], parts.qlen = lens[4];
    parts.dp = bufs[5], parts.dplen = lens[5];
    parts.dq = bufs[6], parts.dqlen = lens[6];
    parts.qinv = bufs[7], parts.qinvlen = lens[7];
    rv = p11c_key_import(t, &parts, name, &id, 1, 1, &key, &err);
    if (rv != CKR_OK)
        fprintf(stderr, "import %s: %s\n", name, p11c_err_string(&err, msg, sizeof(msg)));
    p11c_key_free(key);
    for (int i = 0; i < 8; i++)
        OPENSSL_clear_free(bufs[i], lens[i]);
    EVP_PKEY_free(k);
    return rv == CKR_OK;
}

static int suite_init(void)
{
    P11C_MODULE *m = NULL;
    P11C_TOKEN *t = NULL;
    P11C_ERR err;
    char path[4400];
    FILE *f;
    int ok = 0;

    snprintf(tokdir, sizeof(tokdir), "%s", tu_token_make("protocol_token", 0));
    if (p11c_module_load(tu_softhsm_module(), &m, &err) != CKR_OK ||
        p11c_token_find(m, "pkcs11:token=" TU_TOKEN_LABEL, &t, &err) != CKR_OK ||
        p11c_token_login(t, TU_USER_PIN, &err) != CKR_OK)
        goto end;
    if (!import_key(t, "alice", 0x11) || !import_key(t, "bob", 0x12) ||
        !import_key(t, "session", 0x13) || !import_key(t, "carol3072", 0x14))
        goto end;
    snprintf(path, sizeof(path), "%s/openssl-protocol.cnf", tokdir);
    f = fopen(path, "w");
    if (f == NULL)
        goto end;
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n"
            "[p11chat_sect]\nmodule = %s/p11chat.so\npkcs11-module = %s\n"
            "pkcs11-pin = file:%s/pin\npkcs11-token = pkcs11:token=%s\n"
            "oaep-fallback = yes\nactivate = 1\n",
            tu_provider_dir(), tu_softhsm_module(), tokdir, TU_TOKEN_LABEL);
    fclose(f);
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, path)) {
        ERR_print_errors_fp(stderr);
        goto end;
    }
    ok = 1;
end:
    p11c_module_free(m);
    return ok ? 0 : 1;
}

static int suite_clean(void)
{
    OSSL_LIB_CTX_free(libctx);
    libctx = NULL;
    return 0;
}

/* A token key through OSSL_STORE, as any OpenSSL application would load it. */
static EVP_PKEY *token_key(const char *name)
{
    char uri[512];

    snprintf(uri, sizeof(uri), URI_PRIV, name);
    EVP_PKEY *k = tu_store_load(libctx, uri, OSSL_STORE_INFO_PKEY);
    if (k == NULL)
        ERR_print_errors_fp(stderr);
    CU_ASSERT_FATAL(k != NULL);
    return k;
}

static EVP_PKEY *token_session_key(void *arg)
{
    (void)arg;
    return token_key("session");
}

static void test_token_fingerprints(void)
{
    json_t *j = tu_vector_load("protocol/fingerprint.json"), *t;
    size_t i;

    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        size_t dl, fl, gl = 0;
        uint8_t *der = tu_json_hex(t, "public_pkcs1_der", &dl);
        uint8_t *fp = tu_json_hex(t, "sha256", &fl), *got = NULL, f[32];
        EVP_PKEY *k = token_key(tu_json_str(t, "key"));

        CU_ASSERT_EQUAL(p11c_pub_der(k, &got, &gl), P11C_OK);
        CU_ASSERT(gl == dl && memcmp(got, der, dl) == 0);
        CU_ASSERT_EQUAL(p11c_fingerprint(libctx, NULL, k, f), P11C_OK);
        CU_ASSERT(memcmp(f, fp, 32) == 0);
        OPENSSL_free(got);
        EVP_PKEY_free(k);
        free(der);
        free(fp);
    }
    json_decref(j);
}

/* PSS with salt 32 across the boundary: token signs, software verifies, and back. */
static void test_token_pss_and_oaep(void)
{
    EVP_PKEY *tk = token_key("alice"), *sk = pt_key(libctx, "alice");
    EVP_PKEY *ts = token_key("session"), *ss = pt_key(libctx, "session");
    static const uint8_t msg[] = "P11C to be signed";
    uint8_t *sig = NULL, *ct = NULL, sec[64], out[64];
    size_t siglen = 0, ctlen = 0;

    CU_ASSERT_EQUAL(p11c_pss_sign(libctx, NULL, tk, msg, sizeof(msg), &sig, &siglen), P11C_OK);
    CU_ASSERT_EQUAL(p11c_pss_verify(libctx, NULL, sk, msg, sizeof(msg), sig, siglen), P11C_OK);
    CU_ASSERT_EQUAL(p11c_pss_verify(libctx, NULL, tk, msg, sizeof(msg), sig, siglen), P11C_OK);
    OPENSSL_free(sig);
    CU_ASSERT_EQUAL(p11c_pss_sign(libctx, NULL, sk, msg, sizeof(msg), &sig, &siglen), P11C_OK);
    CU_ASSERT_EQUAL(p11c_pss_verify(libctx, NULL, tk, msg, sizeof(msg), sig, siglen), P11C_OK);
    sig[10] ^= 1;
    CU_ASSERT_EQUAL(p11c_pss_verify(libctx, NULL, tk, msg, sizeof(msg), sig, siglen),
                    P11C_ERR_SIGNATURE);
    OPENSSL_free(sig);
    memset(sec, 0x5a, sizeof(sec));
    CU_ASSERT_EQUAL(p11c_oaep_encrypt(libctx, NULL, ss, sec, 64, &ct, &ctlen), P11C_OK);
    CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(libctx, NULL, ts, ct, ctlen, out), P11C_OK);
    CU_ASSERT(memcmp(out, sec, 64) == 0);
    ct[0] ^= 0x40;
    CU_ASSERT_EQUAL(p11c_oaep_decrypt_sec(libctx, NULL, ts, ct, ctlen, out), P11C_ERR_SECRET);
    OPENSSL_free(ct);
    EVP_PKEY_free(tk);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ts);
    EVP_PKEY_free(ss);
}

static void test_token_hello_reject(void)
{
    json_t *j = tu_vector_load("protocol/hello_reject.json"), *t;
    EVP_PKEY *kb = token_key("bob"), *ka = pt_key(libctx, "alice");
    P11C_TRUST *trust = p11c_trust_new();
    uint8_t fa[32];
    size_t i, accepted = 0, rejected = 0;

    p11c_fingerprint(libctx, NULL, ka, fa);
    p11c_trust_add(trust, "Alice", fa);
    json_array_foreach(json_object_get(j, "tests"), i, t)
    {
        P11C_CONFIG c = {0};
        P11C_SESSION *s;
        size_t hl, ol;
        uint8_t *hello = tu_json_hex(t, "hello", &hl), *out;
        int accept = json_is_true(json_object_get(t, "accept"));
        p11c_err e;

        c.role = P11C_RESPONDER;
        c.libctx = libctx;
        c.key = kb;
        c.identity = "Bob";
        c.trust = trust;
        s = p11c_session_new(&c, NULL);
        CU_ASSERT_FATAL(s != NULL);
        e = p11c_session_recv(s, hello, hl);
        out = pt_pop(s, &ol);
        if (accept && e == P11C_OK && out != NULL)
            accepted++; /* REPLY signed in the token */
        if (!accept && e != P11C_OK && e != P11C_ERR_CRYPTO && out == NULL)
            rejected++;
        OPENSSL_free(out);
        p11c_session_free(s);
        free(hello);
    }
    CU_ASSERT_EQUAL(accepted, 1);
    CU_ASSERT_EQUAL(rejected, 22);
    p11c_trust_free(trust);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    json_decref(j);
}

static uint8_t *field(const uint8_t *msg, size_t len, size_t skip, int idx, size_t *flen)
{
    P11C_RCUR c;
    const uint8_t *f = NULL;

    p11c_rcur_init(&c, msg + skip, len - skip);
    for (int i = 0; i <= idx; i++)
        CU_ASSERT_FATAL(p11c_rcur_vec(&c, 8192, &f, flen) == P11C_OK);
    return OPENSSL_memdup(f, *flen);
}

/* handshake.json in both roles with token keys (and S in the token for Alice). */
static void test_token_recorded_handshake(void)
{
    json_t *j = tu_vector_load("protocol/handshake.json");
    size_t hl, rl, cl, fl, sl, n;
    uint8_t *hello = tu_json_hex(j, "hello", &hl), *reply = tu_json_hex(j, "reply", &rl);
    uint8_t *confirm = tu_json_hex(j, "confirm", &cl), *finish = tu_json_hex(j, "finish", &fl);
    uint8_t *sec = tu_json_hex(j, "sec", &sl), *out;
    P11C_TEST_HOOKS ha = {0}, hb = {0};
    EVP_PKEY *ka = token_key("alice"), *kb = token_key("bob");
    P11C_TRUST *ta = p11c_trust_new(), *tb = p11c_trust_new();
    uint8_t fa[32], fb[32];
    P11C_CONFIG c = {0};
    P11C_SESSION *s;
    PT_EVENTS ev = {0};

    uint8_t *sig_a = field(hello, hl, 3, 3, &ha.sig_a_len);
    uint8_t *sig_c = field(confirm, cl, 2, 0, &ha.sig_c_len);
    uint8_t *sig_b = field(reply, rl, 2, 3, &hb.sig_b_len);
    uint8_t *enc = field(reply, rl, 2, 1, &hb.enc_sec_len);
    ha.sig_a = sig_a;
    ha.sig_c = sig_c;
    hb.sig_b = sig_b;
    hb.enc_sec = enc;
    hb.sec = sec;
    p11c_fingerprint(libctx, NULL, ka, fa);
    p11c_fingerprint(libctx, NULL, kb, fb);
    p11c_trust_add(ta, "Bob", fb);
    p11c_trust_add(tb, "Alice", fa);

    /* Alice: the token session key decrypts the recorded EncSec (OAEP-SHA256). */
    c.role = P11C_INITIATOR;
    c.libctx = libctx;
    c.key = ka;
    c.identity = "Alice";
    c.trust = ta;
    c.session_key_fn = token_session_key;
    s = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(s != NULL);
    p11c_session_set_test_hooks(s, &ha);
    pt_step(s, NULL, 0, hello, hl);
    pt_step(s, reply, rl, confirm, cl);
    CU_ASSERT_EQUAL(p11c_session_recv(s, finish, fl), P11C_OK);
    pt_drain(s, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ESTABLISHED &&
              strcmp(ev.ev[0].short_fp, "9f22:694b:a719:04f1") == 0);
    pt_events_clear(&ev);
    p11c_session_free(s);

    /* Bob with his token key. */
    c.role = P11C_RESPONDER;
    c.key = kb;
    c.identity = "Bob";
    c.trust = tb;
    s = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(s != NULL);
    p11c_session_set_test_hooks(s, &hb);
    pt_step(s, hello, hl, reply, rl);
    pt_step(s, confirm, cl, finish, fl);
    pt_drain(s, &ev);
    CU_ASSERT(ev.n == 1 && ev.ev[0].type == P11C_EV_ESTABLISHED &&
              strcmp(ev.ev[0].short_fp, "0856:e264:f021:50cc") == 0);
    pt_events_clear(&ev);
    p11c_session_free(s);

    /* Without hooks: Alice signs in the token and still accepts the recorded REPLY. */
    c.role = P11C_INITIATOR;
    c.key = ka;
    c.identity = "Alice";
    c.trust = ta;
    s = p11c_session_new(&c, NULL);
    CU_ASSERT_EQUAL(p11c_session_start(s), P11C_OK);
    out = pt_pop(s, &n);
    OPENSSL_free(out);
    CU_ASSERT_EQUAL(p11c_session_recv(s, reply, rl), P11C_OK);
    out = pt_pop(s, &n);
    CU_ASSERT(out != NULL && out[1] == P11C_MSG_CONFIRM);
    OPENSSL_free(out);
    p11c_session_free(s);

    OPENSSL_free(sig_a);
    OPENSSL_free(sig_b);
    OPENSSL_free(sig_c);
    OPENSSL_free(enc);
    free(hello);
    free(reply);
    free(confirm);
    free(finish);
    free(sec);
    p11c_trust_free(ta);
    p11c_trust_free(tb);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    json_decref(j);
}

/* A full handshake and a message each way. */
static void run_pair(EVP_PKEY *ka, EVP_PKEY *kb, const char *sk_propq, P11C_KEYPOOL *pool)
{
    PT_PAIR p;
    P11C_CONFIG c = {0};
    static const uint8_t hi[] = "hi from the token side";

    pt_pair_init(&p, libctx, P11C_POLICY_STRICT, ka, kb);
    p11c_session_free(p.a);
    c.role = P11C_INITIATOR;
    c.libctx = libctx;
    c.key = p.ka;
    c.identity = "Alice";
    c.trust = p.ta;
    c.known_only = 1;
    c.session_key_propq = sk_propq;
    if (pool != NULL) {
        c.session_key_fn = p11c_keypool_take;
        c.session_key_arg = pool;
    }
    p.a = p11c_session_new(&c, NULL);
    CU_ASSERT_FATAL(p.a != NULL);
    if (!pt_pair_handshake(&p)) {
        fprintf(stderr, "handshake: alice %s, bob %s\n", p11c_strerror(p11c_session_error(p.a)),
                p11c_strerror(p11c_session_error(p.b)));
        ERR_print_errors_fp(stderr);
    }
    CU_ASSERT_FATAL(p11c_session_established(p.a) && p11c_session_established(p.b));
    CU_ASSERT_EQUAL(p11c_session_send_data(p.a, hi, sizeof(hi)), P11C_OK);
    CU_ASSERT_EQUAL(p11c_session_send_data(p.b, hi, sizeof(hi)), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.a, p.b), P11C_OK);
    CU_ASSERT_EQUAL(pt_deliver(p.b, p.a), P11C_OK);
    pt_events_clear(&p.ea);
    pt_events_clear(&p.eb);
    pt_drain(p.a, &p.ea);
    pt_drain(p.b, &p.eb);
    CU_ASSERT(p.ea.n == 1 && p.ea.ev[0].type == P11C_EV_DATA && p.ea.ev[0].len == sizeof(hi));
    CU_ASSERT(p.eb.n == 1 && p.eb.ev[0].type == P11C_EV_DATA && p.eb.ev[0].len == sizeof(hi));
    pt_pair_free(&p);
}

static void test_handshake_token_keys(void)
{
    run_pair(token_key("alice"), token_key("bob"), NULL, NULL);
}

static void test_handshake_token_and_software(void)
{
    run_pair(token_key("alice"), pt_key(libctx, "bob"), NULL, NULL);
    run_pair(pt_key(libctx, "alice"), token_key("carol3072"), NULL, NULL);
}

static void test_handshake_session_key_in_token(void)
{
    run_pair(token_key("alice"), token_key("bob"), "provider=p11chat", NULL);
    run_pair(pt_key(libctx, "alice"), pt_key(libctx, "bob"), "provider=p11chat", NULL);
}

static void test_handshake_token_pool(void)
{
    p11c_err err;
    P11C_KEYPOOL *pool = p11c_keypool_new(libctx, "provider=p11chat", 2, &err);

    CU_ASSERT_FATAL(pool != NULL);
    run_pair(token_key("alice"), token_key("bob"), NULL, pool);
    run_pair(token_key("alice"), token_key("bob"), NULL, pool);
    p11c_keypool_free(pool);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite("protocol_token", suite_init, suite_clean);
    CU_add_test(s, "fingerprint.json with token keys", test_token_fingerprints);
    CU_add_test(s, "PSS and OAEP between token and software", test_token_pss_and_oaep);
    CU_add_test(s, "hello_reject.json, Bob's key in the token", test_token_hello_reject);
    CU_add_test(s, "handshake.json in both roles with token keys", test_token_recorded_handshake);
    CU_add_test(s, "handshake: both keys in the token", test_handshake_token_keys);
    CU_add_test(s, "handshake: one token key, one software key", test_handshake_token_and_software);
    CU_add_test(s, "handshake: session key made in the token", test_handshake_session_key_in_token);
    CU_add_test(s, "handshake: session keys from a token pool", test_handshake_token_pool);
    return tu_main();
}
