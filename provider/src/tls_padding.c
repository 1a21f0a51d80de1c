/*
 * The TLS pre-master secret check on a raw RSA result, as OpenSSL's default
 * provider does it: the token performs CKM_RSA_X_509 and the padding and
 * version are checked here, in constant time, with implicit rejection (a
 * random secret replaces a bad one, so no padding oracle exists: the
 * handshake fails at Finished whatever was wrong).
 */
#include "tls_padding.h"

/* All-ones when a == b, else zero; without branches. */
static unsigned int ct_eq(unsigned int a, unsigned int b)
{
    unsigned int x = a ^ b;
    return ((x | (0u - x)) >> (sizeof(x) * 8 - 1)) - 1u;
}

static unsigned int ct_select(unsigned int mask, unsigned int a, unsigned int b)
{
    return (mask & a) | (~mask & b);
}

int p11c_tls_premaster_select(uint8_t out[P11C_TLS_PREMASTER_LEN], const uint8_t *em, size_t k,
                              unsigned int client_version, unsigned int alt_version,
                              const uint8_t rnd[P11C_TLS_PREMASTER_LEN])
{
    unsigned int good, found = 0, zero_index = 0, version, alt, use_alt;
    const uint8_t *secret;
    size_t i;

    if (k < 11 + P11C_TLS_PREMASTER_LEN || k > 0x10000)
        return 0;
    good = ct_eq(em[0], 0) & ct_eq(em[1], 2);
    /* the first zero byte after the padding string */
    for (i = 2; i < k; i++) {
        unsigned int is_zero = ct_eq(em[i], 0);
        zero_index = ct_select(~found & is_zero, (unsigned int)i, zero_index);
        found |= is_zero;
    }
    good &= found;
    /* exactly 48 bytes after it: a fixed place, whatever em holds; with k
     * of 59 or more that leaves the eight padding bytes PKCS#1 asks for */
    good &= ct_eq(zero_index, (unsigned int)(k - P11C_TLS_PREMASTER_LEN - 1));
    secret = em + k - P11C_TLS_PREMASTER_LEN;
    version =
        ct_eq(secret[0], (client_version >> 8) & 0xff) & ct_eq(secret[1], client_version & 0xff);
    use_alt = ~ct_eq(alt_version, 0);
    alt = use_alt & ct_eq(secret[0], (alt_version >> 8) & 0xff) &
          ct_eq(secret[1], alt_version & 0xff);
    good &= version | alt;
    for (i = 0; i < P11C_TLS_PREMASTER_LEN; i++)
        out[i] = (uint8_t)ct_select(good, secret[i], rnd[i]);
    return 1;
}
