/*
 * What the key management of every key kind shares (rsa_kmgmt.c,
 * ec_kmgmt.c, ecx_kmgmt.c): keys that refer to token objects, loaded from the
 * store's references, compared by their public halves; and key generation in
 * a token (which token, label, id, persistence, the PIN of a generation URI).
 */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "prov.h"

void *p11c_km_new(void *provctx)
{
    return p11c_pkey_new(provctx);
}

void p11c_km_free(void *keydata)
{
    p11c_pkey_free(keydata);
}

int p11c_km_has(const void *keydata, int selection)
{
    P11C_PKEY *pk = (P11C_PKEY *)keydata;

    if (pk == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 && pk->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !p11c_pkey_has_private(pk))
        return 0;
    return 1;
}

int p11c_km_match(const void *keydata1, const void *keydata2, int selection)
{
    const P11C_PKEY *a = keydata1, *b = keydata2;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    if (a->pub == NULL || b->pub == NULL)
        return 0;
    /* The private half of a token key is its public half's partner. */
    return EVP_PKEY_eq(a->pub, b->pub) == 1;
}

/* The store hands out a reference: the address of a P11C_PKEY it holds. */
void *p11c_km_load(const void *reference, size_t reference_sz)
{
    P11C_PKEY *pk = NULL;

    if (reference == NULL || reference_sz != sizeof(pk))
        return NULL;
    memcpy(&pk, reference, sizeof(pk));
    if (pk == NULL || pk->magic != P11C_PKEY_MAGIC)
        return NULL;
    return p11c_pkey_up_ref(pk);
}

/* Keys never change after they are made, so a copy may share the object. */
void *p11c_km_dup(const void *keydata, int selection)
{
    (void)selection;
    return p11c_pkey_up_ref((P11C_PKEY *)keydata);
}

int p11c_km_export_check(P11C_PKEY *pk, int selection)
{
    if (pk == NULL || pk->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && p11c_pkey_has_private(pk) &&
        !pk->host_private) {
        char what[300];
        P11C_RAISE(pk->prov, P11C_R_PRIVATE_EXPORT,
                   "%s: the private key stays in the token; only the public key can be exported",
                   p11c_pkey_describe(pk, what, sizeof(what)));
        return 0;
    }
    return (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;
}

/* ---- Generation ------------------------------------------------------------ */

P11C_GEN *p11c_gen_new(void *provctx, int selection)
{
    P11C_GEN *g;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return NULL;
    g = OPENSSL_zalloc(sizeof(*g));
    if (g == NULL)
        return NULL;
    g->prov = provctx;
    g->persistent = -1;
    return g;
}

static int hex_id(P11C_GEN *g, const char *hex)
{
    size_t n = strlen(hex);

    if (n == 0 || n % 2 != 0 || n / 2 > sizeof(g->id))
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        g->id[i] = (uint8_t)(hi << 4 | lo);
    }
    g->idlen = n / 2;
    g->has_id = 1;
    return 1;
}

static int set_string(char **dst, const OSSL_PARAM *p)
{
    const char *s = NULL;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
        return 0;
    OPENSSL_free(*dst);
    *dst = OPENSSL_strdup(s);
    return *dst != NULL;
}

int p11c_gen_set_common(P11C_GEN *g, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_URI);
    if (p != NULL && !set_string(&g->uri, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_LABEL);
    if (p != NULL && !set_string(&g->label, p))
        return 0;
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_ID);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_OCTET_STRING) {
            if (p->data_size == 0 || p->data_size > sizeof(g->id))
                goto bad_id;
            memcpy(g->id, p->data, p->data_size);
            g->idlen = p->data_size;
            g->has_id = 1;
        } else if (p->data_type != OSSL_PARAM_UTF8_STRING || !hex_id(g, p->data)) {
            goto bad_id;
        }
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_PERSISTENT);
    if (p != NULL) {
        int v = -1;
        if (p->data_type == OSSL_PARAM_UTF8_STRING)
            v = p11c_parse_bool(p->data);
        else if (!OSSL_PARAM_get_int(p, &v)) {
            v = -1;
        }
        if (v < 0) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "persistent must be yes or no");
            return 0;
        }
        g->persistent = v != 0;
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_PER_USE_PIN);
    if (p != NULL) {
        int v = -1;
        if (p->data_type == OSSL_PARAM_UTF8_STRING)
            v = p11c_parse_bool(p->data);
        else if (!OSSL_PARAM_get_int(p, &v))
            v = -1;
        if (v < 0) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "per-use-pin must be yes or no");
            return 0;
        }
        g->per_use = v != 0;
    }
    p = OSSL_PARAM_locate_const(params, P11CHAT_PKEY_PARAM_USAGE);
    if (p != NULL) {
        if (p->data_type != OSSL_PARAM_UTF8_STRING ||
            (strcmp(p->data, "sign") != 0 && strcmp(p->data, "decrypt") != 0 &&
             strcmp(p->data, "derive") != 0 && strcmp(p->data, "any") != 0)) {
            P11C_RAISE(g->prov, P11C_R_BAD_PARAM,
                       "usage must be sign, decrypt (RSA), derive (EC) or any");
            return 0;
        }
        /* decrypt and derive: the key's other use than signing, by kind */
        g->usage = strcmp(p->data, "sign") == 0  ? P11C_GEN_SIGN_ONLY
                   : strcmp(p->data, "any") == 0 ? 0
                                                 : P11C_GEN_DECRYPT_ONLY;
    }
    return 1;
bad_id:
    P11C_RAISE(g->prov, P11C_R_BAD_PARAM, "id must be 1 to 64 bytes, as octets or hex");
    return 0;
}

/* Object label, id and PIN (pin-value, else pin-source) from the generation URI
 * (label/id params win). */
static int gen_from_uri(P11C_GEN *g, char **pin)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_ATTRIBUTE *a;
    const char *pv, *ps;
    char *read = NULL;
    P11C_ERR err;
    int ret = 0;

    if (u == NULL)
        return 0;
    if (p11_kit_uri_parse(g->uri, P11_KIT_URI_FOR_ANY, u) != P11_KIT_URI_OK) {
        P11C_RAISE(g->prov, p11c_reason_of_rv(P11C_CKR_URI_MALFORMED),
                   "key generation: '%s' is not a pkcs11: URI", g->uri);
        goto end;
    }
    a = p11_kit_uri_get_attribute(u, CKA_LABEL);
    if (a != NULL && g->label == NULL) {
        g->label = OPENSSL_strndup(a->pValue, a->ulValueLen);
        if (g->label == NULL)
            goto end;
    }
    a = p11_kit_uri_get_attribute(u, CKA_ID);
    if (a != NULL && !g->has_id && a->ulValueLen > 0 && a->ulValueLen <= sizeof(g->id)) {
        memcpy(g->id, a->pValue, a->ulValueLen);
        g->idlen = a->ulValueLen;
        g->has_id = 1;
    }
    pv = p11_kit_uri_get_pin_value(u);
    ps = p11_kit_uri_get_pin_source(u);
    if (pv != NULL) {
        if ((*pin = OPENSSL_strdup(pv)) == NULL)
            goto end;
    } else if (ps != NULL) {
        /* the reader the store's URIs go through: same file rules, same errors */
        memset(&err, 0, sizeof(err));
        if (p11c_pin_from_source(ps, &read, &err) != CKR_OK) {
            P11C_RAISE_RV(g->prov, &err);
            goto end;
        }
        *pin = OPENSSL_strdup(read);
        p11c_pin_free(read);
        if (*pin == NULL)
            goto end;
    }
    ret = 1;
end:
    p11_kit_uri_free(u);
    return ret;
}

P11C_PKEY *p11c_gen_run(P11C_GEN *g, p11c_gen_make_fn *make)
{
    P11C_PROV *prov = g->prov;
    P11C_MODULE *m;
    P11C_TOKEN *t = NULL;
    P11C_KEY *key = NULL;
    P11C_PKEY *pk = NULL;
    P11C_ERR err;
    char *pin = NULL;
    const char *token_uri;
    int persistent;
    CK_RV rv;

    memset(&err, 0, sizeof(err));
    m = p11c_prov_module(prov, "key generation");
    if (m == NULL)
        goto end;
    if (g->uri != NULL && !gen_from_uri(g, &pin))
        goto end;
    token_uri = g->uri != NULL ? g->uri : prov->token_uri;
    if (token_uri != NULL) {
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = p11c_token_find(m, token_uri, &t, &err);
        ERR_pop_to_mark();
    } else {
        pthread_mutex_lock(&prov->lock);
        t = prov->last_token;
        pthread_mutex_unlock(&prov->lock);
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = t != NULL ? CKR_OK : p11c_token_find(m, "pkcs11:", &t, &err);
        ERR_pop_to_mark();
    }
    if (rv != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    if (pin != NULL && (rv = p11c_token_login(t, pin, &err)) != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    persistent = g->persistent >= 0 ? g->persistent : (g->label != NULL || g->has_id);
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    rv = make(t, g, persistent, &key, &err);
    ERR_pop_to_mark();
    if (rv != CKR_OK) {
        P11C_RAISE_RV(prov, &err);
        goto end;
    }
    pk = p11c_pkey_from_key(prov, key, 0);
    if (pk != NULL)
        pk->priv = 1;
end:
    if (pin != NULL)
        OPENSSL_clear_free(pin, strlen(pin));
    return pk;
}

void p11c_gen_free(void *genctx)
{
    P11C_GEN *g = genctx;

    if (g == NULL)
        return;
    OPENSSL_free(g->uri);
    OPENSSL_free(g->label);
    OPENSSL_free(g);
}

/* ---- Kinds whose public half OpenSSL describes (EC, Edwards) -------------- */

int p11c_km_host_get_params(void *keydata, OSSL_PARAM params[])
{
    P11C_PKEY *pk = keydata;

    /* Size, security bits, group, point, default digest: as OpenSSL says
     * of the same public key. */
    return pk != NULL && pk->pub != NULL && EVP_PKEY_get_params(pk->pub, params);
}

int p11c_km_host_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    P11C_PKEY *pk = keydata;

    return p11c_km_export_check(pk, selection) && p11c_pkey_export_public(pk, cb, cbarg);
}
