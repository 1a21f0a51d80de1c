/*
 * Suite 0x01 key transport (spec section 4): Bob draws Sec and sends
 * EncSec = OAEP-Enc(S, Sec); Alice decrypts it with S.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "session.h"

static p11c_err oaep_respond(P11C_SESSION *s, uint8_t sec[P11C_SEC_LEN])
{
    if (s->hooks.sec != NULL)
        memcpy(sec, s->hooks.sec, P11C_SEC_LEN);
    else if (RAND_bytes_ex(s->libctx, sec, P11C_SEC_LEN, 0) != 1)
        return P11C_ERR_CRYPTO;
    if (s->hooks.enc_sec != NULL) {
        s->enc_sec = OPENSSL_memdup(s->hooks.enc_sec, s->hooks.enc_sec_len);
        s->enc_sec_len = s->hooks.enc_sec_len;
        return s->enc_sec == NULL ? P11C_ERR_MEMORY : P11C_OK;
    }
    return p11c_oaep_encrypt(s->libctx, s->propq, s->S, sec, P11C_SEC_LEN, &s->enc_sec,
                             &s->enc_sec_len);
}

static p11c_err oaep_receive(P11C_SESSION *s, const uint8_t *field, size_t len,
                             uint8_t sec[P11C_SEC_LEN])
{
    if (s->hooks.sec != NULL) {
        memcpy(sec, s->hooks.sec, P11C_SEC_LEN);
        return P11C_OK;
    }
    return p11c_oaep_decrypt_sec(s->libctx, s->propq, s->S, field, len, sec);
}

const P11C_KEX p11c_kex_oaep = {
    .suite = P11C_SUITE_1,
    .long_term = P11C_KIND_RSA,
    .session = P11C_KIND_RSA,
    .make_s = p11c_session_key_make,
    .respond = oaep_respond,
    .receive = oaep_receive,
};
