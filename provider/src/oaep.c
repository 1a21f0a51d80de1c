/*
 * OAEP decoding (RFC 8017, 7.1.2 step 3) of a raw RSA result, for tokens that
 * refuse the requested OAEP parameters. Constant time: no branch and no
 * memory index depends on the decrypted bytes; every failure is the same
 * single outcome. Only the final result (and, on success, the message length,
 * which the caller learns anyway) leaves this function.
 */
#include <string.h>

#include "prov.h"

/* All-ones when a == b, else zero; without branches. */
static unsigned int ct_eq(unsigned int a, unsigned int b)
{
    unsigned int x = a ^ b;
    return ((x | (0u - x)) >> (sizeof(x) * 8 - 1)) - 1u;
}

static unsigned int ct_is_zero(unsigned int a)
{
    return ct_eq(a, 0);
}

/* All-ones when a < b (both below 2^31). */
static unsigned int ct_lt(unsigned int a, unsigned int b)
{
    return 0u - ((a - b) >> (sizeof(unsigned int) * 8 - 1));
}

static unsigned int ct_select(unsigned int mask, unsigned int a, unsigned int b)
{
    return (mask & a) | (~mask & b);
}

/* MGF1 (RFC 8017, B.2.1): out ^= MGF1(seed, len). */
static int mgf1_xor(const EVP_MD *md, size_t hlen, uint8_t *out, size_t len, const uint8_t *seed,
                    size_t seedlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t block[EVP_MAX_MD_SIZE];
    uint32_t counter = 0;
    size_t done = 0;
    int ret = 0;

    if (ctx == NULL)
        goto end;
    while (done < len) {
        uint8_t c[4] = {(uint8_t)(counter >> 24), (uint8_t)(counter >> 16), (uint8_t)(counter >> 8),
                        (uint8_t)counter};
        size_t n = len - done < hlen ? len - done : hlen;
        if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, seed, seedlen) ||
            !EVP_DigestUpdate(ctx, c, sizeof(c)) || !EVP_DigestFinal_ex(ctx, block, NULL))
            goto end;
        for (size_t i = 0; i < n; i++)
            out[done + i] ^= block[i];
        done += n;
        counter++;
    }
    ret = 1;
end:
    OPENSSL_cleanse(block, sizeof(block));
    EVP_MD_CTX_free(ctx);
    return ret;
}

int p11c_oaep_decode(P11C_PROV *prov, uint8_t *out, size_t outsize, size_t *outlen,
                     const uint8_t *em_in, size_t k, const P11C_HASH *md, const P11C_HASH *mgf1,
                     const uint8_t *label, size_t label_len)
{
    const EVP_MD *hmd = p11c_prov_md(prov, md), *gmd = p11c_prov_md(prov, mgf1);
    size_t hlen = md->len, dblen, mlen_max;
    uint8_t lhash[EVP_MAX_MD_SIZE];
    uint8_t *em = NULL, *seed, *db;
    unsigned int good, found = 0, index = 0, mlen, i;
    int ret = 0;

    if (hmd == NULL || gmd == NULL || k < 2 * hlen + 2 || k > 0x10000)
        return 0;
    em = OPENSSL_malloc(k);
    if (em == NULL)
        return 0;
    memcpy(em, em_in, k);
    if (!EVP_Digest(label != NULL ? label : (const uint8_t *)"", label_len, lhash, NULL, hmd, NULL))
        goto end;

    seed = em + 1;
    db = em + 1 + hlen;
    dblen = k - hlen - 1;
    /* seed = maskedSeed ^ MGF(maskedDB); DB = maskedDB ^ MGF(seed) */
    if (!mgf1_xor(gmd, mgf1->len, seed, hlen, db, dblen) ||
        !mgf1_xor(gmd, mgf1->len, db, dblen, seed, hlen))
        goto end;

    good = ct_is_zero(em[0]);
    {
        unsigned int diff = 0;
        for (i = 0; i < hlen; i++)
            diff |= (unsigned int)(db[i] ^ lhash[i]);
        good &= ct_is_zero(diff);
    }
    /* The first 0x01 after the zero padding; anything else first is bad. */
    for (i = (unsigned int)hlen; i < dblen; i++) {
        unsigned int is_one = ct_eq(db[i], 1), is_zero = ct_is_zero(db[i]);
        index = ct_select(~found & is_one, i, index);
        found |= is_one;
        good &= found | is_zero; /* before the 0x01 only zeros */
    }
    good &= found;
    mlen = (unsigned int)dblen - (index + 1);
    mlen_max = dblen - hlen - 1;
    /* outsize is public; clamped so that it fits the comparison */
    good &= ~ct_lt((unsigned int)(outsize < mlen_max ? outsize : mlen_max), mlen);

    /*
     * Move the message to the front of DB in log2(max) conditional shifts,
     * so that neither memory access nor timing reveals its length; then copy
     * a fixed number of bytes (as OpenSSL's own RSA code does).
     */
    {
        uint8_t *msg = db + hlen + 1;
        unsigned int shift = (unsigned int)mlen_max - mlen;
        for (unsigned int s = 1; s < mlen_max; s <<= 1) {
            unsigned int take = ct_is_zero(shift & s) ^ ~0u;
            for (i = 0; i + s < mlen_max; i++)
                msg[i] = (uint8_t)ct_select(take, msg[i + s], msg[i]);
        }
        /* Zeros past the message and on failure: the caller's buffer is
         * written, never read (it may be uninitialised). */
        for (i = 0; i < outsize && i < mlen_max; i++) {
            unsigned int in_msg = ct_lt(i, mlen) & good;
            out[i] = (uint8_t)(msg[i] & in_msg);
        }
    }
    *outlen = ct_select(good, mlen, 0);
    ret = (int)(good & 1u);
end:
    OPENSSL_clear_free(em, k);
    OPENSSL_cleanse(lhash, sizeof(lhash));
    return ret;
}
