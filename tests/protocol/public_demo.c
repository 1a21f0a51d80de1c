/*
 * Built from the public header alone and linked only to the shared
 * libp11chat: two sessions complete a handshake over stream frames and
 * exchange messages. Exit status 0 on success.
 */
#include <stdio.h>
#include <string.h>

#include <p11chat.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "public_demo: %s failed at line %d\n", #cond, __LINE__);               \
            goto end;                                                                              \
        }                                                                                          \
    } while (0)

/* Frames everything `from` has to send, then unframes it into `to`, as a socket would. */
static int pump(P11C_SESSION *from, P11C_SESSION *to, P11C_STREAM *wire)
{
    uint8_t *msg, *framed;
    size_t len, flen;

    while (p11c_session_pop_output(from, &msg, &len)) {
        p11c_err e = p11c_frame_stream(msg, len, &framed, &flen);
        OPENSSL_free(msg);
        if (e != P11C_OK || p11c_stream_feed(wire, framed, flen) != P11C_OK) {
            OPENSSL_free(framed);
            return 0;
        }
        OPENSSL_free(framed);
    }
    while (p11c_stream_next(wire, &msg, &len)) {
        p11c_err e = p11c_session_recv(to, msg, len);
        OPENSSL_free(msg);
        if (e != P11C_OK)
            return 0;
    }
    return 1;
}

int main(void)
{
    int rc = 1, got = 0;
    EVP_PKEY *ka = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *kb = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    P11C_TRUST *ta = p11c_trust_new(), *tb = p11c_trust_new();
    P11C_STREAM *wab = p11c_stream_new(), *wba = p11c_stream_new();
    P11C_SESSION *a = NULL, *b = NULL;
    P11C_CONFIG ca, cb;
    P11C_EVENT ev;
    uint8_t fa[P11C_FP_LEN], fb[P11C_FP_LEN];
    const char *text = "hello over libp11chat";

    CHECK(ka != NULL && kb != NULL && ta != NULL && tb != NULL && wab != NULL && wba != NULL);
    CHECK(p11c_fingerprint(NULL, NULL, ka, fa) == P11C_OK);
    CHECK(p11c_fingerprint(NULL, NULL, kb, fb) == P11C_OK);
    CHECK(p11c_trust_add(ta, "bob@example", fb) == P11C_OK);
    CHECK(p11c_trust_add(tb, "alice@example", fa) == P11C_OK);
    memset(&ca, 0, sizeof(ca));
    ca.role = P11C_INITIATOR;
    ca.key = ka;
    ca.identity = "alice@example";
    ca.trust = ta;
    ca.known_only = 1;
    cb = ca;
    cb.role = P11C_RESPONDER;
    cb.key = kb;
    cb.identity = "bob@example";
    cb.trust = tb;
    a = p11c_session_new(&ca, NULL);
    b = p11c_session_new(&cb, NULL);
    CHECK(a != NULL && b != NULL);
    CHECK(p11c_session_start(a) == P11C_OK && p11c_session_start(b) == P11C_OK);
    for (int i = 0; i < 3; i++)
        CHECK(pump(a, b, wab) && pump(b, a, wba));
    CHECK(p11c_session_established(a) && p11c_session_established(b));
    CHECK(p11c_session_next_event(b, &ev) && ev.type == P11C_EV_ESTABLISHED &&
          strcmp(ev.peer_id, "alice@example") == 0 && ev.trust == P11C_TRUSTED);
    p11c_event_clear(&ev);
    CHECK(p11c_session_send_data(a, (const uint8_t *)text, strlen(text)) == P11C_OK);
    CHECK(p11c_session_send_close(a, "bye") == P11C_OK);
    CHECK(pump(a, b, wab) && pump(b, a, wba));
    while (p11c_session_next_event(b, &ev)) {
        if (ev.type == P11C_EV_DATA && ev.len == strlen(text) && memcmp(ev.data, text, ev.len) == 0)
            got++;
        if (ev.type == P11C_EV_CLOSE && ev.len == 3)
            got++;
        p11c_event_clear(&ev);
    }
    CHECK(got == 2);
    CHECK(p11c_session_closed(a) && p11c_session_closed(b));
    printf("public_demo: handshake, message and close over libp11chat: ok\n");
    rc = 0;
end:
    p11c_session_free(a);
    p11c_session_free(b);
    p11c_stream_free(wab);
    p11c_stream_free(wba);
    p11c_trust_free(ta);
    p11c_trust_free(tb);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    return rc;
}
