/* HELLO (spec section 4, step 1): the initiator's keys, identity and Sig_A. */
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

p11c_err p11c_tbs_a(P11C_WBUF *w, const uint8_t *pub_a, size_t pub_a_len, const uint8_t *pub_s,
                    size_t pub_s_len, const uint8_t *id_a, size_t id_a_len)
{
    p11c_wbuf_bytes(w, "P11C", 4);
    p11c_wbuf_u8(w, P11C_VERSION);
    p11c_wbuf_u8(w, P11C_SUITE);
    p11c_wbuf_u8(w, 'A');
    p11c_wbuf_vec(w, pub_a, pub_a_len);
    p11c_wbuf_vec(w, pub_s, pub_s_len);
    p11c_wbuf_vec(w, id_a, id_a_len);
    return w->bad ? P11C_ERR_MEMORY : P11C_OK;
}

p11c_err p11c_hello_write(P11C_SESSION *s)
{
    p11c_err ret;
    P11C_WBUF tbs, msg;
    uint8_t *sig = NULL;
    size_t siglen = 0;

    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    if (s->sk_fn != NULL) {
        s->S = s->sk_fn(s->sk_arg);
        ret = s->S == NULL ? P11C_ERR_CRYPTO : P11C_OK;
    } else {
        ret = p11c_session_key_make(s->libctx, s->sk_propq != NULL ? s->sk_propq : s->propq, &s->S);
    }
    if (ret != P11C_OK)
        goto end;
    ret = p11c_pub_der(s->S, &s->s_pub, &s->s_pub_len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_key_from_der(s->libctx, s->propq, s->s_pub, s->s_pub_len, NULL);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_tbs_a(&tbs, s->own_pub, s->own_pub_len, s->s_pub, s->s_pub_len,
                     (const uint8_t *)s->identity, s->idlen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_sign(s, tbs.buf, tbs.len, s->hooks.sig_a, s->hooks.sig_a_len, &sig, &siglen);
    if (ret != P11C_OK)
        goto end;
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_HELLO);
    p11c_wbuf_u8(&msg, P11C_SUITE);
    p11c_wbuf_vec(&msg, s->own_pub, s->own_pub_len);
    p11c_wbuf_vec(&msg, s->s_pub, s->s_pub_len);
    p11c_wbuf_vec(&msg, (const uint8_t *)s->identity, s->idlen);
    p11c_wbuf_vec(&msg, sig, siglen);
    if (msg.bad) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    ret = p11c_session_transcript(s, msg.buf, msg.len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_queue(s, msg.buf, msg.len);
    msg.buf = NULL;
end:
    OPENSSL_free(sig);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    return ret;
}

p11c_err p11c_hello_read(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    p11c_err ret;
    P11C_RCUR c;
    P11C_WBUF tbs;
    uint8_t version, type, suite;
    const uint8_t *pub_a, *pub_s, *id_a, *sig_a;
    size_t pub_a_len, pub_s_len, id_a_len, sig_a_len;

    p11c_wbuf_init(&tbs);
    p11c_rcur_init(&c, msg, len);
    if (!p11c_rcur_u8(&c, &version) || !p11c_rcur_u8(&c, &type) || !p11c_rcur_u8(&c, &suite)) {
        ret = P11C_ERR_DECODE;
        goto end;
    }
    if (version != P11C_VERSION) {
        ret = P11C_ERR_VERSION;
        goto end;
    }
    if (type != P11C_MSG_HELLO) {
        ret = P11C_ERR_TYPE;
        goto end;
    }
    if (suite != P11C_SUITE) {
        ret = P11C_ERR_SUITE;
        goto end;
    }
    if ((ret = p11c_rcur_vec(&c, P11C_MAX_FIELD, &pub_a, &pub_a_len)) != P11C_OK ||
        (ret = p11c_rcur_vec(&c, P11C_MAX_FIELD, &pub_s, &pub_s_len)) != P11C_OK ||
        (ret = p11c_rcur_vec(&c, P11C_MAX_FIELD, &id_a, &id_a_len)) != P11C_OK ||
        (ret = p11c_rcur_vec(&c, P11C_MAX_FIELD, &sig_a, &sig_a_len)) != P11C_OK)
        goto end;
    if (c.left != 0) {
        ret = P11C_ERR_DECODE;
        goto end;
    }
    if ((ret = p11c_key_from_der(s->libctx, s->propq, pub_a, pub_a_len, &s->peer_key)) != P11C_OK ||
        (ret = p11c_key_from_der(s->libctx, s->propq, pub_s, pub_s_len, &s->S)) != P11C_OK)
        goto end;
    if (!p11c_identity_valid(id_a, id_a_len)) {
        ret = P11C_ERR_IDENTITY;
        goto end;
    }
    ret = p11c_tbs_a(&tbs, pub_a, pub_a_len, pub_s, pub_s_len, id_a, id_a_len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_pss_verify(s->libctx, s->propq, s->peer_key, tbs.buf, tbs.len, sig_a, sig_a_len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_peer_check(s, pub_a, pub_a_len, id_a, id_a_len);
    if (ret != P11C_OK)
        goto end;
    s->s_pub = OPENSSL_memdup(pub_s, pub_s_len);
    if (s->s_pub == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    s->s_pub_len = pub_s_len;
    ret = p11c_session_transcript(s, msg, len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_reply_write(s);
end:
    p11c_wbuf_cleanup(&tbs);
    return ret;
}
