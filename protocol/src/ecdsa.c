/*
 * ECDSA (spec section 10): SHA-256 on P-256, SHA-384 on P-384, the signature
 * as the DER ECDSA-Sig-Value SEQUENCE { r, s }. The verifier takes only the
 * canonical DER of r and s in [1, n-1], whatever the provider would accept,
 * so that a signature has exactly one encoding on the wire.
 */
#include <string.h>

#include <openssl/err.h>

#include "p11c_internal.h"

static const P11C_EC_CURVE *key_curve(const EVP_PKEY *key)
{
    return p11c_ec_curve(p11c_ec_kind(key));
}

p11c_err p11c_ecdsa_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, uint8_t **sig, size_t *siglen)
{
    p11c_err ret = P11C_ERR_KEY;
    const P11C_EC_CURVE *cv = key_curve(key);
    EVP_MD_CTX *md = NULL;
    uint8_t *out = NULL;
    size_t outlen = 0, cap;

    if (cv == NULL)
        goto end;
    ret = P11C_ERR_MEMORY;
    if ((md = EVP_MD_CTX_new()) == NULL)
        goto end;
    ret = P11C_ERR_CRYPTO;
    if (EVP_DigestSignInit_ex(md, NULL, cv->md, libctx, propq, key, NULL) <= 0 ||
        EVP_DigestSign(md, NULL, &outlen, tbs, tbslen) <= 0)
        goto end;
    cap = outlen;
    out = OPENSSL_malloc(cap);
    if (out == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    /* OpenSSL 3.0's ECDSA reports success with a length of (unsigned)-1 when
     * encoding the signature runs out of memory: a length beyond the buffer
     * is a failure, never a signature. */
    if (EVP_DigestSign(md, out, &outlen, tbs, tbslen) <= 0 || outlen == 0 || outlen > cap)
        goto end;
    *sig = out;
    *siglen = outlen;
    out = NULL;
    ret = P11C_OK;
end:
    OPENSSL_free(out);
    EVP_MD_CTX_free(md);
    return ret;
}

/* 1 when the magnitude v (no leading zero byte) is below n (cv->coord bytes). */
static int below_order(const P11C_EC_CURVE *cv, const uint8_t *v, size_t len)
{
    if (len != cv->coord)
        return len < cv->coord;
    return memcmp(v, cv->order, len) < 0;
}

/* SEQUENCE { INTEGER r, INTEGER s }, canonical, nothing after it, r and s in [1, n-1]. */
static int sig_canonical(const P11C_EC_CURVE *cv, const uint8_t *sig, size_t siglen)
{
    P11C_RCUR c;
    uint8_t tag;
    size_t seqlen, rlen, slen;
    const uint8_t *r, *s;

    p11c_rcur_init(&c, sig, siglen);
    /* der_read_uint refuses zero, negative and padded INTEGERs. */
    return p11c_rcur_u8(&c, &tag) && tag == 0x30 && p11c_der_read_len(&c, &seqlen) &&
           seqlen == c.left && p11c_der_read_uint(&c, &r, &rlen) &&
           p11c_der_read_uint(&c, &s, &slen) && c.left == 0 && below_order(cv, r, rlen) &&
           below_order(cv, s, slen);
}

p11c_err p11c_ecdsa_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                           const uint8_t *tbs, size_t tbslen, const uint8_t *sig, size_t siglen)
{
    p11c_err ret = P11C_ERR_KEY;
    const P11C_EC_CURVE *cv = key_curve(key);
    EVP_MD_CTX *md = NULL;
    int rv;

    if (cv == NULL)
        goto end;
    if (!sig_canonical(cv, sig, siglen)) {
        ret = P11C_ERR_SIGNATURE;
        goto end;
    }
    ret = P11C_ERR_MEMORY;
    if ((md = EVP_MD_CTX_new()) == NULL)
        goto end;
    ret = P11C_ERR_CRYPTO;
    if (EVP_DigestVerifyInit_ex(md, NULL, cv->md, libctx, propq, key, NULL) <= 0)
        goto end;
    /* As for PSS: a bad signature is an answer; only its own entries are dropped. */
    ERR_set_mark();
    rv = EVP_DigestVerify(md, sig, siglen, tbs, tbslen);
    ERR_pop_to_mark();
    ret = rv == 1 ? P11C_OK : P11C_ERR_SIGNATURE;
end:
    EVP_MD_CTX_free(md);
    return ret;
}
