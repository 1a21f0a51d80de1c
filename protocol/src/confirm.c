/* CONFIRM (spec section 4, step 3): Sig_C and Confirm_A. */
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

static const char label_a[] = "P11C confirm A";
static const char label_b[] = "P11C confirm B";

p11c_err p11c_tbs_c(P11C_WBUF *w, uint8_t suite, const uint8_t *pub_a, size_t pub_a_len,
                    const uint8_t *enc_sec, size_t enc_sec_len, const uint8_t *pub_b,
                    size_t pub_b_len, const uint8_t *id_a, size_t id_a_len, const uint8_t *id_b,
                    size_t id_b_len)
{
    p11c_tbs_label(w, suite, 'C');
    p11c_wbuf_vec(w, pub_a, pub_a_len);
    p11c_wbuf_vec(w, enc_sec, enc_sec_len);
    p11c_wbuf_vec(w, pub_b, pub_b_len);
    p11c_wbuf_vec(w, id_a, id_a_len);
    p11c_wbuf_vec(w, id_b, id_b_len);
    return w->bad ? P11C_ERR_MEMORY : P11C_OK;
}

/* Confirm_A = HMAC(MACKey, "P11C confirm A" || SHA-256(HELLO || REPLY || Sig_C)) */
static p11c_err confirm_a(P11C_SESSION *s, const uint8_t *sig, size_t siglen,
                          uint8_t out[P11C_MAC_LEN])
{
    uint8_t digest[32];
    p11c_err ret = p11c_session_transcript_peek(s, sig, siglen, digest);

    if (ret == P11C_OK)
        ret = p11c_rec_confirm(&s->rec, label_a, digest, out);
    OPENSSL_cleanse(digest, sizeof(digest));
    return ret;
}

/* Confirm_B = HMAC(MACKey, "P11C confirm B" || SHA-256(HELLO || REPLY || CONFIRM)); the
 * transcript already holds CONFIRM. */
p11c_err p11c_confirm_b(P11C_SESSION *s, uint8_t out[P11C_MAC_LEN])
{
    uint8_t digest[32];
    p11c_err ret = p11c_session_transcript_peek(s, NULL, 0, digest);

    if (ret == P11C_OK)
        ret = p11c_rec_confirm(&s->rec, label_b, digest, out);
    OPENSSL_cleanse(digest, sizeof(digest));
    return ret;
}

p11c_err p11c_confirm_write(P11C_SESSION *s)
{
    p11c_err ret;
    P11C_WBUF tbs, msg;
    uint8_t *sig = NULL, conf[P11C_MAC_LEN];
    size_t siglen = 0;

    p11c_wbuf_init(&tbs);
    p11c_wbuf_init(&msg);
    ret = p11c_tbs_c(&tbs, s->kex->suite, s->own_pub, s->own_pub_len, s->enc_sec, s->enc_sec_len,
                     s->peer_pub, s->peer_pub_len, (const uint8_t *)s->identity, s->idlen,
                     s->peer_id, s->peer_idlen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_sign(s, tbs.buf, tbs.len, s->hooks.sig_c, s->hooks.sig_c_len, &sig, &siglen);
    if (ret != P11C_OK)
        goto end;
    ret = confirm_a(s, sig, siglen, conf);
    if (ret != P11C_OK)
        goto end;
    p11c_wbuf_u8(&msg, P11C_VERSION);
    p11c_wbuf_u8(&msg, P11C_MSG_CONFIRM);
    p11c_wbuf_vec(&msg, sig, siglen);
    p11c_wbuf_bytes(&msg, conf, sizeof(conf));
    ret = p11c_hs_send(s, &msg);
end:
    OPENSSL_cleanse(conf, sizeof(conf));
    OPENSSL_free(sig);
    p11c_wbuf_cleanup(&tbs);
    p11c_wbuf_cleanup(&msg);
    return ret;
}

p11c_err p11c_confirm_read(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    p11c_err ret;
    P11C_RCUR c;
    P11C_WBUF tbs;
    uint8_t expect[P11C_MAC_LEN], conf_b[P11C_MAC_LEN];
    const uint8_t *sig, *conf;
    size_t siglen;

    p11c_wbuf_init(&tbs);
    if ((ret = p11c_hs_open(&c, msg, len, P11C_MSG_CONFIRM)) != P11C_OK ||
        (ret = p11c_rcur_vec(&c, P11C_MAX_FIELD, &sig, &siglen)) != P11C_OK)
        goto end;
    if (!p11c_rcur_bytes(&c, P11C_MAC_LEN, &conf) || c.left != 0) {
        ret = P11C_ERR_DECODE;
        goto end;
    }
    ret = p11c_tbs_c(&tbs, s->kex->suite, s->peer_pub, s->peer_pub_len, s->enc_sec, s->enc_sec_len,
                     s->own_pub, s->own_pub_len, s->peer_id, s->peer_idlen,
                     (const uint8_t *)s->identity, s->idlen);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_session_verify(s, &tbs, sig, siglen);
    if (ret != P11C_OK)
        goto end;
    ret = confirm_a(s, sig, siglen, expect);
    if (ret != P11C_OK)
        goto end;
    if (CRYPTO_memcmp(expect, conf, P11C_MAC_LEN) != 0) {
        ret = P11C_ERR_CONFIRM;
        goto end;
    }
    ret = p11c_session_transcript(s, msg, len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_confirm_b(s, conf_b);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_finish_write(s, conf_b);
end:
    OPENSSL_cleanse(expect, sizeof(expect));
    OPENSSL_cleanse(conf_b, sizeof(conf_b));
    p11c_wbuf_cleanup(&tbs);
    return ret;
}
