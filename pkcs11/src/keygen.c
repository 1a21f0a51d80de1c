/* New keys in the token: generated pairs and imported RSA keys. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define P11C_RANDOM_ID_LEN 16

/* 1 in *taken when any key object on t carries attribute a. */
static CK_RV attr_taken(P11C_TOKEN *t, CK_SESSION_HANDLE s, const CK_ATTRIBUTE *a, int *taken,
                        P11C_ERR *err)
{
    static const CK_OBJECT_CLASS classes[] = {CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    *taken = 0;
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]) && !*taken; i++) {
        CK_OBJECT_CLASS cls = classes[i];
        CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof(cls)}, *a};
        CK_OBJECT_HANDLE *hs = NULL;
        CK_ULONG n = 0;
        CK_RV rv = p11c_find_objects(t, s, tmpl, 2, &hs, &n, err);
        free(hs);
        if (rv != CKR_OK)
            return rv;
        *taken = n > 0;
    }
    return CKR_OK;
}

/* Shared start of generate and import: checks, login, id, KEY_EXISTS, a session. */
static CK_RV prepare(P11C_TOKEN *t, const char *label, const uint8_t **id, size_t *idlen,
                     uint8_t *rid, int persistent, CK_SESSION_HANDLE *s, P11C_ERR *err)
{
    CK_RV rv = p11c_module_enter(t->m, err);
    if (rv != CKR_OK)
        return rv;
    rv = p11c_token_login_int(t, NULL, 0, err);
    if (rv != CKR_OK)
        return rv;
    rv = p11c_session_get(t, s, err);
    if (rv != CKR_OK)
        return rv;
    if (*id == NULL || *idlen == 0) {
        rv = P11C_CALL(t->m, err, C_GenerateRandom, *s, rid, P11C_RANDOM_ID_LEN);
        if (rv != CKR_OK)
            goto end;
        *id = rid;
        *idlen = P11C_RANDOM_ID_LEN;
    }
    if (persistent) {
        int taken = 0;
        CK_ATTRIBUTE a;
        if (label != NULL) {
            a.type = CKA_LABEL;
            a.pValue = (void *)label;
            a.ulValueLen = strlen(label);
            rv = attr_taken(t, *s, &a, &taken, err);
            if (rv != CKR_OK)
                goto end;
        }
        if (!taken) {
            a.type = CKA_ID;
            a.pValue = (void *)*id;
            a.ulValueLen = *idlen;
            rv = attr_taken(t, *s, &a, &taken, err);
            if (rv != CKR_OK)
                goto end;
        }
        if (taken) {
            size_t len = strlen(err != NULL ? err->what : "");
            if (err != NULL)
                snprintf(err->what + len, sizeof(err->what) - len,
                         ": the label or id is already used by a key");
            rv = p11c_err_rv(err, P11C_CKR_KEY_EXISTS, "C_FindObjects");
        }
    }
end:
    if (rv != CKR_OK)
        p11c_session_put(t, *s, rv);
    return rv;
}

/* Key object of kind kt for freshly made objects; takes over session s (held
 * for session objects, given back for token objects). */
static CK_RV finish_kind(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_KEY_TYPE kt, CK_OBJECT_HANDLE pub,
                         CK_OBJECT_HANDLE priv, const char *label, const uint8_t *id, size_t idlen,
                         int persistent, P11C_KEY **out, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    P11C_KEY *k = p11c_key_new(t);
    CK_RV rv = CKR_HOST_MEMORY;

    if (k == NULL)
        goto end;
    k->kt = kt;
    if (label != NULL) {
        free(k->label);
        k->label = p11c_pin_dup(label);
        if (k->label == NULL)
            goto end;
    }
    k->id = malloc(idlen);
    if (k->id == NULL)
        goto end;
    memcpy(k->id, id, idlen);
    k->idlen = idlen;
    rv = p11c_key_read_public(k, s, pub, err);
    if (rv != CKR_OK)
        goto end;
    k->pub = pub;
    k->priv = priv;
    k->public_only = priv == CK_INVALID_HANDLE;
    if (!persistent) {
        k->ephemeral = 1;
        k->hold = s;
        k->hold_epoch = atomic_load(&m->epoch);
    } else {
        p11c_session_put(t, s, CKR_OK);
    }
    *out = k;
    return CKR_OK;
end:
    if (rv == CKR_HOST_MEMORY)
        p11c_err_rv(err, rv, "p11c_key_new");
    /* Leave nothing half made behind. */
    if (priv != CK_INVALID_HANDLE)
        P11C_CALL(m, NULL, C_DestroyObject, s, priv);
    P11C_CALL(m, NULL, C_DestroyObject, s, pub);
    p11c_session_put(t, s, CKR_GENERAL_ERROR);
    if (k != NULL) {
        k->pub = k->priv = CK_INVALID_HANDLE;
        p11c_key_free(k);
    }
    return rv;
}

static CK_RV finish(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
                    const char *label, const uint8_t *id, size_t idlen, int persistent,
                    P11C_KEY **out, P11C_ERR *err)
{
    return finish_kind(t, s, CKK_RSA, pub, priv, label, id, idlen, persistent, out, err);
}

static void what_new(P11C_TOKEN *t, const char *label, P11C_ERR *err)
{
    if (label != NULL)
        p11c_err_what(err, "token '%s', new key '%s'", t->label, label);
    else
        p11c_err_what(err, "token '%s', new key", t->label);
}

/* per_use: the private key wants the PIN for every use (CKA_ALWAYS_AUTHENTICATE). */
/* A token without CKA_ALLOWED_MECHANISMS (NSS softokn answers
 * CKR_GENERAL_ERROR) is asked again without it (the last private attribute):
 * the flags still hold. */
static int without_mechs(CK_RV rv, CK_ATTRIBUTE *pub, CK_ULONG *npub, CK_ATTRIBUTE *priv,
                         CK_ULONG *npriv, void *arg)
{
    (void)pub;
    (void)npub;
    (void)arg;
    if ((rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
         rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_GENERAL_ERROR) &&
        *npriv > 0 && priv[*npriv - 1].type == CKA_ALLOWED_MECHANISMS) {
        (*npriv)--;
        return 1;
    }
    return 0;
}

static CK_RV generate_rsa(P11C_TOKEN *t, unsigned int bits, const char *label, const uint8_t *id,
                          size_t idlen, int persistent, int per_use, P11C_KEY **out, P11C_ERR *err)
{
    static const CK_BYTE f4[] = {0x01, 0x00, 0x01};
    int sign_only = (persistent & P11C_GEN_SIGN_ONLY) != 0;
    int decrypt_only = (persistent & P11C_GEN_DECRYPT_ONLY) != 0 && !sign_only;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, tok = (persistent & 1) ? CK_TRUE : CK_FALSE;
    CK_ULONG mbits = bits;
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    uint8_t rid[P11C_RANDOM_ID_LEN];
    CK_SESSION_HANDLE s;
    CK_RV rv;

    persistent &= 1;
    if (out != NULL)
        *out = NULL;
    if (t == NULL || out == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair", "no token");
    what_new(t, label, err);
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        size_t len = err != NULL ? strlen(err->what) : 0;
        if (err != NULL)
            snprintf(err->what + len, sizeof(err->what) - len,
                     ": %u bits (2048, 3072 or 4096 only)", bits);
        return p11c_err_rv(err, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair");
    }
    rv = prepare(t, label, &id, &idlen, rid, persistent, &s, err);
    if (rv != CKR_OK)
        return rv;

    CK_ULONG nl = label != NULL ? (CK_ULONG)strlen(label) : 0;
    /* A long-term key (P11C_GEN_SIGN_ONLY) only ever signs: it can neither
     * decrypt nor unwrap, so it can never serve as a decryption oracle, and
     * where the token honours CKA_ALLOWED_MECHANISMS it signs with these
     * only. A session key S (P11C_GEN_DECRYPT_ONLY) only decrypts (OAEP, or
     * raw RSA for the provider's OAEP fallback). Other keys keep both uses. */
    CK_BBOOL can_decrypt = sign_only ? CK_FALSE : CK_TRUE;
    CK_BBOOL can_sign = decrypt_only ? CK_FALSE : CK_TRUE;
    static const CK_MECHANISM_TYPE sign_mechs[] = {
        CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS,
        CKM_RSA_PKCS,     CKM_SHA256_RSA_PKCS,     CKM_SHA384_RSA_PKCS,     CKM_SHA512_RSA_PKCS,
    };
    static const CK_MECHANISM_TYPE decrypt_mechs[] = {CKM_RSA_PKCS_OAEP, CKM_RSA_X_509};
    int limited = sign_only || decrypt_only;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &tok, sizeof(tok)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &can_sign, sizeof(can_sign)},
        {CKA_ENCRYPT, &can_decrypt, sizeof(can_decrypt)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_MODULUS_BITS, &mbits, sizeof(mbits)},
        {CKA_PUBLIC_EXPONENT, (void *)f4, sizeof(f4)},
        {CKA_ID, (void *)id, (CK_ULONG)idlen},
        {CKA_LABEL, (void *)label, nl},
    };
    CK_ATTRIBUTE mechs = {CKA_ALLOWED_MECHANISMS,
                          (void *)(decrypt_only ? decrypt_mechs : sign_mechs),
                          decrypt_only ? sizeof(decrypt_mechs) : sizeof(sign_mechs)};
    CK_ATTRIBUTE priv[11] = {
        {CKA_TOKEN, &tok, sizeof(tok)},          {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},      {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &can_sign, sizeof(can_sign)}, {CKA_DECRYPT, &can_decrypt, sizeof(can_decrypt)},
        {CKA_UNWRAP, &no, sizeof(no)},           {CKA_ID, (void *)id, (CK_ULONG)idlen},
        {CKA_LABEL, (void *)label, nl},
    };
    CK_ULONG npub = sizeof(pub) / sizeof(pub[0]) - (label == NULL);
    CK_ULONG npriv = label != NULL ? 9 : 8;

    if (per_use)
        priv[npriv++] = (CK_ATTRIBUTE){CKA_ALWAYS_AUTHENTICATE, &yes, sizeof(yes)};
    if (limited) /* last, so that a token without it can be asked again without it */
        priv[npriv++] = mechs;

    rv = p11c_keygen_run(t, &s, &mech, pub, npub, priv, npriv, limited ? without_mechs : NULL, NULL,
                         &hpub, &hpriv, err);
    if (rv != CKR_OK)
        return rv;
    return finish(t, s, hpub, hpriv, label, id, idlen, persistent, out, err);
}

CK_RV p11c_key_generate(P11C_TOKEN *t, unsigned int bits, const char *label, const uint8_t *id,
                        size_t idlen, int persistent, P11C_KEY **out, P11C_ERR *err)
{
    return generate_rsa(t, bits, label, id, idlen, persistent, 0, out, err);
}

CK_RV p11c_key_generate_per_use(P11C_TOKEN *t, unsigned int bits, const char *label,
                                const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                                P11C_ERR *err)
{
    return generate_rsa(t, bits, label, id, idlen, persistent, 1, out, err);
}

CK_RV p11c_key_import(P11C_TOKEN *t, const P11C_RSA_PARTS *parts, const char *label,
                      const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                      P11C_ERR *err)
{
    CK_OBJECT_CLASS cpub = CKO_PUBLIC_KEY, cpriv = CKO_PRIVATE_KEY;
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, tok = persistent ? CK_TRUE : CK_FALSE;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    uint8_t rid[P11C_RANDOM_ID_LEN];
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (out != NULL)
        *out = NULL;
    if (t == NULL || out == NULL || parts == NULL || parts->n == NULL || parts->nlen == 0 ||
        parts->e == NULL || parts->elen == 0)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_CreateObject",
                            "import needs at least n and e");
    what_new(t, label, err);
    rv = prepare(t, label, &id, &idlen, rid, persistent, &s, err);
    if (rv != CKR_OK)
        return rv;

    CK_ULONG nl = label != NULL ? (CK_ULONG)strlen(label) : 0;
    if (parts->d != NULL) {
        CK_ATTRIBUTE a[20] = {
            {CKA_CLASS, &cpriv, sizeof(cpriv)},
            {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
            {CKA_TOKEN, &tok, sizeof(tok)},
            {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_SENSITIVE, &yes, sizeof(yes)},
            {CKA_EXTRACTABLE, &no, sizeof(no)},
            {CKA_SIGN, &yes, sizeof(yes)},
            {CKA_DECRYPT, &yes, sizeof(yes)},
            {CKA_ID, (void *)id, (CK_ULONG)idlen},
            {CKA_MODULUS, (void *)parts->n, (CK_ULONG)parts->nlen},
            {CKA_PUBLIC_EXPONENT, (void *)parts->e, (CK_ULONG)parts->elen},
            {CKA_PRIVATE_EXPONENT, (void *)parts->d, (CK_ULONG)parts->dlen},
        };
        CK_ULONG na = 12;
        const struct {
            CK_ATTRIBUTE_TYPE type;
            const uint8_t *v;
            size_t len;
        } crt[] = {
            {CKA_PRIME_1, parts->p, parts->plen},
            {CKA_PRIME_2, parts->q, parts->qlen},
            {CKA_EXPONENT_1, parts->dp, parts->dplen},
            {CKA_EXPONENT_2, parts->dq, parts->dqlen},
            {CKA_COEFFICIENT, parts->qinv, parts->qinvlen},
        };
        for (size_t i = 0; i < sizeof(crt) / sizeof(crt[0]); i++) {
            if (crt[i].v != NULL && crt[i].len != 0) {
                a[na].type = crt[i].type;
                a[na].pValue = (void *)crt[i].v;
                a[na].ulValueLen = (CK_ULONG)crt[i].len;
                na++;
            }
        }
        if (label != NULL) {
            a[na].type = CKA_LABEL;
            a[na].pValue = (void *)label;
            a[na].ulValueLen = nl;
            na++;
        }
        rv = P11C_CALL(t->m, err, C_CreateObject, s, a, na, &hpriv);
        if (rv != CKR_OK) {
            p11c_session_put(t, s, rv);
            return rv;
        }
    }
    CK_ATTRIBUTE b[] = {
        {CKA_CLASS, &cpub, sizeof(cpub)},
        {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
        {CKA_TOKEN, &tok, sizeof(tok)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_ID, (void *)id, (CK_ULONG)idlen},
        {CKA_MODULUS, (void *)parts->n, (CK_ULONG)parts->nlen},
        {CKA_PUBLIC_EXPONENT, (void *)parts->e, (CK_ULONG)parts->elen},
        {CKA_LABEL, (void *)label, nl},
    };
    CK_ULONG nb = sizeof(b) / sizeof(b[0]) - (label == NULL);
    rv = P11C_CALL(t->m, err, C_CreateObject, s, b, nb, &hpub);
    if (rv != CKR_OK) {
        if (hpriv != CK_INVALID_HANDLE)
            P11C_CALL(t->m, NULL, C_DestroyObject, s, hpriv);
        p11c_session_put(t, s, rv);
        return rv;
    }
    return finish(t, s, hpub, hpriv, label, id, idlen, persistent, out, err);
}

/* ---- Shared with the other kinds' generation and import (ec.c) ------------ */

CK_RV p11c_keygen_prepare(P11C_TOKEN *t, const char *label, const uint8_t **id, size_t *idlen,
                          uint8_t *rid, int persistent, CK_SESSION_HANDLE *s, P11C_ERR *err)
{
    return prepare(t, label, id, idlen, rid, persistent, s, err);
}

CK_RV p11c_keygen_finish(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_KEY_TYPE kt, CK_OBJECT_HANDLE pub,
                         CK_OBJECT_HANDLE priv, const char *label, const uint8_t *id, size_t idlen,
                         int persistent, P11C_KEY **out, P11C_ERR *err)
{
    return finish_kind(t, s, kt, pub, priv, label, id, idlen, persistent, out, err);
}

void p11c_keygen_what(P11C_TOKEN *t, const char *label, P11C_ERR *err)
{
    what_new(t, label, err);
}

CK_RV p11c_keygen_run(P11C_TOKEN *t, CK_SESSION_HANDLE *s, CK_MECHANISM *mech, CK_ATTRIBUTE *pub,
                      CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv, P11C_KEYGEN_RETRY *retry,
                      void *arg, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv, P11C_ERR *err)
{
    CK_RV rv;

    for (int again_login = 0, again_session = 0;;) {
        rv = P11C_CALL(t->m, err, C_GenerateKeyPair, *s, mech, pub, npub, priv, npriv, hpub, hpriv);
        if (rv == CKR_OK)
            return CKR_OK;
        if (retry != NULL && retry(rv, pub, &npub, priv, &npriv, arg))
            continue;
        if (rv == CKR_USER_NOT_LOGGED_IN && !again_login) {
            again_login = 1;
            p11c_session_put(t, *s, rv);
            rv = p11c_token_login_int(t, NULL, 1, err);
            if (rv == CKR_OK)
                rv = p11c_session_get(t, s, err);
            if (rv != CKR_OK)
                return rv;
            continue;
        }
        if (p11c_session_lost(rv) && !again_session) {
            again_session = 1;
            p11c_session_put(t, *s, rv);
            rv = p11c_session_get(t, s, err);
            if (rv != CKR_OK)
                return rv;
            continue;
        }
        p11c_session_put(t, *s, rv);
        return rv;
    }
}
