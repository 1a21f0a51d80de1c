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
    return EVP_PKEY_dup(keys.session);
}

P11C_SESSION *fz_session(p11c_role role, p11c_policy policy)
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
    if (p11c_session_start(s) != P11C_OK)
        fz_fail("p11c_session_start");
    return s;
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
