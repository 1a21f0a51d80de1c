/*
 * EC public keys (spec section 10): pub(K) is the DER SubjectPublicKeyInfo
 * with id-ecPublicKey, the named curve (prime256v1 or secp384r1) and the
 * uncompressed point. DER leaves exactly one encoding of that structure per
 * point, so the decoder compares everything before the point with the one
 * canonical prefix of its curve: other curves, explicit parameters,
 * compressed points and every non-canonical length fail that comparison.
 * The point itself is checked by making the key and checking it.
 */
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "p11c_internal.h"

/* SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) } */
static const uint8_t spki_p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
/* SEQUENCE { SEQUENCE { id-ecPublicKey, secp384r1 }, BIT STRING (98 bytes) } */
static const uint8_t spki_p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
                                    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
                                    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};
static const uint8_t order_p256[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t order_p384[48] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73};

static const P11C_EC_CURVE curves[] = {
    {P11C_KIND_P256, "prime256v1", "P-256", "SHA256", 32, spki_p256, sizeof(spki_p256), order_p256},
    {P11C_KIND_P384, "secp384r1", "P-384", "SHA384", 48, spki_p384, sizeof(spki_p384), order_p384},
};

#define N_CURVES  (sizeof(curves) / sizeof(curves[0]))
#define MAX_POINT (1 + 2 * 48)

const P11C_EC_CURVE *p11c_ec_curve(unsigned kind)
{
    for (size_t i = 0; i < N_CURVES; i++)
        if (curves[i].kind == kind)
            return &curves[i];
    return NULL;
}

static const P11C_EC_CURVE *curve_of(const EVP_PKEY *key)
{
    char name[64];

    if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
        !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL))
        return NULL;
    for (size_t i = 0; i < N_CURVES; i++)
        if (strcasecmp(name, curves[i].group) == 0 || strcasecmp(name, curves[i].nist) == 0)
            return &curves[i];
    return NULL;
}

unsigned p11c_ec_kind(const EVP_PKEY *key)
{
    const P11C_EC_CURVE *cv = curve_of(key);

    return cv == NULL ? 0 : cv->kind;
}

/* The uncompressed point 04 || X || Y: from the encoded public key when the
 * provider gives it that way, else from the coordinates. */
static p11c_err ec_point(const EVP_PKEY *key, const P11C_EC_CURVE *cv, uint8_t pt[MAX_POINT])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    size_t n = 0, want = 1 + 2 * cv->coord;
    BIGNUM *x = NULL, *y = NULL;
    int got;

    ERR_set_mark();
    got = EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, MAX_POINT, &n);
    ERR_pop_to_mark();
    if (got && n == want && pt[0] == 0x04)
        return P11C_OK;
    if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
        !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
        goto end;
    pt[0] = 0x04;
    if (BN_bn2binpad(x, pt + 1, (int)cv->coord) < 0 ||
        BN_bn2binpad(y, pt + 1 + cv->coord, (int)cv->coord) < 0) {
        ret = P11C_ERR_KEY;
        goto end;
    }
    ret = P11C_OK;
end:
    BN_free(x);
    BN_free(y);
    return ret;
}

p11c_err p11c_ec_pub_der(const EVP_PKEY *key, uint8_t **der, size_t *len)
{
    p11c_err ret;
    const P11C_EC_CURVE *cv = curve_of(key);
    uint8_t pt[MAX_POINT], *out;
    size_t ptlen;

    if (cv == NULL)
        return P11C_ERR_KEY;
    ptlen = 1 + 2 * cv->coord;
    ret = ec_point(key, cv, pt);
    if (ret != P11C_OK)
        return ret;
    out = OPENSSL_malloc(cv->spki_len + ptlen);
    if (out == NULL)
        return P11C_ERR_MEMORY;
    memcpy(out, cv->spki, cv->spki_len);
    memcpy(out + cv->spki_len, pt, ptlen);
    *der = out;
    *len = cv->spki_len + ptlen;
    return P11C_OK;
}

p11c_err p11c_ec_key_from_der(OSSL_LIB_CTX *libctx, const char *propq, const uint8_t *der,
                              size_t len, unsigned kinds, EVP_PKEY **key)
{
    p11c_err ret = P11C_ERR_KEY;
    const P11C_EC_CURVE *cv = NULL;
    const uint8_t *pt;
    size_t ptlen = 0, relen = 0;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    EVP_PKEY *pk = NULL;
    uint8_t *re = NULL;
    int ok;

    for (size_t i = 0; i < N_CURVES && cv == NULL; i++) {
        ptlen = 1 + 2 * curves[i].coord;
        if ((kinds & curves[i].kind) && len == curves[i].spki_len + ptlen &&
            memcmp(der, curves[i].spki, curves[i].spki_len) == 0)
            cv = &curves[i];
    }
    if (cv == NULL)
        goto end;
    pt = der + cv->spki_len;
    if (pt[0] != 0x04) /* compressed or hybrid */
        goto end;
    if (key == NULL) {
        ret = P11C_OK;
        goto end;
    }
    ret = P11C_ERR_CRYPTO;
    ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", propq);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0)
        goto end;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)cv->group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptlen);
    params[2] = OSSL_PARAM_construct_end();
    /* A point off the curve is refused here or by the check below: the
     * peer's fault, not the library's, so what either raises is dropped.
     * The quick check (on the curve, not at infinity) is the whole check
     * here: P-256 and P-384 have cofactor 1, so a point on the curve is in
     * the group of order n, and the full check's n * Q would cost as much
     * as the ECDH itself. */
    ERR_set_mark();
    ok = EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) > 0 &&
         (chk = EVP_PKEY_CTX_new_from_pkey(libctx, pk, propq)) != NULL &&
         EVP_PKEY_public_check_quick(chk) == 1;
    ERR_pop_to_mark();
    if (!ok) {
        ret = P11C_ERR_KEY;
        goto end;
    }
    /* As for RSA: the key must encode back to exactly the bytes received. */
    ret = p11c_ec_pub_der(pk, &re, &relen);
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
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

p11c_err p11c_ec_session_key_make(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY **key)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", propq);
    EVP_PKEY *pk = NULL;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0 || EVP_PKEY_keygen(ctx, &pk) <= 0)
        goto end;
    *key = pk;
    ret = P11C_OK;
end:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}
