/* The kinds of long-term key 'p11chat keygen --type' makes in the token. */
#include "app.h"

#include <string.h>

#include <openssl/core_names.h>

static const APP_KEYTYPE types[] = {
    {"ec:p256", "EC", "P-256", 0},   {"ec:p384", "EC", "P-384", 0},
    {"rsa:2048", "RSA", NULL, 2048}, {"rsa:3072", "RSA", NULL, 3072},
    {"rsa:4096", "RSA", NULL, 4096},
};

const APP_KEYTYPE *app_keytype_find(const char *name)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(name, types[i].name) == 0)
            return &types[i];
    return NULL;
}

const APP_KEYTYPE *app_keytype_rsa(unsigned long bits)
{
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (types[i].bits != 0 && types[i].bits == bits)
            return &types[i];
    return NULL;
}

OSSL_PARAM app_keytype_param(const APP_KEYTYPE *t, size_t *bits)
{
    if (t->group != NULL)
        return OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)t->group, 0);
    *bits = t->bits;
    return OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, bits);
}
