/*
 * The encoder that writes a key file naming a token key (uri_file.c): any
 * key of the token, private or public, becomes the PEM block
 * "PKCS#11 PROVIDER URI" holding its URI (token identity, label, id; never a
 * PIN). Asked for with the output structure "pk11-uri"; the private key
 * itself never leaves the token.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "prov.h"

static OSSL_FUNC_encoder_newctx_fn uenc_newctx;
static OSSL_FUNC_encoder_freectx_fn uenc_freectx;
static OSSL_FUNC_encoder_does_selection_fn uenc_does_selection;
static OSSL_FUNC_encoder_encode_fn uenc_encode;

static void *uenc_newctx(void *provctx)
{
    return provctx;
}

static void uenc_freectx(void *ctx)
{
    (void)ctx;
}

static int uenc_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

static int uenc_encode(void *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection, OSSL_PASSPHRASE_CALLBACK *cb,
                       void *cbarg)
{
    P11C_PROV *prov = ctx;
    const P11C_PKEY *pk = obj_raw;
    unsigned char *der = NULL;
    char *uri = NULL, *data = NULL;
    BIO *mem = NULL;
    long len = 0;
    size_t written = 0;
    int derlen, ret = 0;

    (void)obj_abstract;
    (void)selection;
    (void)cb;
    (void)cbarg;
    if (pk == NULL || pk->magic != P11C_PKEY_MAGIC || pk->key == NULL) {
        P11C_RAISE(prov, P11C_R_NO_KEY, "only a key in a token can be named in a key file");
        return 0;
    }
    if (p11c_key_uri(pk->key, 0, &uri) != CKR_OK) {
        P11C_RAISE(prov, P11C_R_INTERNAL, "cannot make the key's pkcs11: URI");
        return 0;
    }
    derlen = p11c_uri_file_der(uri, &der);
    mem = BIO_new(BIO_s_mem());
    if (derlen <= 0 || mem == NULL || !PEM_write_bio(mem, P11C_URI_PEM_LABEL, "", der, derlen))
        goto end;
    len = BIO_get_mem_data(mem, &data);
    ret = len > 0 && prov->c_bio_write_ex(cout, data, (size_t)len, &written) &&
          written == (size_t)len;
end:
    if (!ret)
        P11C_RAISE(prov, P11C_R_INTERNAL, "cannot write the key file");
    free(uri);
    OPENSSL_free(der);
    BIO_free(mem);
    return ret;
}

const OSSL_DISPATCH p11c_uri_pem_encoder_functions[] = {
    P11C_DISPATCH(ENCODER, encoder, NEWCTX, newctx, uenc_newctx),
    P11C_DISPATCH(ENCODER, encoder, FREECTX, freectx, uenc_freectx),
    P11C_DISPATCH(ENCODER, encoder, DOES_SELECTION, does_selection, uenc_does_selection),
    P11C_DISPATCH(ENCODER, encoder, ENCODE, encode, uenc_encode),
    P11C_DISPATCH_END,
};
