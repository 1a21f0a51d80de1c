/* pkcs11/: private keys used through session copies of their token objects:
 * made once, as protected as the original, shared by no one, destroyed with
 * the key, skipped when the token refuses or the pool is small. The copies
 * are counted through the same SoftHSM2 instance, unmanaged by p11-kit
 * (session objects are the application's, visible to all its sessions). */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>
#include <p11-kit/p11-kit.h>

#define ALICE TH_TOKEN_URI ";object=alice"

static char errbuf[512];
static CK_FUNCTION_LIST *raw;
static CK_SLOT_ID slot = (CK_SLOT_ID)-1;

static P11C_KEY *load(P11C_MODULE *m, const char *uri)
{
    P11C_ERR err = {0};
    P11C_KEY *k = NULL;
    CK_RV rv = p11c_key_load(m, uri, P11C_WANT_ANY, &k, &err);
    if (rv != CKR_OK)
        fprintf(stderr, "load %s: %s\n", uri, p11c_err_string(&err, errbuf, sizeof(errbuf)));
    CU_ASSERT_EQUAL(rv, CKR_OK);
    return k;
}

/* The raw view of the same SoftHSM2 instance (helpers.c). */
static int raw_open(void)
{
    if (raw == NULL)
        raw = th_raw(&slot);
    return raw != NULL;
}

/* Private session objects with CKA_ID id (the application is logged in):
 * how many, and the first one's handle. */
static int copies(uint8_t id, CK_OBJECT_HANDLE *first)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[3] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_ID, &id, 1},
    };
    CK_OBJECT_HANDLE hs[16];
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s;

    if (!raw_open() || raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return -1;
    if (raw->C_FindObjectsInit(s, tmpl, 3) != CKR_OK ||
        raw->C_FindObjects(s, hs, 16, &n) != CKR_OK || raw->C_FindObjectsFinal(s) != CKR_OK)
        n = (CK_ULONG)-1;
    if (first != NULL && n != (CK_ULONG)-1 && n > 0)
        *first = hs[0];
    raw->C_CloseSession(s);
    return (int)n;
}

/* Alice's key loaded and used once: its one copy made. */
static P11C_KEY *alice_used(P11C_MODULE *m)
{
    P11C_ERR err = {0};
    P11C_KEY *k = load(m, ALICE);
    if (k == NULL)
        return NULL;
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    return k;
}

static void test_made_once_and_protected(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    /* the first private operation makes it (and logs the application in,
     * so that copies() sees private objects) */
    P11C_KEY *k = alice_used(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* later operations reuse it: two calls each, no new copy */
    unsigned long calls = p11c_module_call_count(m);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 4);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);

    /* as sensitive and unextractable as the token object, and a session object */
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CU_ASSERT_EQUAL_FATAL(copies(0x01, &h), 1);
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, token = CK_TRUE, sign = CK_FALSE;
    CK_ATTRIBUTE a[4] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_SIGN, &sign, sizeof(sign)},
    };
    CK_SESSION_HANDLE s;
    CU_ASSERT_EQUAL_FATAL(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CU_ASSERT_EQUAL(raw->C_GetAttributeValue(s, h, a, 4), CKR_OK);
    CK_BYTE d[512];
    CK_ATTRIBUTE priv = {CKA_PRIVATE_EXPONENT, d, sizeof(d)};
    CU_ASSERT_EQUAL(raw->C_GetAttributeValue(s, h, &priv, 1), CKR_ATTRIBUTE_SENSITIVE);
    raw->C_CloseSession(s);
    CU_ASSERT_EQUAL(sensitive, CK_TRUE);
    CU_ASSERT_EQUAL(extractable, CK_FALSE);
    CU_ASSERT_EQUAL(token, CK_FALSE);
    CU_ASSERT_EQUAL(sign, CK_TRUE);

    /* the key freed: its copy destroyed */
    p11c_key_free(k);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);
    p11c_module_free(m);
}

static void test_one_per_key(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *a = alice_used(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* the copy matches the URI too, but is one key with the token object: no
     * ambiguity, and the second key copies the token object, not the copy */
    P11C_KEY *b = load(m, ALICE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(th_sign_ok(b, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 2);
    p11c_key_free(a);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    CU_ASSERT_TRUE(th_sign_ok(b, &err));
    p11c_key_free(b);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);

    /* decryption goes through the copy as well */
    P11C_KEY *c = load(m, ALICE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    uint8_t ct[256], pt[256];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    CU_ASSERT_TRUE_FATAL(th_encrypt(c, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0,
                                    (const uint8_t *)"copied", 6, ct, &ctlen));
    P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1, .mgf = CKG_MGF1_SHA1};
    CU_ASSERT_EQUAL(p11c_key_decrypt(c, &oaep, ct, ctlen, pt, &ptlen, &err), CKR_OK);
    CU_ASSERT_TRUE(ptlen == 6 && memcmp(pt, "copied", 6) == 0);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    p11c_key_free(c);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);
    p11c_module_free(m);
}

static void test_off_and_small_pool(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    p11c_module_set_key_copies(m, 0);
    P11C_KEY *k = load(m, ALICE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);
    p11c_key_free(k);
    p11c_module_free(m);

    /* three sessions in all: none to spare for the keeper */
    m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    p11c_token_set_max_sessions(t, 3);
    k = load(m, ALICE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    p11c_key_free(k);
    p11c_module_free(m);
}

/* A key pair that the token will not copy (CKA_COPYABLE false). */
static int make_uncopyable(void)
{
    CK_SESSION_HANDLE s;
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1}, id = 0x07;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const char *label = "fixed";
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
        {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ID, &id, 1},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_COPYABLE, &no, sizeof(no)},
        {CKA_ID, &id, 1},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE hpub, hpriv;
    if (!raw_open() ||
        raw->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
        return 0;
    CK_RV rv = raw->C_GenerateKeyPair(s, &mech, pub, sizeof(pub) / sizeof(pub[0]), priv,
                                      sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
    if (rv != CKR_OK)
        fprintf(stderr, "C_GenerateKeyPair: %s\n", p11c_rv_name(rv));
    raw->C_CloseSession(s);
    return rv == CKR_OK;
}

static void test_token_refuses(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = load(m, ALICE); /* logs the application in for raw */
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    p11c_key_free(k);
    CU_ASSERT_TRUE_FATAL(make_uncopyable());
    P11C_ERR lerr = {0};
    k = NULL;
    CU_ASSERT_EQUAL(p11c_key_load(m, TH_TOKEN_URI ";object=fixed", P11C_WANT_PRIVATE, &k, &lerr),
                    CKR_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* the copy is refused: the token object signs, once tried and not again */
    unsigned long calls = p11c_module_call_count(m);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 3); /* C_CopyObject, C_SignInit, C_Sign */
    calls = p11c_module_call_count(m);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(p11c_module_call_count(m) - calls, 2);
    CU_ASSERT_EQUAL(copies(0x07, NULL), 0);
    CU_ASSERT_EQUAL(p11c_key_destroy(k, &err), CKR_OK);
    p11c_key_free(k);
    p11c_module_free(m);
}

static int pkcs11_tool(const char *args)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof(cmd), "pkcs11-tool --module '%s' --token-label %s %s", tu_softhsm_module(),
             TU_TOKEN_LABEL, args);
    int rc = th_sh(&out, cmd);
    free(out);
    return rc;
}

static void test_destroy_and_delete(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_TOKEN *t = th_token(m);
    P11C_KEY *k = NULL, *a, *b;
    const uint8_t id[1] = {0x31};
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    /* destroyed through one key: every copy goes with the token objects,
     * and the other key of the same pair fails cleanly */
    CU_ASSERT_EQUAL_FATAL(p11c_key_generate(t, 2048, "gone", id, 1, 1, &k, &err), CKR_OK);
    p11c_key_free(k);
    a = load(m, TH_TOKEN_URI ";object=gone");
    b = load(m, TH_TOKEN_URI ";object=gone");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(th_sign_ok(a, &err));
    CU_ASSERT_TRUE(th_sign_ok(b, &err));
    CU_ASSERT_EQUAL(copies(0x31, NULL), 2);
    CU_ASSERT_EQUAL(p11c_key_destroy(a, &err), CKR_OK);
    CU_ASSERT_EQUAL(copies(0x31, NULL), 0);
    CU_ASSERT_FALSE(th_sign_ok(b, &err));
    CU_ASSERT_EQUAL(err.rv, P11C_CKR_NO_KEY);
    CU_ASSERT_STRING_EQUAL(err.what, "token 'p11chat-test', key 'gone': no longer on the token");
    p11c_key_free(a);
    p11c_key_free(b);

    /* deleted by another program after first use: the copy, in the token,
     * stays usable by this key until it is freed (documented) */
    const uint8_t id2[1] = {0x32};
    CU_ASSERT_EQUAL_FATAL(p11c_key_generate(t, 2048, "deleted", id2, 1, 1, &k, &err), CKR_OK);
    p11c_key_free(k);
    a = load(m, TH_TOKEN_URI ";object=deleted");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_TRUE(th_sign_ok(a, &err));
    CU_ASSERT_EQUAL(pkcs11_tool("--login --pin 1234 --delete-object --type privkey --id 32"), 0);
    CU_ASSERT_EQUAL(pkcs11_tool("--delete-object --type pubkey --id 32"), 0);
    CU_ASSERT_TRUE(th_sign_ok(a, &err));
    p11c_key_free(a);
    CU_ASSERT_EQUAL(copies(0x32, NULL), 0);
    k = (P11C_KEY *)m;
    CU_ASSERT_EQUAL(p11c_key_load(m, TH_TOKEN_URI ";object=deleted", P11C_WANT_ANY, &k, &err),
                    P11C_CKR_NO_KEY);
    CU_ASSERT_PTR_NULL(k);
    p11c_module_free(m);
}

static void test_session_loss(void)
{
    P11C_ERR err = {0};
    P11C_MODULE *m = th_module(1);
    P11C_KEY *k = alice_used(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    /* every session closed behind our back: the keeper and the copy with it
     * (and the login); the next operation logs in, copies again, signs */
    CU_ASSERT_EQUAL(raw->C_CloseAllSessions(slot), CKR_OK);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    /* logged out behind our back: the next operation logs in again, and
     * copies again if the token dropped the copy with the login */
    CK_SESSION_HANDLE s;
    CU_ASSERT_EQUAL_FATAL(raw->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    CU_ASSERT_EQUAL(raw->C_Logout(s), CKR_OK);
    raw->C_CloseSession(s);
    CU_ASSERT_TRUE(th_sign_ok(k, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    p11c_key_free(k);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);

    /* a key whose copy died with its session, freed after another key made
     * its own: only what is still its copy is destroyed */
    P11C_KEY *a = load(m, ALICE), *b = load(m, ALICE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(th_sign_ok(a, &err));
    CU_ASSERT_EQUAL(raw->C_CloseAllSessions(slot), CKR_OK);
    CU_ASSERT_TRUE(th_sign_ok(b, &err));
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    p11c_key_free(a);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 1);
    CU_ASSERT_TRUE(th_sign_ok(b, &err));
    p11c_key_free(b);
    CU_ASSERT_EQUAL(copies(0x01, NULL), 0);
    p11c_module_free(m);
}

int main(void)
{
    tu_token_make("pkcs11_copies", 1);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_copies", NULL, NULL);
    CU_add_test(s, "made once, as protected, freed with the key", test_made_once_and_protected);
    CU_add_test(s, "one per key", test_one_per_key);
    CU_add_test(s, "off, and a small pool", test_off_and_small_pool);
    CU_add_test(s, "the token refuses", test_token_refuses);
    CU_add_test(s, "destroyed and deleted", test_destroy_and_delete);
    CU_add_test(s, "sessions closed, logged out", test_session_loss);
    int rc = tu_main();
    if (raw != NULL)
        p11_kit_module_release(raw);
    return rc;
}
