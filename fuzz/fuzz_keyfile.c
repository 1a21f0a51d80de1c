/*
 * The DER inside a key file that names a token key (provider/src/uri_file.c):
 * whatever the file holds, the parser returns NULL or a pkcs11: URI without
 * NUL bytes, and a URI it returns is written back and read again unchanged.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "prov.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = p11c_uri_file_parse(data, (long)size), *again;
    unsigned char *der = NULL;
    int len;

    if (uri == NULL)
        return 0;
    if (strncmp(uri, "pkcs11:", 7) != 0)
        abort();
    len = p11c_uri_file_der(uri, &der);
    if (len <= 0)
        abort();
    again = p11c_uri_file_parse(der, len);
    if (again == NULL || strcmp(again, uri) != 0)
        abort();
    OPENSSL_free(again);
    OPENSSL_free(der);
    OPENSSL_free(uri);
    return 0;
}
