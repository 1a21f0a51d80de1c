/* The five hashes the provider signs and decrypts with, and their DER. */
#include <string.h>
#include <strings.h>

#include "prov.h"

static const uint8_t oid_sha1[] = {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t oid_sha224[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x04};
static const uint8_t oid_sha256[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t oid_sha384[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x02};
static const uint8_t oid_sha512[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x03};

#define RSA_OID(last)                                                                              \
    {                                                                                              \
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, (last)                         \
    }
static const uint8_t rsa_sha1[] = RSA_OID(0x05);
static const uint8_t rsa_sha224[] = RSA_OID(0x0e);
static const uint8_t rsa_sha256[] = RSA_OID(0x0b);
static const uint8_t rsa_sha384[] = RSA_OID(0x0c);
static const uint8_t rsa_sha512[] = RSA_OID(0x0d);

/* DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }, up to the digest. */
static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
#define DI2(a, b, c)                                                                               \
    {                                                                                              \
        0x30, (a), 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, (b),    \
            0x05, 0x00, 0x04, (c)                                                                  \
    }
static const uint8_t di_sha224[] = DI2(0x2d, 0x04, 0x1c);
static const uint8_t di_sha256[] = DI2(0x31, 0x01, 0x20);
static const uint8_t di_sha384[] = DI2(0x41, 0x02, 0x30);
static const uint8_t di_sha512[] = DI2(0x51, 0x03, 0x40);

#define HASH(i, nm, l, c, g, s, pk, ps)                                                            \
    {                                                                                              \
        i, nm, l, c, g, pk, ps, oid_##s, sizeof(oid_##s), rsa_##s, di_##s, sizeof(di_##s)          \
    }
static const P11C_HASH hashes[] = {
    HASH(0, "SHA1", 20, CKM_SHA_1, CKG_MGF1_SHA1, sha1, CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS),
    HASH(1, "SHA2-224", 28, CKM_SHA224, CKG_MGF1_SHA224, sha224, CKM_SHA224_RSA_PKCS,
         CKM_SHA224_RSA_PKCS_PSS),
    HASH(2, "SHA2-256", 32, CKM_SHA256, CKG_MGF1_SHA256, sha256, CKM_SHA256_RSA_PKCS,
         CKM_SHA256_RSA_PKCS_PSS),
    HASH(3, "SHA2-384", 48, CKM_SHA384, CKG_MGF1_SHA384, sha384, CKM_SHA384_RSA_PKCS,
         CKM_SHA384_RSA_PKCS_PSS),
    HASH(4, "SHA2-512", 64, CKM_SHA512, CKG_MGF1_SHA512, sha512, CKM_SHA512_RSA_PKCS,
         CKM_SHA512_RSA_PKCS_PSS),
};

static const struct {
    const char *alias;
    int index;
} aliases[] = {
    {"SHA1", 0},   {"SHA-1", 0},    {"SSL3-SHA1", 0}, {"1.3.14.3.2.26", 0},
    {"SHA224", 1}, {"SHA2-224", 1}, {"SHA-224", 1},   {"2.16.840.1.101.3.4.2.4", 1},
    {"SHA256", 2}, {"SHA2-256", 2}, {"SHA-256", 2},   {"2.16.840.1.101.3.4.2.1", 2},
    {"SHA384", 3}, {"SHA2-384", 3}, {"SHA-384", 3},   {"2.16.840.1.101.3.4.2.2", 3},
    {"SHA512", 4}, {"SHA2-512", 4}, {"SHA-512", 4},   {"2.16.840.1.101.3.4.2.3", 4},
};

const P11C_HASH *p11c_hash_by_name(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            return &hashes[aliases[i].index];
    return NULL;
}

const P11C_HASH *p11c_hash_by_len(size_t len)
{
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
        if (hashes[i].len == len)
            return &hashes[i];
    return NULL;
}

const EVP_MD *p11c_prov_md(P11C_PROV *prov, const P11C_HASH *h)
{
    const EVP_MD *md = NULL;
    OSSL_LIB_CTX *sw = p11c_prov_sw(prov);

    if (sw == NULL || h == NULL)
        return NULL;
    pthread_mutex_lock(&prov->lock);
    if (prov->md[h->index] == NULL)
        prov->md[h->index] = EVP_MD_fetch(sw, h->name, "provider=default");
    md = prov->md[h->index];
    pthread_mutex_unlock(&prov->lock);
    if (md == NULL)
        P11C_RAISE(prov, P11C_R_INTERNAL, "cannot fetch %s from the default provider", h->name);
    return md;
}

const P11C_HASH *p11c_hash_from_param(P11C_PROV *prov, const OSSL_PARAM *p, const char *what)
{
    const char *name = NULL;
    const P11C_HASH *h;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return NULL;
    h = p11c_hash_by_name(name);
    if (h == NULL)
        P11C_RAISE(prov, P11C_R_UNSUPPORTED, "digest %s is not supported%s", name, what);
    return h;
}
