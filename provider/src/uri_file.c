/*
 * The key file that names a token key, in the format pkcs11-provider uses so
 * that files are interchangeable between the two providers:
 *
 *   -----BEGIN PKCS#11 PROVIDER URI-----
 *   base64 of the DER of
 *     SEQUENCE { desc VisibleString "PKCS#11 Provider URI v1.0",
 *                uri  UTF8String    "pkcs11:..." }
 *   -----END PKCS#11 PROVIDER URI-----
 */
#include <string.h>

#include <openssl/asn1t.h>

#include "prov.h"

#define URI_FILE_DESC "PKCS#11 Provider URI v1.0"

typedef struct {
    ASN1_VISIBLESTRING *desc;
    ASN1_UTF8STRING *uri;
} P11C_URI_FILE;

DECLARE_ASN1_FUNCTIONS(P11C_URI_FILE)

ASN1_SEQUENCE(P11C_URI_FILE) =
    {
        ASN1_SIMPLE(P11C_URI_FILE, desc, ASN1_VISIBLESTRING),
        ASN1_SIMPLE(P11C_URI_FILE, uri, ASN1_UTF8STRING),
} ASN1_SEQUENCE_END(P11C_URI_FILE)

        IMPLEMENT_ASN1_FUNCTIONS(P11C_URI_FILE)

            int p11c_uri_file_der(const char *uri, unsigned char **der)
{
    P11C_URI_FILE *f = P11C_URI_FILE_new();
    int len = -1;

    *der = NULL;
    if (f != NULL && ASN1_STRING_set(f->desc, URI_FILE_DESC, (int)strlen(URI_FILE_DESC)) &&
        ASN1_STRING_set(f->uri, uri, (int)strlen(uri)))
        len = i2d_P11C_URI_FILE(f, der);
    P11C_URI_FILE_free(f);
    return len;
}

char *p11c_uri_file_parse(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    P11C_URI_FILE *f = d2i_P11C_URI_FILE(NULL, &p, len);
    char *uri = NULL;

    /* the whole input, the description exactly, a pkcs11: URI without NULs */
    if (f == NULL || p != der + len || ASN1_STRING_length(f->desc) != (int)strlen(URI_FILE_DESC) ||
        memcmp(ASN1_STRING_get0_data(f->desc), URI_FILE_DESC, strlen(URI_FILE_DESC)) != 0 ||
        ASN1_STRING_length(f->uri) < 7 ||
        strncmp((const char *)ASN1_STRING_get0_data(f->uri), "pkcs11:", 7) != 0 ||
        memchr(ASN1_STRING_get0_data(f->uri), 0, (size_t)ASN1_STRING_length(f->uri)) != NULL)
        goto end;
    uri = OPENSSL_strndup((const char *)ASN1_STRING_get0_data(f->uri),
                          (size_t)ASN1_STRING_length(f->uri));
end:
    P11C_URI_FILE_free(f);
    return uri;
}
