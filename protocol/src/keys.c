/* RSA keys: pub(K) encoding and strict decoding, PSS, OAEP, session keys. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "p11c_internal.h"

#define RSA_E 65537

static void der_len(P11C_WBUF *w, size_t n)
{
    if (n < 0x80) {
        p11c_wbuf_u8(w, (uint8_t)n);
    } else if (n < 0x100) {
        p11c_wbuf_u8(w, 0x81);
        p11c_wbuf_u8(w, (uint8_t)n);
    } else {
        p11c_wbuf_u8(w, 0x82);
        p11c_wbuf_u8(w, (uint8_t)(n >> 8));
        p11c_wbuf_u8(w, (uint8_t)n);
    }
}

static size_t der_len_size(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : 3;
}

/* INTEGER content of a positive big-endian number (no leading zeros in `b`). */
static size_t int_content_len(const uint8_t *b, size_t n)
{
    return n + ((b[0] & 0x80) ? 1 : 0);
}

static void der_int(P11C_WBUF *w, const uint8_t *b, size_t n)
{
    p11c_wbuf_u8(w, 0x02);
    der_len(w, int_content_len(b, n));
    if (b[0] & 0x80)
        p11c_wbuf_u8(w, 0x00);
    p11c_wbuf_bytes(w, b, n);
}

p11c_err p11c_rsa_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len)
{
    p11c_err ret = P11C_ERR_KEY;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t *nb = NULL, *eb = NULL;
    int nlen, elen;
    size_t body;
    P11C_WBUF w;

    p11c_wbuf_init(&w);
    if (key == NULL || der == NULL || len == NULL) {
        ret = P11C_ERR_ARG;
        goto end;
    }
    if (!EVP_PKEY_is_a(key, "RSA"))
        goto end;
    /* An RSA key whose numbers cannot be read: the provider (or memory) failed,
     * and OpenSSL's queue says which; the key itself is not known to be bad. */
    if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e)) {
        ret = P11C_ERR_CRYPTO;
        goto end;
    }
    if (BN_is_zero(n) || BN_is_zero(e) || BN_is_negative(n) || BN_is_negative(e))
        goto end;
    nlen = BN_num_bytes(n);
    elen = BN_num_bytes(e);
    if (nlen > 4096 || elen > 4096)
        goto end;
    nb = OPENSSL_malloc((size_t)nlen);
    eb = OPENSSL_malloc((size_t)elen);
    if (nb == NULL || eb == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    BN_bn2bin(n, nb);
    BN_bn2bin(e, eb);
    body = 1 + der_len_size(int_content_len(nb, (size_t)nlen)) + int_content_len(nb, (size_t)nlen) +
           1 + der_len_size(int_content_len(eb, (size_t)elen)) + int_content_len(eb, (size_t)elen);
    p11c_wbuf_u8(&w, 0x30);
    der_len(&w, body);
    der_int(&w, nb, (size_t)nlen);
    der_int(&w, eb, (size_t)elen);
    if (w.bad) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    *der = w.buf;
    *len = w.len;
    w.buf = NULL;
    ret = P11C_OK;
end:
    p11c_wbuf_cleanup(&w);
    OPENSSL_free(nb);
    OPENSSL_free(eb);
    BN_free(n);
    BN_free(e);
    return ret;
}

static int modulus_bits(const uint8_t *n, size_t len)
{
    int bits = (int)len * 8;
    uint8_t top = n[0];

    while (!(top & 0x80)) {
        top <<= 1;
        bits--;
    }
    return bits;
}

p11c_err p11c_key_from_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der, size_t len,
                           EVP_PKEY **key)
{
    static const uint8_t e65537[] = {0x01, 0x00, 0x01};
    p11c_err ret = P11C_ERR_KEY;
    P11C_RCUR c;
    uint8_t tag;
    size_t seqlen, nlen, elen, relen = 0;
    const uint8_t *nb, *eb;
    int bits;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    uint8_t *re = NULL;

    p11c_rcur_init(&c, der, len);
    if (!p11c_rcur_u8(&c, &tag) || tag != 0x30 || !p11c_der_read_len(&c, &seqlen) ||
        seqlen != c.left || !p11c_der_read_uint(&c, &nb, &nlen) ||
        !p11c_der_read_uint(&c, &eb, &elen) || c.left != 0)
        goto end;
    if (elen != sizeof(e65537) || memcmp(eb, e65537, elen) != 0)
        goto end;
    bits = modulus_bits(nb, nlen);
    if (bits != 2048 && bits != 3072 && bits != 4096)
        goto end;
    if (key == NULL) {
        ret = P11C_OK;
        goto end;
    }
    ret = P11C_ERR_MEMORY;
    bn = BN_bin2bn(nb, (int)nlen, NULL);
    be = BN_bin2bn(eb, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (bn == NULL || be == NULL || bld == NULL ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto end;
    ret = P11C_ERR_CRYPTO;
    ctx = EVP_PKEY_CTX_new_from_name(libctx, "RSA", propq);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto end;
    /* Belt and braces: the key must encode back to exactly the bytes received. */
    ret = p11c_rsa_pub_der(pk, &re, &relen);
    if (ret != P11C_OK)
        goto end;
    if (relen != len || memcmp(re, der, len) != 0) {
        ret = P11C_ERR_KEY;
        goto end;
    }
    *key = pk;
    pk = NULL;
    ret = P11C_OK;
end:
    OPENSSL_free(re);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return ret;
}

static int pss_params(EVP_PKEY_CTX *pctx, const char *propq)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, P11C_PSS_SALT) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", propq) > 0;
}

p11c_err p11c_pss_sign(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                       size_t tbslen, uint8_t **sig, size_t *siglen)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *out = NULL;
    size_t outlen = 0;

    if (md == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (EVP_DigestSignInit_ex(md, &pctx, "SHA256", libctx, propq, key, NULL) <= 0 ||
        !pss_params(pctx, propq) || EVP_DigestSign(md, NULL, &outlen, tbs, tbslen) <= 0)
        goto end;
    out = OPENSSL_malloc(outlen);
    if (out == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (EVP_DigestSign(md, out, &outlen, tbs, tbslen) <= 0)
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

p11c_err p11c_pss_verify(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, const uint8_t *tbs,
                         size_t tbslen, const uint8_t *sig, size_t siglen)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rv;

    if (md == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", libctx, propq, key, NULL) <= 0 ||
        !pss_params(pctx, propq))
        goto end;
    /* A bad signature is an answer, not a failure of the library: the entries
     * this one call raises are dropped, and nothing older. */
    ERR_set_mark();
    rv = EVP_DigestVerify(md, sig, siglen, tbs, tbslen);
    ERR_pop_to_mark();
    ret = rv == 1 ? P11C_OK : P11C_ERR_SIGNATURE;
end:
    EVP_MD_CTX_free(md);
    return ret;
}

static EVP_PKEY_CTX *oaep_ctx(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, int enc)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, propq);

    if (ctx == NULL)
        return NULL;
    if ((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", propq) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", propq) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

p11c_err p11c_oaep_encrypt(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                           const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = oaep_ctx(libctx, propq, key, 1);
    uint8_t *buf = NULL;
    size_t n = 0;

    if (ctx == NULL || EVP_PKEY_encrypt(ctx, NULL, &n, in, inlen) <= 0)
        goto end;
    buf = OPENSSL_malloc(n);
    if (buf == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (EVP_PKEY_encrypt(ctx, buf, &n, in, inlen) <= 0)
        goto end;
    *out = buf;
    *outlen = n;
    buf = NULL;
    ret = P11C_OK;
end:
    OPENSSL_free(buf);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

p11c_err p11c_oaep_decrypt_sec(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                               const uint8_t *in, size_t inlen, uint8_t sec[P11C_SEC_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = oaep_ctx(libctx, propq, key, 0);
    uint8_t *buf = NULL;
    size_t cap = 0, n;

    if (ctx == NULL || EVP_PKEY_decrypt(ctx, NULL, &cap, in, inlen) <= 0)
        goto end;
    buf = OPENSSL_malloc(cap);
    if (buf == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    n = cap;
    /* Whatever the provider raised stays in the queue: with a token key it may
     * be a device error rather than a bad EncSec. */
    if (EVP_PKEY_decrypt(ctx, buf, &n, in, inlen) <= 0 || n != P11C_SEC_LEN) {
        ret = P11C_ERR_SECRET;
        goto end;
    }
    memcpy(sec, buf, P11C_SEC_LEN);
    ret = P11C_OK;
end:
    OPENSSL_clear_free(buf, cap);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

p11c_err p11c_session_key_make(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY **key)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "RSA", propq);
    BIGNUM *e = BN_new();
    EVP_PKEY *pk = NULL;

    if (ctx == NULL || e == NULL || !BN_set_word(e, RSA_E) || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) <= 0 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0 || EVP_PKEY_keygen(ctx, &pk) <= 0)
        goto end;
    *key = pk;
    ret = P11C_OK;
end:
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}
