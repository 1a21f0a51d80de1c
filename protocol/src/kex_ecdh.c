/*
 * Suite 0x02 key transport (spec section 10): Bob makes a fresh P-256 key E
 * for this REPLY alone and sends pub(E); both sides compute the ECDH secret
 * Z of S and E and extract Sec from it with HMAC-SHA-512 under a salt that
 * binds pub(S) and pub(E). Z and E die here; S dies in the REPLY reader.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "session.h"

#define Z_LEN 32

p11c_err p11c_ecdh_z(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *priv, EVP_PKEY *peer,
                     uint8_t z[Z_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, priv, propq);
    size_t n = 0;

    /* The peer's point was checked on the curve when its key was made. */
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) <= 0 ||
        EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) <= 0 || EVP_PKEY_derive(ctx, NULL, &n) <= 0 ||
        n != Z_LEN || EVP_PKEY_derive(ctx, z, &n) <= 0 || n != Z_LEN)
        goto end;
    ret = P11C_OK;
end:
    if (ret != P11C_OK)
        OPENSSL_cleanse(z, Z_LEN);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

p11c_err p11c_ecdh_sec(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t z[Z_LEN],
                       const uint8_t *pub_s, size_t pub_s_len, const uint8_t *pub_e,
                       size_t pub_e_len, uint8_t sec[P11C_SEC_LEN])
{
    p11c_err ret = P11C_ERR_MEMORY;
    P11C_WBUF salt;
    size_t n = 0;

    p11c_wbuf_init(&salt);
    p11c_wbuf_bytes(&salt, "P11C", 4);
    p11c_wbuf_u8(&salt, P11C_VERSION);
    p11c_wbuf_u8(&salt, P11C_SUITE_2);
    p11c_wbuf_bytes(&salt, "Sec", 3);
    p11c_wbuf_vec(&salt, pub_s, pub_s_len);
    p11c_wbuf_vec(&salt, pub_e, pub_e_len);
    if (salt.bad)
        goto end;
    ret = P11C_ERR_CRYPTO;
    if (EVP_Q_mac(libctx, "HMAC", propq, "SHA512", NULL, salt.buf, salt.len, z, Z_LEN, sec,
                  P11C_SEC_LEN, &n) == NULL ||
        n != P11C_SEC_LEN) {
        OPENSSL_cleanse(sec, P11C_SEC_LEN);
        goto end;
    }
    ret = P11C_OK;
end:
    p11c_wbuf_cleanup(&salt);
    return ret;
}

static p11c_err ecdh_respond(P11C_SESSION *s, uint8_t sec[P11C_SEC_LEN])
{
    p11c_err ret = P11C_OK;
    EVP_PKEY *e = NULL;
    uint8_t z[Z_LEN];

    if (s->hooks.e_key != NULL) {
        if (!EVP_PKEY_up_ref(s->hooks.e_key)) {
            ret = P11C_ERR_CRYPTO;
            goto end;
        }
        e = s->hooks.e_key;
    } else {
        ret = p11c_ec_session_key_make(s->libctx, s->sk_propq != NULL ? s->sk_propq : s->propq, &e);
    }
    if (ret != P11C_OK)
        goto end;
    ret = p11c_pub_der(e, &s->enc_sec, &s->enc_sec_len);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_ecdh_z(s->libctx, s->propq, e, s->S, z);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_ecdh_sec(s->libctx, s->propq, z, s->s_pub, s->s_pub_len, s->enc_sec, s->enc_sec_len,
                        sec);
end:
    OPENSSL_cleanse(z, sizeof(z));
    EVP_PKEY_free(e); /* E serves this REPLY alone */
    return ret;
}

static p11c_err ecdh_receive(P11C_SESSION *s, const uint8_t *field, size_t len,
                             uint8_t sec[P11C_SEC_LEN])
{
    p11c_err ret;
    EVP_PKEY *e = NULL;
    uint8_t z[Z_LEN];

    /* pub(E): P-256 only, on the curve (P11C_ERR_KEY otherwise). */
    ret = p11c_pub_decode(s->libctx, s->propq, field, len, P11C_KIND_P256, &e);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_ecdh_z(s->libctx, s->propq, s->S, e, z);
    if (ret != P11C_OK)
        goto end;
    ret = p11c_ecdh_sec(s->libctx, s->propq, z, s->s_pub, s->s_pub_len, field, len, sec);
end:
    OPENSSL_cleanse(z, sizeof(z));
    EVP_PKEY_free(e);
    return ret;
}

const P11C_KEX p11c_kex_ecdh = {
    .suite = P11C_SUITE_2,
    .long_term = P11C_KIND_ANY,
    .session = P11C_KIND_P256,
    .make_s = p11c_ec_session_key_make,
    .respond = ecdh_respond,
    .receive = ecdh_receive,
};
