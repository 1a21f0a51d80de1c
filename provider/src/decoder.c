/*
 * Decoders for key files that name a token key (uri_file.c): PEM to DER, then
 * DER to the key, which is opened through the store exactly as the URI in
 * the file would be. With the provider loaded from openssl.cnf, a program
 * that only reads PEM key files (PEM_read_bio_PrivateKey,
 * SSL_CTX_use_PrivateKey_file) then uses the token key.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_object.h>
#include <openssl/pem.h>
#include <openssl/store.h>

#include "prov.h"

static OSSL_FUNC_decoder_newctx_fn dec_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn dec_pem_decode, dec_rsa_decode, dec_ec_decode,
    dec_ed25519_decode, dec_ed448_decode;

/* Key files are a few hundred bytes; anything much larger is not one. */
#define KEYFILE_MAX (64 * 1024)

static void *dec_newctx(void *provctx)
{
    return provctx;
}

static void dec_freectx(void *ctx)
{
    (void)ctx;
}

/*
 * OpenSSL drops what a failing decoder raises ("Could not read key" is all a
 * server would log), so what is wrong with a key file is also written to
 * stderr: the URI it names (never its query part, where a PIN could be)
 * and why it cannot be opened.
 */
static void say(P11C_PROV *prov, const char *uri, const char *why)
{
    int n = (int)strcspn(uri, "?");

    if (why == NULL) {
        P11C_RAISE(prov, P11C_R_BAD_PARAM, "key file: %s", uri);
        fprintf(stderr, "p11chat: key file: %s\n", uri);
        return;
    }
    P11C_RAISE(prov, P11C_R_NO_KEY, "the key file names %.*s, which cannot be opened: %s", n, uri,
               why);
    fprintf(stderr, "p11chat: the key file names %.*s, which cannot be opened: %s\n", n, uri, why);
}

/* The rest of the core BIO, into a memory BIO; NULL when empty or too long. */
static BIO *read_input(P11C_PROV *prov, OSSL_CORE_BIO *cin)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char buf[4096];
    size_t n = 0, total = 0;

    if (mem == NULL || prov->c_bio_read_ex == NULL)
        goto fail;
    while (prov->c_bio_read_ex(cin, buf, sizeof(buf), &n) && n > 0) {
        total += n;
        if (total > KEYFILE_MAX || BIO_write(mem, buf, (int)n) != (int)n)
            goto fail;
    }
    if (total == 0)
        goto fail;
    return mem;
fail:
    BIO_free(mem);
    return NULL;
}

/* PEM: the first block labelled "PKCS#11 PROVIDER URI", as DER of
 * structure "pk11-uri"; anything else is left to other decoders. */
static int dec_pem_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *object_cb,
                          void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    BIO *in = read_input(ctx, cin);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    int ret = 1; /* carry on: not ours is not an error */

    (void)selection;
    (void)pw_cb;
    (void)pw_cbarg;
    if (in == NULL)
        return 1;
    ERR_set_mark();
    while (PEM_read_bio(in, &name, &header, &der, &len) > 0) {
        int ours = strcmp(name, P11C_URI_PEM_LABEL) == 0;
        char *uri = ours ? p11c_uri_file_parse(der, len) : NULL;
        if (ours && uri == NULL) {
            /* ours by its label, but not what it must hold: stop here */
            say(ctx,
                "a " P11C_URI_PEM_LABEL " block that holds no pkcs11: URI in the expected form",
                NULL);
            ret = 0;
        } else if (ours) {
            OSSL_PARAM params[3];
            params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)len);
            params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                         (char *)P11C_URI_STRUCTURE, 0);
            params[2] = OSSL_PARAM_construct_end();
            ret = object_cb(params, object_cbarg);
        }
        OPENSSL_free(uri);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        name = header = NULL;
        der = NULL;
        if (ours)
            break;
    }
    ERR_pop_to_mark(); /* "no start line" at the end is not news */
    BIO_free(in);
    return ret;
}

typedef struct {
    const char *data_type;
    OSSL_CALLBACK *cb;
    void *cbarg;
    int passed, ret;
} KEY_FILTER;

/* Only keys of the kind this decoder is named for go on. */
static int filter_type(const OSSL_PARAM params[], void *arg)
{
    KEY_FILTER *f = arg;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_DATA_TYPE);
    const char *type = NULL;

    if (p == NULL || !OSSL_PARAM_get_utf8_string_ptr(p, &type) || strcmp(type, f->data_type) != 0)
        return 1;
    f->passed = 1;
    f->ret = f->cb(params, f->cbarg);
    return f->ret;
}

/* DER of structure "pk11-uri": the key the URI names, through the store. */
static int decode_key(P11C_PROV *prov, const char *data_type, OSSL_CORE_BIO *cin, int selection,
                      OSSL_CALLBACK *object_cb, void *object_cbarg)
{
    BIO *in = read_input(prov, cin);
    KEY_FILTER f = {data_type, object_cb, object_cbarg, 0, 0};
    unsigned char *der = NULL;
    char *uri = NULL;
    long len;
    int expect, ret = 1;

    if (in == NULL)
        return 1;
    len = BIO_get_mem_data(in, (char **)&der);
    /* Any DER may come here (OpenSSL 3.0 tries decoders whose input
     * structure is not the caller's), also from inside a PKCS#11 call when
     * the token's module decodes its own keys: what is not ours is left to
     * the other decoders, silently. The PEM decoder spoke for files of ours. */
    uri = p11c_uri_file_parse(der, len);
    if (uri == NULL)
        goto end;
    expect = (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 || selection == 0
                 ? OSSL_STORE_INFO_PKEY
                 : OSSL_STORE_INFO_PUBKEY;
    if (p11c_store_fetch(prov, uri, expect, filter_type, &f) < 0) {
        const char *data = NULL;
        ERR_peek_last_error_data(&data, NULL);
        say(prov, uri, data);
        ret = 0;
        goto end;
    }
    ret = f.passed ? f.ret : 1;
end:
    OPENSSL_free(uri);
    BIO_free(in);
    return ret;
}

/* One decoder per key kind, named for it (OpenSSL picks decoders by the
 * key type wanted); each passes on only keys of its kind. */
#define KEY_DECODER(fn, type)                                                                      \
    static int fn(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *object_cb,          \
                  void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)             \
    {                                                                                              \
        (void)pw_cb;                                                                               \
        (void)pw_cbarg;                                                                            \
        return decode_key(ctx, type, cin, selection, object_cb, object_cbarg);                     \
    }
KEY_DECODER(dec_rsa_decode, "RSA")
KEY_DECODER(dec_ec_decode, "EC")
KEY_DECODER(dec_ed25519_decode, "ED25519")
KEY_DECODER(dec_ed448_decode, "ED448")

const OSSL_DISPATCH p11c_uri_pem_decoder_functions[] = {
    P11C_DISPATCH(DECODER, decoder, NEWCTX, newctx, dec_newctx),
    P11C_DISPATCH(DECODER, decoder, FREECTX, freectx, dec_freectx),
    P11C_DISPATCH(DECODER, decoder, DECODE, decode, dec_pem_decode),
    P11C_DISPATCH_END,
};

#define KEY_DECODER_TABLE(table, fn)                                                               \
    const OSSL_DISPATCH table[] = {                                                                \
        P11C_DISPATCH(DECODER, decoder, NEWCTX, newctx, dec_newctx),                               \
        P11C_DISPATCH(DECODER, decoder, FREECTX, freectx, dec_freectx),                            \
        P11C_DISPATCH(DECODER, decoder, DECODE, decode, fn),                                       \
        P11C_DISPATCH_END,                                                                         \
    }
KEY_DECODER_TABLE(p11c_uri_rsa_decoder_functions, dec_rsa_decode);
KEY_DECODER_TABLE(p11c_uri_ec_decoder_functions, dec_ec_decode);
KEY_DECODER_TABLE(p11c_uri_ed25519_decoder_functions, dec_ed25519_decode);
KEY_DECODER_TABLE(p11c_uri_ed448_decoder_functions, dec_ed448_decode);
