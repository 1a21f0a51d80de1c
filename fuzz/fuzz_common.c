#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

static fz_keys keys;
static int ready;

void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    abort();
}

static EVP_PKEY *key_load(json_t *root, const char *name)
{
    json_t *k = json_object_get(json_object_get(root, "keys"), name);
    const char *pem = json_string_value(json_object_get(k, "private_pkcs8_pem"));
    if (pem == NULL)
        fz_fail("keys.json lacks a key");
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pk == NULL)
        fz_fail("keys.json key does not parse");
    return pk;
}

const fz_keys *fz_init(void)
{
    if (ready)
        return &keys;
    json_error_t jerr;
    json_t *root = json_load_file(P11C_VECTORS_DIR "/protocol/keys.json", 0, &jerr);
    if (root == NULL)
        fz_fail(jerr.text);
    keys.alice = key_load(root, "alice");
    keys.bob = key_load(root, "bob");
    keys.session = key_load(root, "session");
    keys.carol = key_load(root, "carol3072");
    json_decref(root);

    uint8_t fp[P11C_FP_LEN];
    keys.trust = p11c_trust_new();
    if (keys.trust == NULL || p11c_fingerprint(NULL, NULL, keys.alice, fp) != P11C_OK ||
        p11c_trust_add(keys.trust, "Alice", fp) != P11C_OK ||
        p11c_fingerprint(NULL, NULL, keys.bob, fp) != P11C_OK ||
        p11c_trust_add(keys.trust, "Bob", fp) != P11C_OK)
        fz_fail("trust store set-up");
    ready = 1;
    return &keys;
}

static EVP_PKEY *fixed_session_key(void *arg)
{
    (void)arg;
    /* Shared, not copied: a session only frees its reference. */
    return EVP_PKEY_up_ref(keys.session) ? keys.session : NULL;
}

P11C_SESSION *fz_session(p11c_role role, p11c_policy policy)
{
    return fz_session_hooked(role, policy, NULL);
}

P11C_SESSION *fz_session_hooked(p11c_role role, p11c_policy policy, const P11C_TEST_HOOKS *h)
{
    fz_init();
    P11C_CONFIG cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.role = role;
    cfg.key = role == P11C_INITIATOR ? keys.alice : keys.bob;
    cfg.identity = role == P11C_INITIATOR ? "Alice" : "Bob";
    cfg.trust = keys.trust;
    cfg.policy = policy;
    cfg.session_key_fn = fixed_session_key;
    p11c_err err = P11C_OK;
    P11C_SESSION *s = p11c_session_new(&cfg, &err);
    if (s == NULL)
        fz_fail("p11c_session_new");
    if (h != NULL)
        p11c_session_set_test_hooks(s, h);
    if (p11c_session_start(s) != P11C_OK)
        fz_fail("p11c_session_start");
    return s;
}

P11C_SESSION *fz_copy(const P11C_SESSION *s)
{
    P11C_SESSION *d = p11c_session_test_dup(s);
    if (d == NULL)
        fz_fail("p11c_session_test_dup");
    return d;
}

uint8_t *fz_drain_output(P11C_SESSION *s, size_t *len)
{
    uint8_t *msg, *last = NULL;
    size_t n;
    while (p11c_session_pop_output(s, &msg, &n)) {
        OPENSSL_free(last);
        last = msg;
        if (len != NULL)
            *len = n;
    }
    return last;
}

int fz_drain_events(P11C_SESSION *s, p11c_event_type type)
{
    P11C_EVENT ev;
    int count = 0;
    while (p11c_session_next_event(s, &ev)) {
        if (ev.type == type)
            count++;
        p11c_event_clear(&ev);
    }
    return count;
}

p11c_err fz_pump(P11C_SESSION *from, P11C_SESSION *to)
{
    uint8_t *msg;
    size_t n;
    p11c_err err = P11C_OK;
    while (p11c_session_pop_output(from, &msg, &n)) {
        err = p11c_session_recv(to, msg, n);
        OPENSSL_free(msg);
    }
    return err;
}

static fz_vectors vec;

static uint8_t *vec_hex(json_t *root, const char *name, size_t *len)
{
    long n = 0;
    uint8_t *b = OPENSSL_hexstr2buf(json_string_value(json_object_get(root, name)), &n);
    if (b == NULL)
        fz_fail("handshake.json lacks a message");
    if (len != NULL)
        *len = (size_t)n;
    return b;
}

/* The idx-th vec() field of a handshake message after `skip` header bytes. */
static const uint8_t *vec_field(const uint8_t *msg, size_t len, size_t skip, int idx, size_t *flen)
{
    P11C_RCUR c;
    const uint8_t *f = NULL;
    p11c_rcur_init(&c, msg + skip, len - skip);
    for (int i = 0; i <= idx; i++)
        if (p11c_rcur_vec(&c, P11C_MAX_FIELD, &f, flen) != P11C_OK)
            fz_fail("handshake.json message does not parse");
    return f;
}

const fz_vectors *fz_vectors_get(void)
{
    if (vec.hello != NULL)
        return &vec;
    json_error_t jerr;
    json_t *root = json_load_file(P11C_VECTORS_DIR "/protocol/handshake.json", 0, &jerr);
    if (root == NULL)
        fz_fail(jerr.text);
    size_t sec_len;
    vec.hello = vec_hex(root, "hello", &vec.hello_len);
    vec.reply = vec_hex(root, "reply", &vec.reply_len);
    vec.confirm = vec_hex(root, "confirm", &vec.confirm_len);
    vec.finish = vec_hex(root, "finish", &vec.finish_len);
    vec.sec = vec_hex(root, "sec", &sec_len);
    if (sec_len != P11C_SEC_LEN)
        fz_fail("handshake.json sec");
    json_decref(root);
    /* HELLO: version, type, suite, pub_A, pub_S, id_A, Sig_A. REPLY: version,
     * type, pub_B, EncSec, id_B, Sig_B. CONFIRM: version, type, Sig_C, Confirm_A. */
    vec.sig_a = vec_field(vec.hello, vec.hello_len, 3, 3, &vec.sig_a_len);
    vec.enc_sec = vec_field(vec.reply, vec.reply_len, 2, 1, &vec.enc_sec_len);
    vec.sig_b = vec_field(vec.reply, vec.reply_len, 2, 3, &vec.sig_b_len);
    vec.sig_c = vec_field(vec.confirm, vec.confirm_len, 2, 0, &vec.sig_c_len);
    return &vec;
}

void fz_hooks_recorded(P11C_TEST_HOOKS *h, p11c_role role)
{
    const fz_vectors *v = fz_vectors_get();
    memset(h, 0, sizeof(*h));
    if (role == P11C_INITIATOR) {
        h->sig_a = v->sig_a;
        h->sig_a_len = v->sig_a_len;
        h->sig_c = v->sig_c;
        h->sig_c_len = v->sig_c_len;
    } else {
        h->sig_b = v->sig_b;
        h->sig_b_len = v->sig_b_len;
        h->enc_sec = v->enc_sec;
        h->enc_sec_len = v->enc_sec_len;
        h->sec = v->sec;
    }
}
