/* HELLO (spec section 4, step 1): the initiator's keys, identity and Sig_A. */
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

p11c_err p11c_tbs_a(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_a, size_t pub_a_len,
                    const uint8_t *pub_s, size_t pub_s_len, const uint8_t *id_a, size_t id_a_len)
{
    p11c_tbs_label(w, suite, 'A');
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
        ret = s->kex->make_s(s->libctx, s->sk_propq != NULL ? s->sk_propq : s->propq, &s->S);
    }
    if (ret != P11C_OK)
        goto end;
    ret = p11c_pub_der(s->S, &s->s_pub, &s->s_pub_len);
    if (ret != P11C_OK)
        goto end;
    /* A session key of the wrong kind (from session_key_fn) never leaves. */
    ret = p11c_pub_decode(s->libctx, s->propq, s->s_pub, s->s_pub_len, s->kex->session, NULL);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_tbs_a(&tbs, s->kex->suite, s->own_pub, s->own_pub_len, s->s_pub, s->s_pub_len,
                     (const uint8_t *)s->identity, s->idlen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_sign(s, tbs.buf, tbs.len, s->hooks.sig_a, s->hooks.sig_a_len, &sig, &siglen);
    if (ret != P11C_OK)
        goto end;
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_HELLO);
    p11c_wbuf_u8(&msg, s->kex->suite);
    p11c_wbuf_vec(&msg, s->own_pub, s->own_pub_len);
    p11c_wbuf_vec(&msg, s->s_pub, s->s_pub_len);
    p11c_wbuf_vec(&msg, (const uint8_t *)s->identity, s->idlen);
    p11c_wbuf_vec(&msg, sig, siglen);
    ret = p11c_hs_send(s, &msg);
end:
    OPENSSL_free(sig);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    return ret;
}

p11c_err p11c_hello_read(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    enum { PUB_A, PUB_S, ID_A, SIG_A, N_FIELDS };
    p11c_err ret;
    P11C_RCUR c;
    P11C_WBUF tbs;
    P11C_FIELD f[N_FIELDS];
    uint8_t suite;

    p11c_wbuf_init(&tbs);
    if ((ret = p11c_hs_open(&c, msg, len, P11C_MSG_HELLO)) != P11C_OK)
        goto end;
    if (!p11c_rcur_u8(&c, &suite)) {
        ret = P11C_ERR_DECODE;
        goto end;
    }
    if ((ret = p11c_session_suite_accept(s, suite)) != P11C_OK ||
        (ret = p11c_hs_fields(&c, f, N_FIELDS)) != P11C_OK)
        goto end;
    if ((ret = p11c_pub_decode(s->libctx, s->propq, f[PUB_A].p, f[PUB_A].len, s->kex->long_term,
                               &s->peer_key)) != P11C_OK ||
        (ret = p11c_pub_decode(s->libctx, s->propq, f[PUB_S].p, f[PUB_S].len, s->kex->session,
                               &s->S)) != P11C_OK)
        goto end;
    if (!p11c_identity_valid(f[ID_A].p, f[ID_A].len)) {
        ret = P11C_ERR_IDENTITY;
        goto end;
    }
    ret = p11c_tbs_a(&tbs, suite, f[PUB_A].p, f[PUB_A].len, f[PUB_S].p, f[PUB_S].len, f[ID_A].p,
                     f[ID_A].len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_verify(s, &tbs, f[SIG_A].p, f[SIG_A].len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_peer_check(s, f[PUB_A].p, f[PUB_A].len, f[ID_A].p, f[ID_A].len);
    if (ret != P11C_OK)
        goto end;
    s->s_pub = OPENSSL_memdup(f[PUB_S].p, f[PUB_S].len);
    if (s->s_pub == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    s->s_pub_len = f[PUB_S].len;
    ret = p11c_session_transcript(s, msg, len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_reply_write(s);
end:
    /* A refused HELLO leaves no suite behind (p11c_session_suite() says 0). */
    if (ret != P11C_OK)
        s->kex = NULL;
    p11c_wbuf_cleanup(&tbs);
    return ret;
}
