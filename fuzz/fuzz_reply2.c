/*
 * A suite 0x02 REPLY as the initiator reads it (spec section 10): Alice
 * (P-256 key, S the vector's session_p256) waits for the REPLY of the
 * recorded session ec_p256_to_ec_p384 of handshake_suite2.json. Her Sig_A
 * and Sig_C are the recorded ones (test hooks), so her HELLO is the
 * vector's and the vector's REPLY is the one genuine answer. Every input
 * goes through the strict EC key decoder (pub(B), pub(E)) and the ECDSA
 * signature check; only the genuine one reaches the ECDH. Alice is made
 * once; each input goes to a copy of her.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

static P11C_TEST_HOOKS hooks;
static P11C_SESSION *waiting;
static EVP_PKEY *alice, *bob, *session;
static P11C_TRUST *trust;
static uint8_t *hello, *reply, *confirm;
static size_t hello_len, reply_len, confirm_len;

static EVP_PKEY *pem_key(json_t *root, const char *name)
{
    const char *pem = json_string_value(json_object_get(json_object_get(root, "keys"), name));
    BIO *bio = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pk == NULL)
        fz_fail("handshake_suite2.json key");
    return pk;
}

static uint8_t *hex(json_t *obj, const char *name, size_t *len)
{
    long n = 0;
    uint8_t *b = OPENSSL_hexstr2buf(json_string_value(json_object_get(obj, name)), &n);
    if (b == NULL)
        fz_fail("handshake_suite2.json field");
    *len = (size_t)n;
    return b;
}

/* The i-th vec() field after `skip` bytes of a message. */
static void field(const uint8_t *m, size_t len, size_t skip, int i, const uint8_t **p, size_t *n)
{
    P11C_RCUR c;
    p11c_rcur_init(&c, m + skip, len - skip);
    for (int k = 0; k <= i; k++)
        if (p11c_rcur_vec(&c, P11C_MAX_FIELD, p, n) != P11C_OK)
            fz_fail("vector message fields");
}

static EVP_PKEY *session_key(void *arg)
{
    (void)arg;
    return EVP_PKEY_up_ref(session) ? session : NULL;
}

static void make_waiting(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(P11C_VECTORS_DIR "/protocol/handshake_suite2.json", 0, &jerr);
    if (root == NULL)
        fz_fail(jerr.text);
    json_t *v = json_object_get(json_object_get(root, "sessions"), "ec_p256_to_ec_p384");
    alice = pem_key(root, "alice_p256");
    bob = pem_key(root, "bob_p384");
    session = pem_key(root, "session_p256");
    hello = hex(v, "hello", &hello_len);
    reply = hex(v, "reply", &reply_len);
    confirm = hex(v, "confirm", &confirm_len);
    json_decref(root);

    uint8_t fp[P11C_FP_LEN];
    trust = p11c_trust_new();
    if (trust == NULL || p11c_fingerprint(NULL, NULL, bob, fp) != P11C_OK ||
        p11c_trust_add(trust, "Bob", fp) != P11C_OK)
        fz_fail("trust store set-up");
    field(hello, hello_len, 3, 3, &hooks.sig_a, &hooks.sig_a_len);
    field(confirm, confirm_len, 2, 0, &hooks.sig_c, &hooks.sig_c_len);

    P11C_CONFIG cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.role = P11C_INITIATOR;
    cfg.key = alice;
    cfg.identity = "Alice";
    cfg.trust = trust;
    cfg.suite = P11C_SUITE_2;
    cfg.session_key_fn = session_key;
    waiting = p11c_session_new(&cfg, NULL);
    if (waiting == NULL)
        fz_fail("p11c_session_new");
    p11c_session_set_test_hooks(waiting, &hooks);
    if (p11c_session_start(waiting) != P11C_OK)
        fz_fail("p11c_session_start");
    size_t hlen = 0;
    uint8_t *h = fz_drain_output(waiting, &hlen);
    if (h == NULL || hlen != hello_len || memcmp(h, hello, hlen) != 0)
        fz_fail("the hooks did not reproduce the vector HELLO");
    OPENSSL_free(h);
    fz_drain_events(waiting, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (waiting == NULL)
        make_waiting();
    P11C_SESSION *a = fz_copy(waiting);
    p11c_err err = p11c_session_recv(a, data, size);
    size_t len = 0;
    uint8_t *out = fz_drain_output(a, &len);
    int genuine = size == reply_len && memcmp(data, reply, size) == 0;
    /* ECDSA is randomized, so another valid REPLY exists only with Bob's key. */
    if (genuine != (err == P11C_OK))
        fz_fail(genuine ? "the genuine REPLY was rejected" : "a forged REPLY was accepted");
    if (err != P11C_OK && out != NULL)
        fz_fail("CONFIRM sent for a rejected REPLY");
    if (err == P11C_OK && (out == NULL || len != confirm_len || memcmp(out, confirm, len) != 0))
        fz_fail("accepted REPLY without the vector CONFIRM");
    if (p11c_session_established(a))
        fz_fail("established before FINISH");
    OPENSSL_free(out);
    fz_drain_events(a, 0);
    p11c_session_free(a);
    return 0;
}
