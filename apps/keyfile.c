/* p11chat keyfile: a PEM key file that names a token key, for programs that
 * only read key files (nginx, stunnel, HAProxy, curl --key). */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/encoder.h>

#include "p11chat_provider.h"

static const char keyfile_usage[] =
    "usage: p11chat keyfile --key URI [--out FILE] [--pin-source FILE]\n"
    "\n"
    "Writes a key file that names the token key at URI (the PEM block\n"
    "'PKCS#11 PROVIDER URI', the format pkcs11-provider uses too): the token's\n"
    "label, serial, manufacturer and model, the key's label and id. It holds\n"
    "no PIN and no key material, so it need not be secret. A program that\n"
    "reads PEM key files uses the token key through it when the p11chat\n"
    "provider is loaded from its OpenSSL configuration (docs/servers.md).\n"
    "Without --out the file is written to standard output.\n";

static int write_keyfile(APP_OSSL *o, EVP_PKEY *key, const char *out)
{
    OSSL_ENCODER_CTX *e = NULL;
    BIO *bio = NULL;
    int ret = APP_FAIL;

    e = OSSL_ENCODER_CTX_new_for_pkey(key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY, "PEM", "pk11-uri",
                                      P11CHAT_PROVIDER_PROPQ);
    if (e == NULL || OSSL_ENCODER_CTX_get_num_encoders(e) == 0) {
        app_ossl_msg("the p11chat provider has no key file encoder for this key");
        goto end;
    }
    bio = out != NULL ? BIO_new_file(out, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
    if (bio == NULL) {
        app_msg("cannot write '%s': %s", out != NULL ? out : "standard output", strerror(errno));
        goto end;
    }
    if (!OSSL_ENCODER_to_bio(e, bio) || BIO_flush(bio) != 1) {
        app_ossl_msg("cannot write the key file%s%s", out != NULL ? " " : "",
                     out != NULL ? out : "");
        goto end;
    }
    ret = APP_OK;
end:
    (void)o;
    BIO_free(bio);
    OSSL_ENCODER_CTX_free(e);
    return ret;
}

int cmd_keyfile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"out", required_argument, NULL, 'o'},
        {"pin-source", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *out = NULL, *pin = NULL;
    APP_OSSL o;
    EVP_PKEY *pkey = NULL;
    int c, ret = APP_FAIL;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:k:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'p':
            pin = optarg;
            break;
        case 'h':
            fputs(keyfile_usage, stdout);
            return APP_OK;
        case ':':
            return app_usage("keyfile", "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage("keyfile", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return app_usage("keyfile", "unexpected argument '%s'", argv[optind]);
    if (key == NULL)
        return app_usage("keyfile", "--key URI is required");
    if (!app_is_uri(key))
        return app_usage("keyfile", "--key must be a pkcs11: URI (a key in a token), not '%s'",
                         key);
    if (app_ossl_init(&o) != 0)
        return APP_FAIL;
    o.pin_source = pin;
    pkey = app_key_load(&o, key, 0);
    if (pkey != NULL)
        ret = write_keyfile(&o, pkey, out);
    EVP_PKEY_free(pkey);
    app_ossl_free(&o);
    return ret;
}
