/*
 * The text form of a token key (`openssl pkey -text`, `storeutl -text`):
 * its kind, size or curve, and its full pkcs11: URI, so that keys can be
 * told apart; then OpenSSL's own text of the public half. Nothing private is
 * ever printed: the private half stays in the token.
 */
#include <string.h>

#include <openssl/bio.h>

#include "prov.h"

static OSSL_FUNC_encoder_newctx_fn text_newctx;
static OSSL_FUNC_encoder_freectx_fn text_freectx;
static OSSL_FUNC_encoder_does_selection_fn text_does_selection;
static OSSL_FUNC_encoder_encode_fn text_encode;

static void *text_newctx(void *provctx)
{
    return provctx;
}

static void text_freectx(void *ctx)
{
    (void)ctx;
}

static int text_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case P11C_PKIND_EC:
        return "EC";
    case P11C_PKIND_ED25519:
        return "ED25519";
    case P11C_PKIND_ED448:
        return "ED448";
    default:
        return "RSA";
    }
}

static int text_encode(void *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection, OSSL_PASSPHRASE_CALLBACK *cb,
                       void *cbarg)
{
    P11C_PROV *prov = ctx;
    P11C_PKEY *pk = (P11C_PKEY *)obj_raw;
    BIO *mem = NULL;
    char *uri = NULL, *data = NULL;
    long len;
    size_t written = 0;
    int ret = 0;

    (void)obj_abstract;
    (void)cb;
    (void)cbarg;
    if (pk == NULL || pk->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 0;
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        goto end;
    BIO_printf(mem, "%s %s key in a PKCS#11 token%s\n", kind_name(pk->kind),
               p11c_pkey_has_private(pk) ? "private" : "public",
               p11c_pkey_has_private(pk) ? " (the private half stays there)" : "");
    if (pk->kind == P11C_PKIND_RSA) {
        BIO_printf(mem, "Size: %u bits\n", pk->bits);
    } else {
        const char *curve = pk->key != NULL ? p11c_key_curve(pk->key) : NULL;
        BIO_printf(mem, "Curve: %s (%u bits)\n", curve != NULL ? curve : "?", pk->bits);
    }
    uri = p11c_pkey_uri(pk);
    BIO_printf(mem, "URI: %s\n", uri != NULL ? uri : "none (a public key held on the host)");
    if (EVP_PKEY_print_public(mem, pk->pub, 0, NULL) <= 0)
        goto end;
    len = BIO_get_mem_data(mem, &data);
    ret = len > 0 && prov->c_bio_write_ex(cout, data, (size_t)len, &written) &&
          written == (size_t)len;
end:
    OPENSSL_free(uri);
    BIO_free(mem);
    return ret;
}

const OSSL_DISPATCH p11c_text_encoder_functions[] = {
    P11C_DISPATCH(ENCODER, encoder, NEWCTX, newctx, text_newctx),
    P11C_DISPATCH(ENCODER, encoder, FREECTX, freectx, text_freectx),
    P11C_DISPATCH(ENCODER, encoder, DOES_SELECTION, does_selection, text_does_selection),
    P11C_DISPATCH(ENCODER, encoder, ENCODE, encode, text_encode),
    P11C_DISPATCH_END,
};
