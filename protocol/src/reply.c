/* REPLY (spec section 4, step 2): Bob's key, the suite's key transport
 * field (EncSec or pub(E)), identity, Sig_B. */
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

p11c_err p11c_tbs_b(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_b, size_t pub_b_len,
                    const uint8_t *enc_sec, size_t enc_sec_len, const uint8_t *pub_a,
                    size_t pub_a_len, const uint8_t *pub_s, size_t pub_s_len, const uint8_t *id_a,
                    size_t id_a_len, const uint8_t *id_b, size_t id_b_len)
{
    p11c_tbs_label(w, suite, 'B');
    p11c_wbuf_vec(w, pub_b, pub_b_len);
    p11c_wbuf_vec(w, enc_sec, enc_sec_len);
    p11c_wbuf_vec(w, pub_a, pub_a_len);
    p11c_wbuf_vec(w, pub_s, pub_s_len);
    p11c_wbuf_vec(w, id_a, id_a_len);
    p11c_wbuf_vec(w, id_b, id_b_len);
    return w->bad ? P11C_ERR_MEMORY : P11C_OK;
}

p11c_err p11c_reply_write(P11C_SESSION *s)
{
    p11c_err ret;
    uint8_t sec[P11C_SEC_LEN];
    P11C_WBUF tbs, msg;
    uint8_t *sig = NULL;
    size_t siglen = 0;

    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    ret = s->kex->respond(s, sec);
    EVP_PKEY_free(s->S);
    s->S = NULL;
    if (ret != P11C_OK)
        goto end;
    ret = p11c_tbs_b(&tbs, s->kex->suite, s->own_pub, s->own_pub_len, s->enc_sec, s->enc_sec_len,
                     s->peer_pub, s->peer_pub_len, s->s_pub, s->s_pub_len, s->peer_id,
                     s->peer_idlen, (const uint8_t *)s->identity, s->idlen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_sign(s, tbs.buf, tbs.len, s->hooks.sig_b, s->hooks.sig_b_len, &sig, &siglen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_keys(s, sec);
    if (ret != P11C_OK)
        goto end;
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_REPLY);
    p11c_wbuf_vec(&msg, s->own_pub, s->own_pub_len);
    p11c_wbuf_vec(&msg, s->enc_sec, s->enc_sec_len);
    p11c_wbuf_vec(&msg, (const uint8_t *)s->identity, s->idlen);
    p11c_wbuf_vec(&msg, sig, siglen);
    ret = p11c_hs_send(s, &msg);
end:
    OPENSSL_cleanse(sec, sizeof(sec));
    OPENSSL_free(sig);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    return ret;
}

p11c_err p11c_reply_read(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    enum { PUB_B, ENC_SEC, ID_B, SIG_B, N_FIELDS };
    p11c_err ret;
    P11C_RCUR c;
    P11C_WBUF tbs;
    P11C_FIELD f[N_FIELDS];
    uint8_t sec[P11C_SEC_LEN];

    p11c_wbuf_init(&tbs);
    if ((ret = p11c_hs_open(&c, msg, len, P11C_MSG_REPLY)) != P11C_OK ||
        (ret = p11c_hs_fields(&c, f, N_FIELDS)) != P11C_OK)
        goto end;
    ret = p11c_pub_decode(s->libctx, s->propq, f[PUB_B].p, f[PUB_B].len, s->kex->long_term,
                          &s->peer_key);
    if (ret != P11C_OK)
        goto end;
    if (!p11c_identity_valid(f[ID_B].p, f[ID_B].len)) {
        ret = P11C_ERR_IDENTITY;
        goto end;
    }
    /* TBS_B rebuilt from our own pub(A), pub(S), id_A: a REPLY made for another
     * HELLO does not verify. */
    ret = p11c_tbs_b(&tbs, s->kex->suite, f[PUB_B].p, f[PUB_B].len, f[ENC_SEC].p, f[ENC_SEC].len,
                     s->own_pub, s->own_pub_len, s->s_pub, s->s_pub_len,
                     (const uint8_t *)s->identity, s->idlen, f[ID_B].p, f[ID_B].len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_verify(s, &tbs, f[SIG_B].p, f[SIG_B].len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_peer_check(s, f[PUB_B].p, f[PUB_B].len, f[ID_B].p, f[ID_B].len);
    if (ret != P11C_OK)
        goto end;
    ret = s->kex->receive(s, f[ENC_SEC].p, f[ENC_SEC].len, sec);
    /* S has done its one job: destroying it is what gives forward secrecy. */
    EVP_PKEY_free(s->S);
    s->S = NULL;
    if (ret != P11C_OK)
        goto end;
    s->enc_sec = OPENSSL_memdup(f[ENC_SEC].p, f[ENC_SEC].len);
    if (s->enc_sec == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    s->enc_sec_len = f[ENC_SEC].len;
    ret = p11c_session_keys(s, sec);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_transcript(s, msg, len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_confirm_write(s);
end:
    OPENSSL_cleanse(sec, sizeof(sec));
    p11c_wbuf_cleanup(&tbs);
    return ret;
}
