/*
 * Encoders for the public half of token keys: SubjectPublicKeyInfo and
 * PKCS#1 RSAPublicKey, DER and PEM. The bytes come from OpenSSL's default
 * provider (in our private context), so `openssl pkey -pubout` writes exactly
 * what it writes for a software key. A private key is never encoded.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "prov.h"

static OSSL_FUNC_encoder_newctx_fn enc_newctx;
static OSSL_FUNC_encoder_freectx_fn enc_freectx;
static OSSL_FUNC_encoder_does_selection_fn enc_does_selection;
static OSSL_FUNC_encoder_import_object_fn enc_import_object;
static OSSL_FUNC_encoder_free_object_fn enc_free_object;
static OSSL_FUNC_encoder_encode_fn enc_spki_der, enc_spki_pem, enc_pkcs1_der, enc_pkcs1_pem;

enum { SPKI_DER, SPKI_PEM, PKCS1_DER, PKCS1_PEM };

static void *enc_newctx(void *provctx)
{
    return provctx;
}

static void enc_freectx(void *ctx)
{
    (void)ctx;
}

static int enc_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;
}

/* A key of another provider, given as parameters: hold its public half. */
static void *enc_import_object(void *ctx, int selection, const OSSL_PARAM params[])
{
    P11C_PROV *prov = ctx;
    const OSSL_PARAM *pn = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N);
    const OSSL_PARAM *pe = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E);
    P11C_PKEY *pk = NULL;
    BIGNUM *n = NULL, *e = NULL;
    uint8_t nb[1024], eb[16];
    int nlen, elen;

    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0 || pn == NULL || pe == NULL ||
        !OSSL_PARAM_get_BN(pn, &n) || !OSSL_PARAM_get_BN(pe, &e) ||
        BN_num_bytes(n) > (int)sizeof(nb) || BN_num_bytes(e) > (int)sizeof(eb))
        goto end;
    nlen = BN_bn2bin(n, nb);
    elen = BN_bn2bin(e, eb);
    pk = p11c_pkey_new(prov);
    if (pk == NULL)
        goto end;
    pk->public_only = 1;
    pk->priv = 0;
    if (!p11c_pkey_set_public(pk, nb, (size_t)nlen, eb, (size_t)elen)) {
        p11c_pkey_free(pk);
        pk = NULL;
    }
end:
    BN_free(n);
    BN_free(e);
    return pk;
}

static void enc_free_object(void *obj)
{
    p11c_pkey_free(obj);
}

static int encode(P11C_PROV *prov, int form, OSSL_CORE_BIO *cout, const void *obj_raw,
                  const OSSL_PARAM obj_abstract[], int selection)
{
    const P11C_PKEY *pk = obj_raw;
    unsigned char *der = NULL;
    BIO *mem = NULL;
    const char *data = NULL;
    long len = 0;
    int dlen = -1, ret = 0;
    size_t written = 0;

    (void)obj_abstract;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        P11C_RAISE(prov, P11C_R_PRIVATE_EXPORT,
                   "the private key stays in the token; only the public key can be written");
        return 0;
    }
    if (pk == NULL || pk->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
        return 0;
    if (form == SPKI_DER || form == SPKI_PEM)
        dlen = i2d_PUBKEY(pk->pub, &der);
    else
        dlen = i2d_PublicKey(pk->pub, &der);
    if (dlen <= 0)
        goto end;
    if (form == SPKI_DER || form == PKCS1_DER) {
        data = (const char *)der;
        len = dlen;
    } else {
        mem = BIO_new(BIO_s_mem());
        if (mem == NULL ||
            !PEM_write_bio(mem, form == SPKI_PEM ? "PUBLIC KEY" : "RSA PUBLIC KEY", "", der, dlen))
            goto end;
        len = BIO_get_mem_data(mem, (char **)&data);
    }
    ret = len > 0 && prov->c_bio_write_ex(cout, data, (size_t)len, &written) &&
          written == (size_t)len;
end:
    OPENSSL_free(der);
    BIO_free(mem);
    return ret;
}

#define ENCODE_FN(fn, form)                                                                        \
    static int fn(void *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,                             \
                  const OSSL_PARAM obj_abstract[], int selection, OSSL_PASSPHRASE_CALLBACK *cb,    \
                  void *cbarg)                                                                     \
    {                                                                                              \
        (void)cb;                                                                                  \
        (void)cbarg;                                                                               \
        return encode(ctx, form, cout, obj_raw, obj_abstract, selection);                          \
    }
ENCODE_FN(enc_spki_der, SPKI_DER)
ENCODE_FN(enc_spki_pem, SPKI_PEM)
ENCODE_FN(enc_pkcs1_der, PKCS1_DER)
ENCODE_FN(enc_pkcs1_pem, PKCS1_PEM)

#define ENCODER_TABLE(table, fn)                                                                   \
    const OSSL_DISPATCH table[] = {                                                                \
        P11C_DISPATCH(ENCODER, encoder, NEWCTX, newctx, enc_newctx),                               \
        P11C_DISPATCH(ENCODER, encoder, FREECTX, freectx, enc_freectx),                            \
        P11C_DISPATCH(ENCODER, encoder, DOES_SELECTION, does_selection, enc_does_selection),       \
        P11C_DISPATCH(ENCODER, encoder, IMPORT_OBJECT, import_object, enc_import_object),          \
        P11C_DISPATCH(ENCODER, encoder, FREE_OBJECT, free_object, enc_free_object),                \
        P11C_DISPATCH(ENCODER, encoder, ENCODE, encode, fn),                                       \
        P11C_DISPATCH_END,                                                                         \
    }
ENCODER_TABLE(p11c_spki_der_encoder_functions, enc_spki_der);
ENCODER_TABLE(p11c_spki_pem_encoder_functions, enc_spki_pem);
ENCODER_TABLE(p11c_pkcs1_der_encoder_functions, enc_pkcs1_der);
ENCODER_TABLE(p11c_pkcs1_pem_encoder_functions, enc_pkcs1_pem);
