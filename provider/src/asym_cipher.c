/*
 * RSA decryption in the token (OAEP and PKCS#1 v1.5) and encryption on the
 * host with the public half. When the token refuses the requested OAEP
 * parameters (SoftHSM2 2.6.1 only knows SHA-1 and ignores labels) and the
 * configuration allows it, the token does a raw RSA operation (CKM_RSA_X_509)
 * and the OAEP decoding runs here in constant time (oaep.c). The TLS
 * pre-master secret (RSA_PKCS1_WITH_TLS_PADDING) is always checked here,
 * after a raw RSA operation, with implicit rejection (tls_padding.c).
 */
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "prov.h"
#include "tls_padding.h"

static OSSL_FUNC_asym_cipher_newctx_fn ac_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn ac_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn ac_dupctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn ac_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn ac_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn ac_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn ac_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn ac_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn ac_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn ac_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn ac_settable_ctx_params;

typedef struct {
    P11C_PROV *prov;
    P11C_PKEY *pk;
    int pad;               /* RSA_PKCS1_PADDING, RSA_PKCS1_OAEP_PADDING, RSA_NO_PADDING,
                              RSA_PKCS1_WITH_TLS_PADDING */
    const P11C_HASH *md;   /* OAEP; SHA-1 unless set */
    const P11C_HASH *mgf1; /* NULL: same as md */
    uint8_t *label;
    size_t label_len;
    unsigned int client_version; /* TLS: ClientHello.client_version */
    unsigned int alt_version;    /* TLS: also accepted (negotiated version), or 0 */
} AC_CTX;

static void *ac_newctx(void *provctx)
{
    AC_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->pad = RSA_PKCS1_PADDING;
    c->md = p11c_hash_by_name("SHA1");
    return c;
}

static void ac_freectx(void *vctx)
{
    AC_CTX *c = vctx;

    if (c == NULL)
        return;
    p11c_pkey_free(c->pk);
    OPENSSL_free(c->label);
    OPENSSL_free(c);
}

static void *ac_dupctx(void *vctx)
{
    AC_CTX *c = vctx, *d = OPENSSL_memdup(c, sizeof(*c));

    if (d == NULL)
        return NULL;
    d->label = NULL;
    if (c->label != NULL && (d->label = OPENSSL_memdup(c->label, c->label_len)) == NULL) {
        OPENSSL_free(d);
        return NULL;
    }
    p11c_pkey_up_ref(d->pk);
    return d;
}

static int init(AC_CTX *c, void *provkey, const OSSL_PARAM params[], int decrypt)
{
    P11C_PKEY *pk = provkey;
    char what[300];

    if (pk == NULL || pk->pub == NULL) {
        P11C_RAISE(c->prov, P11C_R_NO_KEY, "no RSA key given");
        return 0;
    }
    if (decrypt && !p11c_pkey_has_private(pk)) {
        P11C_RAISE(c->prov, p11c_reason_of_rv(P11C_CKR_NO_PRIVATE),
                   "decrypting with %s: the key has no private half",
                   p11c_pkey_describe(pk, what, sizeof(what)));
        return 0;
    }
    p11c_pkey_free(c->pk);
    c->pk = p11c_pkey_up_ref(pk);
    return ac_set_ctx_params(c, params);
}

static int ac_encrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 0);
}

static int ac_decrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return init(vctx, provkey, params, 1);
}

static int ac_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    AC_CTX *c = vctx;
    EVP_PKEY_CTX *e = NULL;
    int ret = 0;

    if (c->pk == NULL)
        return 0;
    if (out == NULL) {
        *outlen = p11c_pkey_size(c->pk);
        return 1;
    }
    e = EVP_PKEY_CTX_new_from_pkey(p11c_prov_sw(c->prov), c->pk->pub, "provider=default");
    if (e == NULL || EVP_PKEY_encrypt_init(e) <= 0 || EVP_PKEY_CTX_set_rsa_padding(e, c->pad) <= 0)
        goto end;
    if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        const P11C_HASH *mgf1 = c->mgf1 != NULL ? c->mgf1 : c->md;
        if (EVP_PKEY_CTX_set_rsa_oaep_md(e, p11c_prov_md(c->prov, c->md)) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(e, p11c_prov_md(c->prov, mgf1)) <= 0)
            goto end;
        if (c->label != NULL) {
            uint8_t *l = OPENSSL_memdup(c->label, c->label_len);
            if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(e, l, (int)c->label_len) <= 0) {
                OPENSSL_free(l);
                goto end;
            }
        }
    }
    *outlen = outsize;
    ret = EVP_PKEY_encrypt(e, out, outlen, in, inlen) == 1;
end:
    if (!ret)
        P11C_RAISE(c->prov, P11C_R_BAD_PARAM, "RSA encryption failed (input too long?)");
    EVP_PKEY_CTX_free(e);
    return ret;
}

/* Whether the token takes (hash, mgf1) OAEP natively: 1 yes, -1 no, 0 unknown.
 * Shared by every thread; an idempotent cache, so relaxed order is enough. */
static atomic_int *native_slot(AC_CTX *c, const P11C_HASH *mgf1)
{
    return &c->prov->oaep_native[c->md->index][mgf1->index];
}

/* One error for every failure that depends on the ciphertext. */
static void raise_uniform(AC_CTX *c)
{
    P11C_RAISE(c->prov, p11c_reason_of_rv(CKR_ENCRYPTED_DATA_INVALID), "RSA decryption failed");
}

/*
 * What C_Decrypt says about the ciphertext (SoftHSM2 answers bad padding
 * with CKR_GENERAL_ERROR) becomes one uniform error; what it says about the
 * token, the session or the login keeps its own name.
 */
static int depends_on_ciphertext(const P11C_ERR *err)
{
    static const CK_RV rvs[] = {CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE,
                                CKR_DATA_INVALID,           CKR_DATA_LEN_RANGE,
                                CKR_GENERAL_ERROR,          CKR_FUNCTION_FAILED};

    if (err->func == NULL || strcmp(err->func, "C_Decrypt") != 0)
        return 0;
    for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
        if (err->rv == rvs[i])
            return 1;
    return 0;
}

static int is_param_refusal(const P11C_ERR *err)
{
    return (err->rv == CKR_MECHANISM_INVALID || err->rv == CKR_MECHANISM_PARAM_INVALID ||
            err->rv == CKR_ARGUMENTS_BAD) &&
           err->func != NULL && strcmp(err->func, "C_Decrypt") != 0;
}

/*
 * Whether the token checks an OAEP label (1), ignores it (0, SoftHSM2 2.6.1
 * decrypts as if it were empty), or -1 with an error raised. Asked once per
 * key: a ciphertext made here without a label is given to the token with
 * one; a token that decrypts it accepts ciphertexts made for another label.
 */
static int token_checks_label(AC_CTX *c, const P11C_HASH *mgf1)
{
    static const uint8_t probe_label[] = "p11chat label probe";
    P11C_PKEY *pk = c->pk;
    EVP_PKEY_CTX *e = NULL;
    P11C_MECH mech;
    P11C_ERR err;
    uint8_t *ct = NULL, *pt = NULL, one = 1;
    size_t k = p11c_pkey_size(pk), ctlen = k, ptlen = k;
    int known = atomic_load_explicit(&pk->oaep_label, memory_order_relaxed), ret = -1;
    CK_RV rv;

    if (known != 0)
        return known > 0;
    ct = OPENSSL_malloc(k);
    pt = OPENSSL_malloc(k);
    e = EVP_PKEY_CTX_new_from_pkey(p11c_prov_sw(c->prov), pk->pub, "provider=default");
    if (ct == NULL || pt == NULL || e == NULL || EVP_PKEY_encrypt_init(e) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(e, p11c_prov_md(c->prov, c->md)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(e, p11c_prov_md(c->prov, mgf1)) <= 0 ||
        EVP_PKEY_encrypt(e, ct, &ctlen, &one, 1) != 1) {
        P11C_RAISE(c->prov, P11C_R_INTERNAL, "cannot encrypt the OAEP label probe");
        goto end;
    }
    memset(&mech, 0, sizeof(mech));
    memset(&err, 0, sizeof(err));
    mech.type = CKM_RSA_PKCS_OAEP;
    mech.hash = c->md->ckm;
    mech.mgf = mgf1->mgf;
    mech.label = probe_label;
    mech.label_len = sizeof(probe_label) - 1;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_decrypt(pk->key, &mech, ct, ctlen, pt, &ptlen, &err);
    ERR_pop_to_mark();
    if (rv == CKR_OK) {
        ret = 0;
    } else if (depends_on_ciphertext(&err) || is_param_refusal(&err)) {
        /* a refusal of the parameters is reported by the decryption itself */
        ret = 1;
    } else {
        P11C_RAISE_RV(c->prov, &err);
        goto end;
    }
    atomic_store_explicit(&pk->oaep_label, ret ? 1 : -1, memory_order_relaxed);
end:
    OPENSSL_free(ct);
    OPENSSL_clear_free(pt, k);
    EVP_PKEY_CTX_free(e);
    return ret;
}

/* The token refused these OAEP parameters and the fallback is off. */
static void raise_oaep_refused(AC_CTX *c, const P11C_HASH *mgf1, const P11C_ERR *err)
{
    char buf[400];

    P11C_RAISE(c->prov, p11c_reason_of_rv(err->rv),
               "%s: the token does not decrypt OAEP with %s and MGF1-%s; "
               "oaep-fallback = yes in the provider's configuration decrypts with raw RSA in "
               "the token and removes the padding on the host (docs/provider.md)",
               p11c_err_string(err, buf, sizeof(buf)), c->md->name, mgf1->name);
}

static int ac_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                      const unsigned char *in, size_t inlen)
{
    AC_CTX *c = vctx;
    const P11C_HASH *mgf1;
    P11C_TOKEN *t;
    P11C_MECH mech;
    P11C_ERR err;
    uint8_t *buf = NULL, rnd[P11C_TLS_PREMASTER_LEN];
    size_t k, n;
    atomic_int *slot = NULL;
    int ret = 0, host = 0, tls = c->pad == RSA_PKCS1_WITH_TLS_PADDING;
    CK_RV rv;

    if (c->pk == NULL)
        return 0;
    k = p11c_pkey_size(c->pk);
    if (out == NULL) {
        *outlen = tls ? P11C_TLS_PREMASTER_LEN : k;
        return 1;
    }
    if (!p11c_prov_alive(c->prov))
        return 0;
    if (tls) {
        if (outsize < P11C_TLS_PREMASTER_LEN) {
            P11C_RAISE(c->prov, P11C_R_BUFFER_SMALL, "output buffer too small");
            return 0;
        }
        if (c->client_version == 0) {
            P11C_RAISE(c->prov, P11C_R_BAD_PARAM,
                       "TLS pre-master secret padding needs the client version "
                       "(" OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION ")");
            return 0;
        }
        /* drawn before anything depends on the ciphertext */
        if (RAND_priv_bytes_ex(p11c_prov_sw(c->prov), rnd, sizeof(rnd), 0) != 1) {
            P11C_RAISE(c->prov, P11C_R_INTERNAL, "no random bytes for the TLS pre-master check");
            return 0;
        }
    }
    if (inlen != k) {
        raise_uniform(c);
        return 0;
    }
    buf = OPENSSL_malloc(k);
    if (buf == NULL)
        return 0;
    memset(&err, 0, sizeof(err));
    memset(&mech, 0, sizeof(mech));
    t = p11c_key_token(c->pk->key);
    mgf1 = c->mgf1 != NULL ? c->mgf1 : c->md;

    if (tls) {
        host = 1;
    } else if (c->pad == RSA_PKCS1_OAEP_PADDING) {
        slot = native_slot(c, mgf1);
        /*
         * A label goes through the host decoding when allowed: tokens that
         * ignore CK_RSA_PKCS_OAEP_PARAMS.pSourceData (SoftHSM2 2.6.1) would
         * otherwise accept a ciphertext made for another label.
         */
        if (c->prov->oaep_fallback &&
            (c->label_len > 0 || atomic_load_explicit(slot, memory_order_relaxed) < 0 ||
             p11c_token_mechanism(t, CKM_RSA_PKCS_OAEP, CKF_DECRYPT, NULL, &err) != CKR_OK))
            host = 1;
        if (!host && c->label_len > 0) {
            int checks = token_checks_label(c, mgf1);
            if (checks < 0)
                goto end;
            if (!checks) {
                char what[300];
                P11C_RAISE(c->prov, P11C_R_UNSUPPORTED,
                           "%s: the token ignores OAEP labels, so a ciphertext made for another "
                           "label would decrypt; oaep-fallback = yes checks the label on the host",
                           p11c_pkey_describe(c->pk, what, sizeof(what)));
                goto end;
            }
        }
        if (!host) {
            mech.type = CKM_RSA_PKCS_OAEP;
            mech.hash = c->md->ckm;
            mech.mgf = mgf1->mgf;
            mech.label = c->label;
            mech.label_len = c->label_len;
        }
    } else if (c->pad == RSA_PKCS1_PADDING) {
        mech.type = CKM_RSA_PKCS;
    } else {
        mech.type = CKM_RSA_X_509;
    }

    if (!host) {
        n = k;
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = p11c_key_decrypt(c->pk->key, &mech, in, inlen, buf, &n, &err);
        ERR_pop_to_mark();
        if (rv == CKR_OK) {
            if (slot != NULL)
                atomic_store_explicit(slot, 1, memory_order_relaxed);
            if (n > outsize) {
                P11C_RAISE(c->prov, P11C_R_BUFFER_SMALL, "output buffer too small");
                goto end;
            }
            memcpy(out, buf, n);
            *outlen = n;
            ret = 1;
            goto end;
        }
        if (slot != NULL && c->prov->oaep_fallback && is_param_refusal(&err)) {
            atomic_store_explicit(slot, -1, memory_order_relaxed);
            host = 1;
        } else if (slot != NULL && is_param_refusal(&err)) {
            raise_oaep_refused(c, mgf1, &err);
            goto end;
        } else if (depends_on_ciphertext(&err)) {
            raise_uniform(c);
            goto end;
        } else {
            P11C_RAISE_RV(c->prov, &err);
            goto end;
        }
    }

    /* Host decoding: raw RSA in the token, OAEP or the TLS check here. */
    memset(&mech, 0, sizeof(mech));
    mech.type = CKM_RSA_X_509;
    memset(&err, 0, sizeof(err));
    n = k;
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = p11c_key_decrypt(c->pk->key, &mech, in, inlen, buf, &n, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        /* for raw RSA only a ciphertext not below the modulus, which is public */
        if (depends_on_ciphertext(&err))
            raise_uniform(c);
        else
            P11C_RAISE_RV(c->prov, &err);
        goto end;
    }
    if (n < k) { /* tokens may strip leading zeros: the length is public */
        memmove(buf + (k - n), buf, n);
        memset(buf, 0, k - n);
    }
    if (tls) {
        if (!p11c_tls_premaster_select(out, buf, k, c->client_version, c->alt_version, rnd)) {
            P11C_RAISE(c->prov, P11C_R_UNSUPPORTED, "key too small for a TLS pre-master secret");
            goto end;
        }
        *outlen = P11C_TLS_PREMASTER_LEN;
    } else if (!p11c_oaep_decode(c->prov, out, outsize, outlen, buf, k, c->md, mgf1, c->label,
                                 c->label_len)) {
        raise_uniform(c);
        goto end;
    }
    ret = 1;
end:
    OPENSSL_clear_free(buf, k);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return ret;
}

/* ---- Parameters ------------------------------------------------------------ */

static int ac_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    AC_CTX *c = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, c->pad))
                return 0;
        } else if (!OSSL_PARAM_set_utf8_string(p, c->pad == RSA_PKCS1_OAEP_PADDING ? "oaep"
                                                  : c->pad == RSA_NO_PADDING       ? "none"
                                                                                   : "pkcs1")) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, c->md->name))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, (c->mgf1 != NULL ? c->mgf1 : c->md)->name))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL && !OSSL_PARAM_set_octet_ptr(p, c->label, c->label_len))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, c->client_version))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_set_uint(p, c->alt_version))
        return 0;
    return 1;
}

static const OSSL_PARAM ac_gettable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ac_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ac_gettable;
}

static int set_md(AC_CTX *c, const OSSL_PARAM *p, const P11C_HASH **dst)
{
    const P11C_HASH *h = p11c_hash_from_param(c->prov, p, " for OAEP");

    if (h != NULL)
        *dst = h;
    return h != NULL;
}

static int ac_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    AC_CTX *c = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = -1;
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            pad = strcasecmp(s, "oaep") == 0    ? RSA_PKCS1_OAEP_PADDING
                  : strcasecmp(s, "pkcs1") == 0 ? RSA_PKCS1_PADDING
                  : strcasecmp(s, "none") == 0  ? RSA_NO_PADDING
                                                : -1;
        } else if (!OSSL_PARAM_get_int(p, &pad)) {
            pad = -1;
        }
        if (pad != RSA_PKCS1_OAEP_PADDING && pad != RSA_PKCS1_PADDING && pad != RSA_NO_PADDING &&
            pad != RSA_PKCS1_WITH_TLS_PADDING) {
            P11C_RAISE(c->prov, P11C_R_UNSUPPORTED,
                       "padding: only oaep, pkcs1, none and the TLS pre-master secret");
            return 0;
        }
        c->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !set_md(c, p, &c->md))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !set_md(c, p, &c->mgf1))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL) {
        void *l = NULL;
        size_t len = 0;
        if (!OSSL_PARAM_get_octet_string(p, &l, 0, &len))
            return 0;
        OPENSSL_free(c->label);
        c->label = l;
        c->label_len = len;
        if (len == 0) {
            OPENSSL_free(c->label);
            c->label = NULL;
        }
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &c->client_version))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &c->alt_version))
        return 0;
    return 1;
}

static const OSSL_PARAM ac_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *ac_settable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ac_settable;
}

const OSSL_DISPATCH p11c_rsa_asym_cipher_functions[] = {
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, NEWCTX, newctx, ac_newctx),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, FREECTX, freectx, ac_freectx),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, DUPCTX, dupctx, ac_dupctx),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, ENCRYPT_INIT, encrypt_init, ac_encrypt_init),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, ENCRYPT, encrypt, ac_encrypt),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, DECRYPT_INIT, decrypt_init, ac_decrypt_init),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, DECRYPT, decrypt, ac_decrypt),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, GET_CTX_PARAMS, get_ctx_params, ac_get_ctx_params),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, GETTABLE_CTX_PARAMS, gettable_ctx_params,
                  ac_gettable_ctx_params),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, SET_CTX_PARAMS, set_ctx_params, ac_set_ctx_params),
    P11C_DISPATCH(ASYM_CIPHER, asym_cipher, SETTABLE_CTX_PARAMS, settable_ctx_params,
                  ac_settable_ctx_params),
    P11C_DISPATCH_END,
};
