/* pkcs11/: keys on a private SoftHSM2 token: loading, PINs, sign, decrypt,
 * generate, import, destroy, threads, fork, the session bound. */
#include "helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <p11-kit/p11-kit.h>

static const char *tokdir;
static char errbuf[512];

#define ASSERT_RV(expr, want)                                                                      \
    do {                                                                                           \
        CK_RV rv_ = (expr);                                                                        \
        if (rv_ != (CK_RV)(want))                                                                  \
            fprintf(stderr, "\n%s:%d: %s, expected %s (%s)\n", __FILE__, __LINE__,                 \
                    p11c_rv_name(rv_), p11c_rv_name(want),                                         \
                    p11c_err_string(&err, errbuf, sizeof(errbuf)));                                \
        CU_ASSERT_EQUAL(rv_, (CK_RV)(want));                                                       \
    } while (0)

#define ALICE TH_TOKEN_URI ";object=alice"

static P11C_KEY *load(P11C_MODULE *m, const char *uri, p11c_want want)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    ASSERT_RV(p11c_key_load(m, uri, want, &k, &err), CKR_OK);
    return k;
}

static int pkcs11_tool(char **out, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "pkcs11-tool --module '%s' --token-label %s %s", tu_softhsm_module(),
             TU_TOKEN_LABEL, args);
    return th_sh(out, cmd);
}

/* ---- Loading -------------------------------------------------------------- */

static void test_load_public_no_login(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0); /* no PIN anywhere */
    P11C_KEY *k = load(m, ALICE, P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    size_t idlen;
    const uint8_t *id = p11c_key_id(k, &idlen);
    CU_ASSERT_EQUAL(idlen, 1);
    CU_ASSERT_EQUAL(id[0], 0x01);
    CU_ASSERT_STRING_EQUAL(p11c_key_label(k), "alice");
    CU_ASSERT_EQUAL(p11c_key_bits(k), 2048);
    CU_ASSERT_FALSE(p11c_key_is_ephemeral(k));
    CU_ASSERT_PTR_EQUAL(p11c_key_token(k), th_token(m));
    const uint8_t *n, *e;
    size_t nlen, elen;
    p11c_key_public(k, &n, &nlen, &e, &elen);
    CU_ASSERT_EQUAL(nlen, 256);
    CU_ASSERT_EQUAL(elen, 3);
    CU_ASSERT(e[0] == 1 && e[1] == 0 && e[2] == 1);
    /* no PIN known and no private handle yet: 0, without trying to log in */
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 0);
    /* the load logged nobody in: signing needs a PIN it does not have */
    uint8_t sig[256], dgst[32] = {1};
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {.type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .salt_len = 32};
    ASSERT_RV(p11c_key_sign(k, &mech, dgst, sizeof(dgst), sig, &siglen, &err), P11C_CKR_NO_PIN);
    CU_ASSERT_STRING_EQUAL(err.func, "C_Login");
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', key 'alice'");
    /* a module PIN given later is used on first use, and then cached */
    CU_ASSERT_EQUAL(p11c_module_set_pin(m, TU_USER_PIN), CKR_OK);
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 1);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

static void test_load_by_id_and_types(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, TH_TOKEN_URI ";id=%02", P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(p11c_key_label(k), "bob");
    p11c_key_free(k);

    /* type=public: the public half only, even with a PIN */
    k = load(m, ALICE ";type=public", P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 0);
    uint8_t sig[256], dgst[32] = {1};
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {.type = CKM_RSA_PKCS};
    ASSERT_RV(p11c_key_sign(k, &mech, dgst, sizeof(dgst), sig, &siglen, &err), P11C_CKR_NO_PRIVATE);
    p11c_key_free(k);

    /* type=private, and the caller asking for the private half */
    k = load(m, ALICE ";type=private", P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(p11c_key_bits(k), 2048);
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 1);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    k = load(m, ALICE, P11C_WANT_PRIVATE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* found up-front: signing calls no C_FindObjects and no C_Login; the
     * first also makes the key's session copy (C_CopyObject, on an idle
     * session of the pool that the keeper keeps) */
    unsigned long calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 3);
    calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 2); /* C_SignInit, C_Sign */
    calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 2);
    p11c_key_free(k);

    /* type=public but the private half needed */
    k = (P11C_KEY *)m;
    ASSERT_RV(p11c_key_load(m, ALICE ";type=public", P11C_WANT_PRIVATE, &k, &err), P11C_CKR_NO_KEY);
    CU_ASSERT_PTR_NULL(k);
    /* the public half only, found without login */
    k = load(m, ALICE, P11C_WANT_PUBLIC);
    CU_ASSERT_PTR_NOT_NULL(k);
    p11c_key_free(k);
    p11c_module_free(m);
}

static void test_load_errors(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = NULL;

    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=nobody", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NO_KEY);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', object 'nobody': no such key");
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=nobody;type=private", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NO_KEY);
    CU_ASSERT_STRING_EQUAL(err.what,
                           "token 'p11chat-test', object 'nobody', type private: no such key");
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";id=%ff%ee", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NO_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "id ffee"));
    /* token absent */
    ASSERT_RV(p11c_key_load(m, "pkcs11:token=absent;object=alice", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NO_TOKEN);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'absent', object 'alice': no such token");
    /* every key of the token: alice and bob are two different keys */
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI, P11C_WANT_ANY, &k, &err), P11C_CKR_KEY_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(k);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";type=private", P11C_WANT_ANY, &k, &err),
              P11C_CKR_KEY_AMBIGUOUS);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', type private: different keys match");
    ASSERT_RV(p11c_key_load(NULL, ALICE, P11C_WANT_ANY, &k, &err), CKR_ARGUMENTS_BAD);
    ASSERT_RV(p11c_key_load(m, ALICE, P11C_WANT_ANY, NULL, &err), CKR_ARGUMENTS_BAD);
    /* without a P11C_ERR too */
    CU_ASSERT_EQUAL(p11c_key_load(m, TH_TOKEN_URI ";object=nobody", P11C_WANT_ANY, &k, NULL),
                    P11C_CKR_NO_KEY);
    p11c_module_free(m);

    /* no public object and no PIN: private keys are not searched */
    m = th_module(0);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=nobody", P11C_WANT_ANY, &k, &err),
              P11C_CKR_NO_KEY);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', object 'nobody': no public key "
                                     "object, and no PIN to look for private ones");
    ASSERT_RV(p11c_key_load(m, ALICE ";type=private", P11C_WANT_ANY, &k, &err), P11C_CKR_NO_PIN);
    CU_ASSERT_STRING_EQUAL(err.func, "C_Login");
    p11c_module_free(m);
}

static void test_pins(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(0);
    P11C_KEY *k = NULL;
    char uri[4200], path[4096];

    /* wrong PIN: the token's own answer; the PIN appears nowhere */
    ASSERT_RV(p11c_key_load(m, ALICE ";type=private?pin-value=9876", P11C_WANT_ANY, &k, &err),
              CKR_PIN_INCORRECT);
    CU_ASSERT_STRING_EQUAL(err.func, "C_Login");
    CU_ASSERT_PTR_NULL(strstr(err.what, "9876"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "object 'alice'"));
    CU_ASSERT_PTR_NULL(k);
    p11c_module_free(m);

    /* pin-value */
    m = th_module(0);
    k = load(m, ALICE ";type=private?pin-value=1234", P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL(k);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);

    /* pin-source: a path, "file:" and "file://" forms, a trailing newline */
    snprintf(path, sizeof(path), "%s/pin.nl", tokdir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("1234\n", f);
    fclose(f);
    const char *prefix[] = {"", "file:", "file://", ""};
    const char *name[] = {"pin", "pin", "pin", "pin.nl"};
    for (size_t i = 0; i < 4; i++) {
        char src[4100];
        snprintf(src, sizeof(src), "%s%s/%s", prefix[i], tokdir, name[i]);
        snprintf(uri, sizeof(uri), "%s;type=private?pin-source=%s", ALICE, src);
        m = th_module(0);
        k = load(m, uri, P11C_WANT_ANY);
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k != NULL)
            CU_ASSERT(th_sign_ok(k, &err));
        p11c_key_free(k);
        p11c_module_free(m);
    }

    /* pin-source missing, or a command */
    m = th_module(1);
    snprintf(uri, sizeof(uri), "%s?pin-source=%s/no-such-pin", ALICE, tokdir);
    ASSERT_RV(p11c_key_load(m, uri, P11C_WANT_ANY, &k, &err), P11C_CKR_PIN_SOURCE);
    CU_ASSERT_STRING_EQUAL(err.func, "pin-source");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "No such file or directory"));
    ASSERT_RV(p11c_key_load(m, ALICE "?pin-source=%7ccat%20pin", P11C_WANT_ANY, &k, &err),
              P11C_CKR_PIN_SOURCE);
    CU_ASSERT_PTR_NULL(k);
    p11c_module_free(m);

    /* a PIN file longer than any PIN */
    snprintf(path, sizeof(path), "%s/pin.long", tokdir);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 300; i++)
        fputc('1', f);
    fclose(f);
    m = th_module(0);
    snprintf(uri, sizeof(uri), "%s?pin-source=%s", ALICE, path);
    ASSERT_RV(p11c_key_load(m, uri, P11C_WANT_ANY, &k, &err), P11C_CKR_PIN_SOURCE);
    p11c_module_free(m);

    /* the module PIN */
    m = th_module(1);
    k = load(m, ALICE ";type=private", P11C_WANT_ANY);
    CU_ASSERT(k != NULL && th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

struct collected {
    P11C_KEY *keys[16];
    int n;
};

static void collect(P11C_KEY *k, void *arg)
{
    struct collected *c = arg;
    if (c->n < 16)
        c->keys[c->n++] = p11c_key_up_ref(k);
}

static void collected_free(struct collected *c)
{
    for (int i = 0; i < c->n; i++)
        p11c_key_free(c->keys[i]);
    c->n = 0;
}

static int collected_has(const struct collected *c, const char *label)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(p11c_key_label(c->keys[i]), label) == 0)
            return 1;
    return 0;
}

static void test_enum(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    struct collected c = {0};

    /* with a PIN both halves of alice and of bob are seen: still two keys */
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";id=%01", collect, &c, &err), CKR_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT(c.n == 1 && p11c_key_has_private(c.keys[0]) == 1);
    CU_ASSERT(c.n == 1 && th_sign_ok(c.keys[0], &err));
    collected_free(&c);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";object=bob", collect, &c, &err), CKR_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    collected_free(&c);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";object=nobody", collect, &c, &err), CKR_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";type=cert", collect, &c, &err), CKR_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    ASSERT_RV(p11c_key_enum(m, "pkcs11:token=absent", collect, &c, &err), CKR_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    ASSERT_RV(p11c_key_enum(m, "pkcs11:id=%zz", collect, &c, &err), P11C_CKR_URI_MALFORMED);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";object=alice;type=public", collect, &c, &err),
              CKR_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT(c.n == 1 && p11c_key_has_private(c.keys[0]) == 0);
    collected_free(&c);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";object=alice;type=private", collect, &c, &err),
              CKR_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT(c.n == 1 && p11c_key_has_private(c.keys[0]) == 1);
    collected_free(&c);
    p11c_module_free(m);

    /* without a PIN: the public objects, private halves found on use */
    m = th_module(0);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI, collect, &c, &err), CKR_OK);
    CU_ASSERT(c.n >= 2);
    CU_ASSERT(collected_has(&c, "alice"));
    CU_ASSERT(collected_has(&c, "bob"));
    collected_free(&c);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI ";object=alice?pin-value=1234", collect, &c, &err),
              CKR_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT(c.n == 1 && th_sign_ok(c.keys[0], &err));
    collected_free(&c);
    p11c_module_free(m);
    m = th_module(0);
    ASSERT_RV(p11c_key_enum(m, TH_TOKEN_URI "?pin-value=0000", collect, &c, &err),
              CKR_PIN_INCORRECT);
    CU_ASSERT_EQUAL(c.n, 0);
    collected_free(&c);
    p11c_module_free(m);
}

/* ---- Sign ----------------------------------------------------------------- */

static void test_sign_pss(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, ALICE, P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    const struct {
        const EVP_MD *(*md)(void);
        CK_MECHANISM_TYPE hash;
        CK_RSA_PKCS_MGF_TYPE mgf;
    } hashes[] = {
        {EVP_sha1, CKM_SHA_1, CKG_MGF1_SHA1},
        {EVP_sha256, CKM_SHA256, CKG_MGF1_SHA256},
        {EVP_sha384, CKM_SHA384, CKG_MGF1_SHA384},
        {EVP_sha512, CKM_SHA512, CKG_MGF1_SHA512},
    };
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
        const EVP_MD *md = hashes[i].md();
        size_t hl = (size_t)EVP_MD_get_size(md);
        size_t salts[] = {0, 20, hl, 256 - hl - 2};
        uint8_t dgst[64];
        unsigned int dl = 0;
        EVP_Digest("hello", 5, dgst, &dl, md, NULL);
        for (size_t j = 0; j < 4; j++) {
            uint8_t sig[256];
            size_t siglen = sizeof(sig);
            P11C_MECH mech = {.type = CKM_RSA_PKCS_PSS,
                              .hash = hashes[i].hash,
                              .mgf = hashes[i].mgf,
                              .salt_len = salts[j]};
            ASSERT_RV(p11c_key_sign(k, &mech, dgst, dl, sig, &siglen, &err), CKR_OK);
            CU_ASSERT_EQUAL(siglen, 256);
            CU_ASSERT(th_verify(k, md, 1, (int)salts[j], dgst, dl, sig, siglen));
            /* the MGF follows the hash when left out */
            mech.mgf = 0;
            siglen = sizeof(sig);
            ASSERT_RV(p11c_key_sign(k, &mech, dgst, dl, sig, &siglen, &err), CKR_OK);
            CU_ASSERT(th_verify(k, md, 1, (int)salts[j], dgst, dl, sig, siglen));
            /* a wrong salt length does not verify */
            CU_ASSERT_FALSE(th_verify(k, md, 1, (int)salts[j] + 1, dgst, dl, sig, siglen));
        }
    }
    /* the salt too long for the key: the token's refusal */
    {
        uint8_t dgst[32] = {0}, sig[256];
        size_t siglen = sizeof(sig);
        P11C_MECH mech = {.type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .salt_len = 223};
        CU_ASSERT_NOT_EQUAL(p11c_key_sign(k, &mech, dgst, 32, sig, &siglen, &err), CKR_OK);
        /* and the next signature is fine (the session was not spoilt) */
        CU_ASSERT(th_sign_ok(k, &err));
    }
    p11c_key_free(k);
    p11c_module_free(m);
}

static void test_sign_other(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, TH_TOKEN_URI ";object=bob", P11C_WANT_ANY);
    uint8_t sig[256], dgst[32];
    size_t siglen;
    unsigned int dl;
    const char *msg = "a message to sign";
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    EVP_Digest(msg, strlen(msg), dgst, &dl, EVP_sha256(), NULL);

    /* hash-and-sign PSS over the message */
    P11C_MECH pss = {.type = CKM_SHA256_RSA_PKCS_PSS, .salt_len = 32};
    siglen = sizeof(sig);
    ASSERT_RV(p11c_key_sign(k, &pss, (const uint8_t *)msg, strlen(msg), sig, &siglen, &err),
              CKR_OK);
    CU_ASSERT(th_verify(k, EVP_sha256(), 1, 32, dgst, dl, sig, siglen));
    pss.type = CKM_SHA384_RSA_PKCS_PSS;
    pss.salt_len = 48;
    siglen = sizeof(sig);
    ASSERT_RV(p11c_key_sign(k, &pss, (const uint8_t *)msg, strlen(msg), sig, &siglen, &err),
              CKR_OK);
    {
        uint8_t d384[48];
        unsigned int l384;
        EVP_Digest(msg, strlen(msg), d384, &l384, EVP_sha384(), NULL);
        CU_ASSERT(th_verify(k, EVP_sha384(), 1, 48, d384, l384, sig, siglen));
    }

    /* PKCS#1 v1.5 over a DigestInfo */
    static const uint8_t prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t di[sizeof(prefix) + 32];
    memcpy(di, prefix, sizeof(prefix));
    memcpy(di + sizeof(prefix), dgst, 32);
    P11C_MECH v15 = {.type = CKM_RSA_PKCS};
    siglen = sizeof(sig);
    ASSERT_RV(p11c_key_sign(k, &v15, di, sizeof(di), sig, &siglen, &err), CKR_OK);
    CU_ASSERT(th_verify(k, EVP_sha256(), 0, 0, dgst, dl, sig, siglen));
    /* hash-and-sign PKCS#1 v1.5 */
    v15.type = CKM_SHA256_RSA_PKCS;
    siglen = sizeof(sig);
    ASSERT_RV(p11c_key_sign(k, &v15, (const uint8_t *)msg, strlen(msg), sig, &siglen, &err),
              CKR_OK);
    CU_ASSERT(th_verify(k, EVP_sha256(), 0, 0, dgst, dl, sig, siglen));

    /* the size-query convention */
    siglen = 0;
    ASSERT_RV(p11c_key_sign(k, &v15, dgst, 32, NULL, &siglen, &err), CKR_OK);
    CU_ASSERT_EQUAL(siglen, 256);
    siglen = 100;
    ASSERT_RV(p11c_key_sign(k, &v15, dgst, 32, sig, &siglen, &err), CKR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(siglen, 256);

    /* bare PSS with no hash is never sent to the token */
    P11C_MECH nohash = {.type = CKM_RSA_PKCS_PSS, .salt_len = 32};
    unsigned long calls = p11c_module_call_count(m);
    siglen = sizeof(sig);
    ASSERT_RV(p11c_key_sign(k, &nohash, dgst, 32, sig, &siglen, &err), CKR_MECHANISM_PARAM_INVALID);
    CU_ASSERT_EQUAL(p11c_module_call_count(m), calls);
    /* a mechanism the token does not sign with */
    P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1};
    siglen = sizeof(sig);
    CU_ASSERT_NOT_EQUAL(p11c_key_sign(k, &oaep, dgst, 32, sig, &siglen, &err), CKR_OK);
    CU_ASSERT_STRING_EQUAL(err.func, "C_SignInit");
    CU_ASSERT(th_sign_ok(k, &err));
    ASSERT_RV(p11c_key_sign(NULL, &v15, dgst, 32, sig, &siglen, &err), CKR_ARGUMENTS_BAD);
    ASSERT_RV(p11c_key_sign(k, NULL, dgst, 32, sig, &siglen, &err), CKR_ARGUMENTS_BAD);
    p11c_key_free(k);
    p11c_module_free(m);
}

/* ---- Decrypt -------------------------------------------------------------- */

static void test_decrypt(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, ALICE, P11C_WANT_ANY);
    uint8_t ct[256], pt[256];
    size_t ctlen, ptlen;
    const uint8_t secret[] = "thirty-two bytes of key material";
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);

    /* OAEP SHA-1 (the OpenSSL command's default) */
    ctlen = sizeof(ct);
    CU_ASSERT_FATAL(
        th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, secret, 32, ct, &ctlen));
    P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1, .mgf = CKG_MGF1_SHA1};
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    CU_ASSERT_EQUAL(ptlen, 32);
    CU_ASSERT_EQUAL(memcmp(pt, secret, 32), 0);
    /* a buffer just large enough for the plaintext, and one too small */
    ptlen = 32;
    ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    CU_ASSERT_EQUAL(ptlen, 32);
    CU_ASSERT_EQUAL(memcmp(pt, secret, 32), 0);
    ptlen = 31;
    ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(ptlen, 32);
    ptlen = 0;
    ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, NULL, &ptlen, &err), CKR_OK);
    CU_ASSERT_EQUAL(ptlen, 256);
    /* MGF left out: follows the hash */
    oaep.mgf = 0;
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    /* a tampered ciphertext */
    ct[10] ^= 1;
    ptlen = sizeof(pt);
    CU_ASSERT_NOT_EQUAL(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    /* no hash: never sent */
    P11C_MECH nohash = {.type = CKM_RSA_PKCS_OAEP};
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &nohash, ct, ctlen, pt, &ptlen, &err),
              CKR_MECHANISM_PARAM_INVALID);

    /* OAEP with a label */
    {
        const uint8_t lbl[] = "context label";
        P11C_MECH withlabel = {.type = CKM_RSA_PKCS_OAEP,
                               .hash = CKM_SHA_1,
                               .mgf = CKG_MGF1_SHA1,
                               .label = lbl,
                               .label_len = sizeof(lbl) - 1};
        ctlen = sizeof(ct);
        CU_ASSERT_FATAL(th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), lbl, sizeof(lbl) - 1,
                                   secret, 32, ct, &ctlen));
        /* SoftHSM2 2.6.1 accepts the label at C_DecryptInit but ignores it:
         * the label check fails at C_Decrypt */
        ptlen = sizeof(pt);
        ASSERT_RV(p11c_key_decrypt(k, &withlabel, ct, ctlen, pt, &ptlen, &err), CKR_GENERAL_ERROR);
        CU_ASSERT_STRING_EQUAL(err.func, "C_Decrypt");
        /* without a label: the same failure (the ciphertext carries one) */
        ptlen = sizeof(pt);
        ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_GENERAL_ERROR);
        /* and a ciphertext made without a label decrypts with one given:
         * the token ignored it (the provider must decode such OAEP itself) */
        ctlen = sizeof(ct);
        CU_ASSERT_FATAL(
            th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, secret, 32, ct, &ctlen));
        ptlen = sizeof(pt);
        ASSERT_RV(p11c_key_decrypt(k, &withlabel, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    }
    /* OAEP SHA-256: SoftHSM2 2.6.1 only does SHA-1 and says so at C_DecryptInit */
    ctlen = sizeof(ct);
    CU_ASSERT_FATAL(
        th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha256(), NULL, 0, secret, 32, ct, &ctlen));
    P11C_MECH oaep256 = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA256, .mgf = CKG_MGF1_SHA256};
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &oaep256, ct, ctlen, pt, &ptlen, &err), CKR_ARGUMENTS_BAD);
    CU_ASSERT_STRING_EQUAL(err.func, "C_DecryptInit");

    /* PKCS#1 v1.5 */
    ctlen = sizeof(ct);
    CU_ASSERT_FATAL(th_encrypt(k, RSA_PKCS1_PADDING, NULL, NULL, 0, secret, 32, ct, &ctlen));
    P11C_MECH v15 = {.type = CKM_RSA_PKCS};
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &v15, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    CU_ASSERT_EQUAL(ptlen, 32);
    CU_ASSERT_EQUAL(memcmp(pt, secret, 32), 0);

    /* raw RSA */
    uint8_t block[256] = {0};
    memcpy(block + 256 - 32, secret, 32);
    ctlen = sizeof(ct);
    CU_ASSERT_FATAL(th_encrypt(k, RSA_NO_PADDING, NULL, NULL, 0, block, 256, ct, &ctlen));
    P11C_MECH raw = {.type = CKM_RSA_X_509};
    ptlen = sizeof(pt);
    ASSERT_RV(p11c_key_decrypt(k, &raw, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    CU_ASSERT_EQUAL(ptlen, 256);
    CU_ASSERT_EQUAL(memcmp(pt, block, 256), 0);
    /* wrong length */
    ptlen = sizeof(pt);
    CU_ASSERT_NOT_EQUAL(p11c_key_decrypt(k, &raw, ct, 100, pt, &ptlen, &err), CKR_OK);
    ASSERT_RV(p11c_key_decrypt(NULL, &raw, ct, 256, pt, &ptlen, &err), CKR_ARGUMENTS_BAD);
    p11c_key_free(k);
    p11c_module_free(m);
}

/* ---- Generate, import, destroy ---------------------------------------------- */

static void test_generate_persistent(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = NULL, *k2 = NULL;
    char *out = NULL;
    const uint8_t id[] = {0x47, 0x11};
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    ASSERT_RV(p11c_key_generate(t, 1024, "small", NULL, 0, 1, &k, &err), CKR_ARGUMENTS_BAD);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_STRING_EQUAL(err.what,
                           "token 'p11chat-test', new key 'small': 1024 bits (2048, 3072 or 4096 "
                           "only)");
    ASSERT_RV(p11c_key_generate(t, 2047, "odd", NULL, 0, 0, &k, &err), CKR_ARGUMENTS_BAD);
    ASSERT_RV(p11c_key_generate(NULL, 2048, "x", NULL, 0, 0, &k, &err), CKR_ARGUMENTS_BAD);

    ASSERT_RV(p11c_key_generate(t, 2048, "carol", id, sizeof(id), 1, &k, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(p11c_key_bits(k), 2048);
    CU_ASSERT_STRING_EQUAL(p11c_key_label(k), "carol");
    CU_ASSERT_FALSE(p11c_key_is_ephemeral(k));
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 1);
    CU_ASSERT(th_sign_ok(k, &err));

    /* pkcs11-tool sees both halves with the label and id asked for */
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --list-objects"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label:      carol"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ID:         4711"));
    /* the private half: sensitive, never extractable, sign only (a
     * long-term key never decrypts or unwraps), with the signing mechanisms
     * it may use */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label:      carol\n  ID:         4711\n"
                                       "  Usage:      sign\n"
                                       "  Access:     sensitive, always sensitive, never "
                                       "extractable, local\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "label:      carol\n  ID:         4711\n"
                                       "  Usage:      verify\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        out, "extractable, local\n  Allowed mechanisms: RSA-PKCS,RSA-PKCS-PSS,SHA256-RSA-PKCS,"
             "SHA384-RSA-PKCS,SHA512-RSA-PKCS,SHA256-RSA-PKCS-PSS,SHA384-RSA-PKCS-PSS,"
             "SHA512-RSA-PKCS-PSS\n"));
    {
        /* and the token refuses to decrypt with it */
        uint8_t ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
        P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA256, .mgf = CKG_MGF1_SHA256};
        CU_ASSERT_FATAL(th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha256(), NULL, 0,
                                   (const uint8_t *)"x", 1, ct, &ctlen));
        CU_ASSERT_NOT_EQUAL(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    }
    free(out);
    out = NULL;

    /* a fresh module loads it by label and by id */
    P11C_MODULE *m2 = th_module(1);
    k2 = load(m2, TH_TOKEN_URI ";id=%47%11", P11C_WANT_ANY);
    CU_ASSERT(k2 != NULL && strcmp(p11c_key_label(k2), "carol") == 0);
    CU_ASSERT(k2 != NULL && th_sign_ok(k2, &err));
    p11c_key_free(k2);
    p11c_module_free(m2);

    /* label or id taken */
    ASSERT_RV(p11c_key_generate(t, 2048, "carol", NULL, 0, 1, &k2, &err), P11C_CKR_KEY_EXISTS);
    CU_ASSERT_PTR_NULL(k2);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', new key 'carol': the label or id is "
                                     "already used by a key");
    ASSERT_RV(p11c_key_generate(t, 2048, "carol2", id, sizeof(id), 1, &k2, &err),
              P11C_CKR_KEY_EXISTS);
    ASSERT_RV(p11c_key_generate(t, 2048, "alice", NULL, 0, 1, &k2, &err), P11C_CKR_KEY_EXISTS);
    const uint8_t alice_id[] = {0x01};
    ASSERT_RV(p11c_key_generate(t, 2048, "new", alice_id, 1, 1, &k2, &err), P11C_CKR_KEY_EXISTS);

    /* destroy: gone for pkcs11-tool, for a fresh load, and for the key itself */
    ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
    ASSERT_RV(p11c_key_destroy(k, &err), P11C_CKR_NO_KEY);
    {
        uint8_t sig[256], dgst[32] = {0};
        size_t siglen = sizeof(sig);
        P11C_MECH mech = {.type = CKM_RSA_PKCS};
        ASSERT_RV(p11c_key_sign(k, &mech, dgst, 32, sig, &siglen, &err), P11C_CKR_NO_KEY);
        CU_ASSERT_STRING_EQUAL(err.what,
                               "token 'p11chat-test', key 'carol': the key was destroyed");
        CU_ASSERT_EQUAL(p11c_key_has_private(k), 0);
    }
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --list-objects"), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "carol"));
    free(out);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=carol", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);
    p11c_key_free(k);

    /* no id given: 16 random bytes; no label: found by id */
    ASSERT_RV(p11c_key_generate(t, 3072, NULL, NULL, 0, 1, &k, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    size_t idlen;
    p11c_key_id(k, &idlen);
    CU_ASSERT_EQUAL(idlen, 16);
    CU_ASSERT_EQUAL(p11c_key_bits(k), 3072);
    CU_ASSERT_STRING_EQUAL(p11c_key_label(k), "");
    CU_ASSERT(th_sign_ok(k, &err));
    ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
    p11c_key_free(k);
    ASSERT_RV(p11c_key_destroy(NULL, &err), CKR_ARGUMENTS_BAD);
    p11c_module_free(m);
}

static void test_generate_ephemeral(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = NULL, *k2 = NULL;
    char *out = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    ASSERT_RV(p11c_key_generate(t, 2048, "eph", NULL, 0, 0, &k, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT(p11c_key_is_ephemeral(k));
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 1);
    CU_ASSERT(th_sign_ok(k, &err));
    /* decrypt too */
    {
        uint8_t ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
        P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1};
        CU_ASSERT(th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, (const uint8_t *)"hi",
                             2, ct, &ctlen));
        ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
        CU_ASSERT(ptlen == 2 && memcmp(pt, "hi", 2) == 0);
    }
    /* a session key S: decrypts, and the token refuses to sign with it */
    {
        P11C_KEY *sk = NULL;
        uint8_t ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
        P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1};
        ASSERT_RV(p11c_key_generate(t, 2048, NULL, NULL, 0, P11C_GEN_DECRYPT_ONLY, &sk, &err),
                  CKR_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(sk);
        CU_ASSERT(p11c_key_is_ephemeral(sk));
        CU_ASSERT(th_encrypt(sk, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, (const uint8_t *)"hi",
                             2, ct, &ctlen));
        ASSERT_RV(p11c_key_decrypt(sk, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
        CU_ASSERT(ptlen == 2 && memcmp(pt, "hi", 2) == 0);
        CU_ASSERT_FALSE(th_sign_ok(sk, &err));
        p11c_key_free(sk);
    }
    /* visible to this process while it lives, never stored in the token */
    k2 = load(m, TH_TOKEN_URI ";object=eph", P11C_WANT_ANY);
    CU_ASSERT(k2 != NULL && th_sign_ok(k2, &err));
    p11c_key_free(k2);
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --list-objects"), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "eph"));
    free(out);
    /* an ephemeral key does not block a persistent one of the same name */
    /* the last reference destroys the objects */
    P11C_KEY *ref = p11c_key_up_ref(k);
    p11c_key_free(k);
    CU_ASSERT(th_sign_ok(ref, &err)); /* still alive: one reference left */
    p11c_key_free(ref);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=eph", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=eph;type=private", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);

    /* destroyed explicitly */
    ASSERT_RV(p11c_key_generate(t, 2048, "eph2", NULL, 0, 0, &k, &err), CKR_OK);
    ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=eph2", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_KEY);
    p11c_key_free(k);
    p11c_module_free(m);

    /* a module freed with an ephemeral key alive: the key keeps it going */
    m = th_module(1);
    ASSERT_RV(p11c_key_generate(th_token(m), 2048, "eph3", NULL, 0, 0, &k, &err), CKR_OK);
    p11c_module_free(m);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
}

static void test_ambiguous(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *a = NULL, *b = NULL, *k = NULL;
    char *out = NULL;

    /* two keys of ours with one label (session keys: no KEY_EXISTS check) */
    ASSERT_RV(p11c_key_generate(t, 2048, "twin", NULL, 0, 0, &a, &err), CKR_OK);
    ASSERT_RV(p11c_key_generate(t, 2048, "twin", NULL, 0, 0, &b, &err), CKR_OK);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=twin", P11C_WANT_ANY, &k, &err),
              P11C_CKR_KEY_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', object 'twin': different keys match");
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=twin;type=private", P11C_WANT_ANY, &k, &err),
              P11C_CKR_KEY_AMBIGUOUS);
    /* the id tells them apart */
    {
        size_t idlen;
        const uint8_t *id = p11c_key_id(a, &idlen);
        char uri[256];
        int n = snprintf(uri, sizeof(uri), "%s;object=twin;id=", TH_TOKEN_URI);
        for (size_t i = 0; i < idlen; i++)
            n += snprintf(uri + n, sizeof(uri) - (size_t)n, "%%%02x", id[i]);
        k = load(m, uri, P11C_WANT_ANY);
        CU_ASSERT_PTR_NOT_NULL(k);
        if (k != NULL) {
            const uint8_t *n1, *n2, *e;
            size_t l1, l2, el;
            p11c_key_public(k, &n1, &l1, &e, &el);
            p11c_key_public(a, &n2, &l2, &e, &el);
            CU_ASSERT(l1 == l2 && memcmp(n1, n2, l1) == 0);
        }
        p11c_key_free(k);
    }
    p11c_key_free(a);
    p11c_key_free(b);

    /* two keys made by pkcs11-tool with one label */
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --keypairgen --key-type rsa:2048 "
                                      "--label dup --id 0a"),
                    0);
    free(out);
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --keypairgen --key-type rsa:2048 "
                                      "--label dup --id 0b"),
                    0);
    free(out);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=dup", P11C_WANT_ANY, &k, &err),
              P11C_CKR_KEY_AMBIGUOUS);
    k = load(m, TH_TOKEN_URI ";object=dup;id=%0b", P11C_WANT_ANY);
    CU_ASSERT(k != NULL && th_sign_ok(k, &err));
    p11c_key_free(k);
    /* the halves of one pair are one key, whichever halves are searched */
    k = load(m, TH_TOKEN_URI ";id=%0a", P11C_WANT_PRIVATE);
    CU_ASSERT(k != NULL && th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

static void parts_of(EVP_PKEY *pkey, P11C_RSA_PARTS *parts, uint8_t bufs[8][512])
{
    const char *names[8] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                            OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                            OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                            OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    const uint8_t **ptrs[8] = {&parts->n, &parts->e,  &parts->d,  &parts->p,
                               &parts->q, &parts->dp, &parts->dq, &parts->qinv};
    size_t *lens[8] = {&parts->nlen, &parts->elen,  &parts->dlen,  &parts->plen,
                       &parts->qlen, &parts->dplen, &parts->dqlen, &parts->qinvlen};
    for (int i = 0; i < 8; i++) {
        BIGNUM *bn = NULL;
        CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(pkey, names[i], &bn) == 1);
        *lens[i] = (size_t)BN_bn2bin(bn, bufs[i]);
        *ptrs[i] = bufs[i];
        BN_clear_free(bn);
    }
}

static void test_import(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = NULL, *k2 = NULL;
    P11C_RSA_PARTS parts = {0};
    uint8_t bufs[8][512];
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pkey);
    parts_of(pkey, &parts, bufs);

    /* persistent, with label and id */
    const uint8_t id[] = {0xd0, 0x0d};
    ASSERT_RV(p11c_key_import(t, &parts, "imported", id, 2, 1, &k, &err), CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_FALSE(p11c_key_is_ephemeral(k));
    CU_ASSERT_EQUAL(p11c_key_bits(k), 2048);
    {
        const uint8_t *n, *e;
        size_t nlen, elen;
        p11c_key_public(k, &n, &nlen, &e, &elen);
        CU_ASSERT(nlen == parts.nlen && memcmp(n, parts.n, nlen) == 0);
    }
    /* signed in the token, verified with the original key */
    {
        uint8_t dgst[32] = {7}, sig[256];
        size_t siglen = sizeof(sig);
        P11C_MECH mech = {.type = CKM_RSA_PKCS_PSS, .hash = CKM_SHA256, .salt_len = 32};
        ASSERT_RV(p11c_key_sign(k, &mech, dgst, 32, sig, &siglen, &err), CKR_OK);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        CU_ASSERT(EVP_PKEY_verify_init(ctx) == 1 &&
                  EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                  EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) == 1 &&
                  EVP_PKEY_verify(ctx, sig, siglen, dgst, 32) == 1);
        EVP_PKEY_CTX_free(ctx);
    }
    ASSERT_RV(p11c_key_import(t, &parts, "imported", NULL, 0, 1, &k2, &err), P11C_CKR_KEY_EXISTS);
    /* found again by a fresh load */
    k2 = load(m, TH_TOKEN_URI ";object=imported", P11C_WANT_ANY);
    CU_ASSERT(k2 != NULL && th_sign_ok(k2, &err));
    p11c_key_free(k2);
    ASSERT_RV(p11c_key_destroy(k, &err), CKR_OK);
    p11c_key_free(k);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=imported", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);

    /* session objects: gone with the key */
    ASSERT_RV(p11c_key_import(t, &parts, "imported-session", NULL, 0, 0, &k, &err), CKR_OK);
    CU_ASSERT(p11c_key_is_ephemeral(k));
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    ASSERT_RV(p11c_key_load(m, TH_TOKEN_URI ";object=imported-session", P11C_WANT_ANY, &k2, &err),
              P11C_CKR_NO_KEY);

    /* a public key alone */
    P11C_RSA_PARTS pub = {.n = parts.n, .nlen = parts.nlen, .e = parts.e, .elen = parts.elen};
    ASSERT_RV(p11c_key_import(t, &pub, "imported-public", NULL, 0, 0, &k, &err), CKR_OK);
    CU_ASSERT_EQUAL(p11c_key_has_private(k), 0);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_PRIVATE);
    p11c_key_free(k);

    ASSERT_RV(p11c_key_import(t, NULL, "bad", NULL, 0, 1, &k, &err), CKR_ARGUMENTS_BAD);
    P11C_RSA_PARTS none = {0};
    ASSERT_RV(p11c_key_import(t, &none, "bad", NULL, 0, 1, &k, &err), CKR_ARGUMENTS_BAD);
    EVP_PKEY_free(pkey);
    p11c_module_free(m);
}

static void test_deleted_between_load_and_use(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = NULL, *k2 = NULL;
    char *out = NULL;
    const uint8_t id1[] = {0xde, 0x01}, id2[] = {0xde, 0x02};

    /* loaded as a public key, removed by another program before first use */
    ASSERT_RV(p11c_key_generate(t, 2048, "doomed1", id1, 2, 1, &k, &err), CKR_OK);
    p11c_key_free(k);
    k = load(m, TH_TOKEN_URI ";object=doomed1", P11C_WANT_ANY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --delete-object --type privkey --id "
                                      "de01"),
                    0);
    free(out);
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--delete-object --type pubkey --id de01"), 0);
    free(out);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_KEY);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', key 'doomed1': no longer on the token");
    p11c_key_free(k);

    /* used once (handle cached), then removed by another program; without
     * session copies (pkcs11_copies tests the key's copy outliving it) */
    p11c_module_set_key_copies(m, 0);
    ASSERT_RV(p11c_key_generate(t, 2048, "doomed2", id2, 2, 1, &k2, &err), CKR_OK);
    p11c_key_free(k2);
    k = load(m, TH_TOKEN_URI ";object=doomed2", P11C_WANT_PRIVATE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(pkcs11_tool(&out, "--login --pin 1234 --delete-object --type privkey --id "
                                      "de02"),
                    0);
    free(out);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_PRIVATE);
    /* a clear error again, not a crash, and the module still works */
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_PRIVATE);
    p11c_key_free(k);
    k = load(m, ALICE, P11C_WANT_ANY);
    CU_ASSERT(k != NULL && th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

/* ---- Threads, fork, the session bound ------------------------------------- */

struct worker {
    P11C_KEY *key;
    int rounds;
    int ok;
};

static void *sign_worker(void *arg)
{
    struct worker *w = arg;
    P11C_ERR err = {0};
    for (int i = 0; i < w->rounds; i++)
        w->ok += th_sign_ok(w->key, &err);
    return NULL;
}

static void test_threads(void)
{
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, ALICE, P11C_WANT_ANY); /* private half found by the threads */
    pthread_t th[4];
    struct worker w[4];
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.key = k, .rounds = 50};
        CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, sign_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(w[i].ok, 50);
    }
    /* the pool holds no more sessions than were ever in use at once */
    CU_ASSERT(p11c_token_max_sessions(p11c_key_token(k)) == 64);
    p11c_key_free(k);
    p11c_module_free(m);
}

static void test_session_limit(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = load(m, ALICE, P11C_WANT_PRIVATE), *eph = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);

    /* one session for the whole token: users take turns */
    p11c_token_set_max_sessions(t, 1);
    p11c_token_set_session_wait(t, 30000); /* slow runs (valgrind) too */
    pthread_t th[2];
    struct worker w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){.key = k, .rounds = 20};
        CU_ASSERT_EQUAL(pthread_create(&th[i], NULL, sign_worker, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(w[i].ok, 20);
    }
    /* an ephemeral key holds the only session: others wait, then fail */
    ASSERT_RV(p11c_key_generate(t, 2048, "holder", NULL, 0, 0, &eph, &err), CKR_OK);
    p11c_token_set_session_wait(t, 100);
    CU_ASSERT_FALSE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_SESSION_LIMIT);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', key 'alice'");
    uint8_t rnd[8];
    ASSERT_RV(p11c_token_random(t, rnd, sizeof(rnd), &err), P11C_CKR_SESSION_LIMIT);
    /* the session back: work again */
    p11c_key_free(eph);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_token_set_max_sessions(t, 0);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

static int child_signs(P11C_KEY *k)
{
    P11C_ERR err = {0};
    int ok = th_sign_ok(k, &err) && th_sign_ok(k, &err);
    if (!ok)
        fprintf(stderr, "child: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
    return ok;
}

static void test_fork(void)
{
    P11C_ERR err = {0};
    const char *uris[] = {ALICE "?pin-value=1234", ALICE};
    for (int i = 0; i < 2; i++) {
        /* PIN in the URI, then the module PIN */
        P11C_MODULE *m = th_module(i == 1);
        P11C_KEY *k = load(m, uris[i], P11C_WANT_ANY);
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        CU_ASSERT(th_sign_ok(k, &err));
        fflush(NULL);
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            int ok = child_signs(k);
            p11c_key_free(k);
            p11c_module_free(m);
            _exit(ok ? 0 : 1);
        }
        int st = 0;
        CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* the parent goes on with its own sessions */
        CU_ASSERT(th_sign_ok(k, &err));
        p11c_key_free(k);
        p11c_module_free(m);
    }

    /* a key never used before the fork; a child that never uses the module */
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, TH_TOKEN_URI ";object=bob", P11C_WANT_ANY);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int ok = child_signs(k);
        p11c_key_free(k);
        p11c_module_free(m);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pid = fork();
    if (pid == 0) {
        p11c_key_free(k);
        p11c_module_free(m);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);

    /* SoftHSM2 with library.reset_on_fork = true forgets everything in the
     * child: the re-initialisation must bring it back */
    char conf[4200], cmd[8600];
    const char *orig = getenv("SOFTHSM2_CONF");
    char *saved = orig != NULL ? strdup(orig) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(saved);
    snprintf(conf, sizeof(conf), "%s/softhsm2-reset.conf", tokdir);
    snprintf(cmd, sizeof(cmd), "sed 's/reset_on_fork = false/reset_on_fork = true/' '%s' > '%s'",
             saved, conf);
    CU_ASSERT_EQUAL_FATAL(th_sh(NULL, cmd), 0);
    setenv("SOFTHSM2_CONF", conf, 1);
    m = th_module(1);
    k = load(m, ALICE, P11C_WANT_PRIVATE);
    CU_ASSERT(k != NULL && th_sign_ok(k, &err));
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int ok = child_signs(k);
        p11c_key_free(k);
        p11c_module_free(m);
        _exit(ok ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
    setenv("SOFTHSM2_CONF", saved, 1);
    free(saved);
}

/* ---- Recovery: sessions closed and logins lost behind our back ---------------- */

/* The same SoftHSM2 instance, unmanaged by p11-kit: what it does to the
 * application's sessions hits ours too. */
static CK_FUNCTION_LIST *raw_module(CK_SLOT_ID *slot)
{
    CK_FUNCTION_LIST *raw = p11_kit_module_load(tu_softhsm_module(), P11_KIT_MODULE_UNMANAGED);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    if (raw == NULL)
        return NULL;
    /* already initialised (by the module under test): p11-kit says so */
    CK_RV rv = p11_kit_module_initialize(raw);
    CU_ASSERT(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        fprintf(stderr, "raw C_Initialize: %s\n", p11c_rv_name(rv));
    CU_ASSERT_EQUAL(raw->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (raw->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, TU_TOKEN_LABEL, strlen(TU_TOKEN_LABEL)) == 0)
            *slot = slots[i];
    }
    return raw;
}

static void test_recovery(void)
{
    P11C_ERR err = {0};
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, ALICE, P11C_WANT_PRIVATE);
    CK_FUNCTION_LIST *raw = raw_module(&slot);
    CK_SESSION_HANDLE s;
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    CU_ASSERT_NOT_EQUAL_FATAL(slot, (CK_SLOT_ID)-1);
    CU_ASSERT(th_sign_ok(k, &err));

    /* every session of the application closed (and so logged out) */
    CU_ASSERT_EQUAL(raw->C_CloseAllSessions(slot), CKR_OK);
    unsigned long calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    /* more than C_SignInit + C_Sign: the session replaced, the login redone */
    CU_ASSERT(p11c_module_call_count(m) - calls > 2);
    calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 2);

    /* logged out, sessions kept */
    CU_ASSERT_EQUAL(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CU_ASSERT_EQUAL(raw->C_Logout(s), CKR_OK);
    calls = p11c_module_call_count(m);
    CU_ASSERT(th_sign_ok(k, &err));
    CU_ASSERT(p11c_module_call_count(m) - calls > 2);
    CU_ASSERT_EQUAL(raw->C_Logout(s), CKR_OK);
    {
        uint8_t ct[256], pt[256];
        size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
        P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1};
        CU_ASSERT(th_encrypt(k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, (const uint8_t *)"hi",
                             2, ct, &ctlen));
        ASSERT_RV(p11c_key_decrypt(k, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    }
    /* and a key whose private half was never looked up */
    CU_ASSERT_EQUAL(raw->C_Logout(s), CKR_OK);
    P11C_KEY *bob = load(m, TH_TOKEN_URI ";object=bob", P11C_WANT_ANY);
    CU_ASSERT(bob != NULL && th_sign_ok(bob, &err));
    p11c_key_free(bob);
    CU_ASSERT_EQUAL(raw->C_CloseSession(s), CKR_OK);
    p11c_key_free(k);
    p11c_module_free(m);
    p11_kit_module_release(raw);
}

/* An atexit handler freeing the module, as a provider unloaded at exit does. */
static P11C_MODULE *exit_module;
static P11C_KEY *exit_key;

static void free_at_exit(void)
{
    p11c_key_free(exit_key);
    p11c_module_free(exit_module);
}

static void test_free_at_exit(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        P11C_ERR err = {0};
        exit_module = th_module(1);
        exit_key = load(exit_module, ALICE, P11C_WANT_ANY);
        atexit(free_at_exit);
        exit(exit_key != NULL && th_sign_ok(exit_key, &err) ? 0 : 1);
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    tokdir = tu_token_make("pkcs11_keys", 1);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_keys", NULL, NULL);
    CU_add_test(s, "load public without login", test_load_public_no_login);
    CU_add_test(s, "load by id, types", test_load_by_id_and_types);
    CU_add_test(s, "load errors", test_load_errors);
    CU_add_test(s, "PINs", test_pins);
    CU_add_test(s, "enum", test_enum);
    CU_add_test(s, "sign PSS", test_sign_pss);
    CU_add_test(s, "sign other mechanisms", test_sign_other);
    CU_add_test(s, "decrypt", test_decrypt);
    CU_add_test(s, "generate persistent, destroy", test_generate_persistent);
    CU_add_test(s, "generate ephemeral", test_generate_ephemeral);
    CU_add_test(s, "ambiguous", test_ambiguous);
    CU_add_test(s, "import", test_import);
    CU_add_test(s, "deleted between load and use", test_deleted_between_load_and_use);
    CU_add_test(s, "threads", test_threads);
    CU_add_test(s, "session limit", test_session_limit);
    CU_add_test(s, "fork", test_fork);
    CU_add_test(s, "recovery", test_recovery);
    CU_add_test(s, "free at exit", test_free_at_exit);
    return tu_main();
}
