/*
 * Record protection (spec section 6): AES-256-CFB128 then HMAC-SHA256 over
 * header || IV || C. Contexts are keyed once per session; each record only
 * sets a new IV or re-initialises the keyed HMAC.
 *
 * Opening has two paths. CFB decryption is P[i] = C[i] XOR E(C[i-1]) with
 * C[-1] = IV: every block cipher input is already known, so AES-ECB over
 * IV || C (without its last block) computes all of them at once, in the
 * parallel pipelines of the AES instructions, and one XOR finishes the job.
 * EVP's CFB decryption runs the blocks one after the other.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "p11c_internal.h"

p11c_err p11c_rec_init(P11C_REC *r, OSSL_LIB_CTX *libctx, const char *propq,
                       const uint8_t enc_key[P11C_KEY_LEN], const uint8_t mac_key[P11C_KEY_LEN])
{
    p11c_err ret = P11C_ERR_CRYPTO;
    EVP_CIPHER *cfb = EVP_CIPHER_fetch(libctx, "AES-256-CFB", propq);
    EVP_CIPHER *ecb = EVP_CIPHER_fetch(libctx, "AES-256-ECB", propq);

    memset(r, 0, sizeof(*r));
    if (cfb == NULL || ecb == NULL ||
        (r->mac = p11c_hmac_new(libctx, propq, mac_key, P11C_KEY_LEN)) == NULL)
        goto end;
    r->enc = EVP_CIPHER_CTX_new();
    r->dec_cfb = EVP_CIPHER_CTX_new();
    r->dec_ecb = EVP_CIPHER_CTX_new();
    if (r->enc == NULL || r->dec_cfb == NULL || r->dec_ecb == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    if (!EVP_EncryptInit_ex2(r->enc, cfb, enc_key, NULL, NULL) ||
        !EVP_DecryptInit_ex2(r->dec_cfb, cfb, enc_key, NULL, NULL) ||
        !EVP_EncryptInit_ex2(r->dec_ecb, ecb, enc_key, NULL, NULL) ||
        !EVP_CIPHER_CTX_set_padding(r->dec_ecb, 0))
        goto end;
    r->mode = P11C_OPEN_ECB; /* measured faster on AES-NI machines: docs/protocol.md */
    ret = P11C_OK;
end:
    if (ret != P11C_OK)
        p11c_rec_cleanup(r);
    EVP_CIPHER_free(cfb);
    EVP_CIPHER_free(ecb);
    return ret;
}

void p11c_rec_cleanup(P11C_REC *r)
{
    /* The provider contexts wipe their key schedules and HMAC pads when freed. */
    EVP_CIPHER_CTX_free(r->enc);
    EVP_CIPHER_CTX_free(r->dec_cfb);
    EVP_CIPHER_CTX_free(r->dec_ecb);
    EVP_MAC_CTX_free(r->mac);
    memset(r, 0, sizeof(*r));
}

void p11c_rec_set_open_mode(P11C_REC *r, p11c_open_mode mode)
{
    r->mode = mode == P11C_OPEN_CFB ? P11C_OPEN_CFB : P11C_OPEN_ECB;
}

/* The longest M of a record type; an unknown type gets the longest of all, so
 * that the type check after the length check is the one that names it. */
static size_t max_len(uint8_t type)
{
    switch (type) {
    case P11C_REC_ACK:
        return 0;
    case P11C_REC_CLOSE:
        return P11C_MAX_CLOSE_REASON;
    default:
        return P11C_MAX_DATA;
    }
}

p11c_err p11c_rec_seal(P11C_REC *r, const P11C_REC_HDR *h, const uint8_t iv[P11C_IV_LEN],
                       const uint8_t *m, uint8_t **out, size_t *outlen)
{
    p11c_err ret = P11C_ERR_CRYPTO;
    size_t total;
    uint8_t *buf = NULL;
    int n = 0;

    if (h->type < P11C_REC_DATA || h->type > P11C_REC_CLOSE || h->len > max_len(h->type) ||
        (h->len > 0 && m == NULL))
        return P11C_ERR_ARG;
    total = P11C_REC_OVERHEAD + (size_t)h->len;
    buf = OPENSSL_malloc(total);
    if (buf == NULL)
        return P11C_ERR_MEMORY;
    buf[0] = P11C_VERSION;
    buf[1] = h->type;
    buf[2] = h->dir;
    buf[3] = 0;
    p11c_put_u32(buf + 4, h->len);
    p11c_put_u64(buf + 8, h->seq);
    p11c_put_u64(buf + 16, h->ack);
    memcpy(buf + P11C_HDR_LEN, iv, P11C_IV_LEN);
    if (h->len > 0) {
        if (!EVP_EncryptInit_ex2(r->enc, NULL, NULL, iv, NULL) ||
            !EVP_EncryptUpdate(r->enc, buf + P11C_HDR_LEN + P11C_IV_LEN, &n, m, (int)h->len) ||
            (size_t)n != h->len)
            goto end;
    }
    if (p11c_hmac(r->mac, buf, total - P11C_MAC_LEN, NULL, 0, buf + total - P11C_MAC_LEN) !=
        P11C_OK)
        goto end;
    *out = buf;
    *outlen = total;
    buf = NULL;
    ret = P11C_OK;
end:
    OPENSSL_free(buf);
    return ret;
}

p11c_err p11c_rec_parse(const uint8_t *rec, size_t len, P11C_REC_HDR *h)
{
    P11C_RCUR c;
    uint8_t version, reserved;

    p11c_rcur_init(&c, rec, len);
    if (len < P11C_REC_OVERHEAD)
        return P11C_ERR_RECORD_LENGTH;
    if (!p11c_rcur_u8(&c, &version) || !p11c_rcur_u8(&c, &h->type) || !p11c_rcur_u8(&c, &h->dir) ||
        !p11c_rcur_u8(&c, &reserved) || !p11c_rcur_u32(&c, &h->len) ||
        !p11c_rcur_u64(&c, &h->seq) || !p11c_rcur_u64(&c, &h->ack))
        return P11C_ERR_RECORD_LENGTH;
    /* In the order of spec section 6: the length (exactly 72 + len bytes, len
     * within its type's bound), then version, type and reserved byte. */
    if (len - P11C_REC_OVERHEAD != h->len || h->len > max_len(h->type))
        return P11C_ERR_RECORD_LENGTH;
    if (version != P11C_VERSION || h->type < P11C_REC_DATA || h->type > P11C_REC_CLOSE ||
        reserved != 0)
        return P11C_ERR_RECORD_HEADER;
    return P11C_OK;
}

p11c_err p11c_rec_verify(P11C_REC *r, const uint8_t *rec, size_t len)
{
    if (len < P11C_REC_OVERHEAD)
        return P11C_ERR_RECORD_LENGTH;
    return p11c_hmac_verify(r->mac, rec, len - P11C_MAC_LEN, NULL, 0, rec + len - P11C_MAC_LEN,
                            P11C_MAC_LEN);
}

static void xor_into(uint8_t *dst, const uint8_t *src, size_t n)
{
    size_t i = 0;

    /* Word at a time through memcpy: no alignment assumptions, vectorised by the compiler. */
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, dst + i, 8);
        memcpy(&b, src + i, 8);
        a ^= b;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++)
        dst[i] ^= src[i];
}

p11c_err p11c_rec_decrypt(P11C_REC *r, const uint8_t *rec, const P11C_REC_HDR *h, uint8_t **m)
{
    const uint8_t *iv = rec + P11C_HDR_LEN;
    const uint8_t *c = iv + P11C_IV_LEN;
    size_t len = h->len, blocks, cap;
    uint8_t *out = NULL;
    int n = 0;

    *m = NULL;
    if (len == 0)
        return P11C_OK;
    blocks = (len + 15) / 16;
    cap = blocks * 16;
    out = OPENSSL_malloc(cap);
    if (out == NULL)
        return P11C_ERR_MEMORY;
    if (r->mode == P11C_OPEN_CFB) {
        if (!EVP_DecryptInit_ex2(r->dec_cfb, NULL, NULL, iv, NULL) ||
            !EVP_DecryptUpdate(r->dec_cfb, out, &n, c, (int)len) || (size_t)n != len)
            goto fail;
    } else {
        /* IV and C are contiguous in the record: E(IV || C[0 .. cap-16)). */
        if (!EVP_EncryptUpdate(r->dec_ecb, out, &n, iv, (int)cap) || (size_t)n != cap)
            goto fail;
        xor_into(out, c, len);
        OPENSSL_cleanse(out + len, cap - len); /* unused key stream */
    }
    *m = out;
    return P11C_OK;
fail:
    OPENSSL_clear_free(out, cap);
    return P11C_ERR_CRYPTO;
}

p11c_err p11c_rec_confirm(P11C_REC *r, const char *label, const uint8_t digest[32],
                          uint8_t out[P11C_MAC_LEN])
{
    return p11c_hmac(r->mac, (const uint8_t *)label, strlen(label), digest, 32, out);
}
