/* Loading keys by URI and enumerating them: the key named by a URI on each
 * matching token, public objects first, private ones after login. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Label, id, kind and public components of the key from the objects of
 * group g, public objects first. P11C_CKR_NOT_RSA when no object shows the
 * public components (k->kt then says which kind to read elsewhere). */
static CK_RV key_fill(P11C_KEY *k, const P11C_FOUND *f, size_t n, size_t g, P11C_ERR *err)
{
    const P11C_FOUND *withn = NULL, *withpt = NULL, *withid = NULL, *withlabel = NULL;
    const P11C_FOUND *any = NULL;
    for (int pass = 0; pass < 2; pass++) {
        CK_OBJECT_CLASS cls = pass == 0 ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
        for (size_t i = 0; i < n; i++) {
            if (f[i].group != g || f[i].cls != cls)
                continue;
            if (any == NULL)
                any = &f[i];
            if (withn == NULL && f[i].nlen != 0 && f[i].elen != 0)
                withn = &f[i];
            if (withpt == NULL && f[i].pointlen != 0 && f[i].paramslen != 0)
                withpt = &f[i];
            if (withid == NULL && f[i].idlen != 0)
                withid = &f[i];
            if (withlabel == NULL && f[i].labellen != 0)
                withlabel = &f[i];
            if (cls == CKO_PUBLIC_KEY && k->pub == CK_INVALID_HANDLE)
                k->pub = f[i].h;
            /* The token object, rather than a session copy made by
             * another key of this process. */
            if (cls == CKO_PRIVATE_KEY &&
                (k->priv == CK_INVALID_HANDLE || (f[i].token && k->copy != P11C_COPY_WANTED))) {
                k->priv = f[i].h;
                k->copy = f[i].token ? P11C_COPY_WANTED : P11C_COPY_NONE;
            }
        }
    }
    if (any != NULL)
        k->kt = any->kt;
    if (withid != NULL) {
        k->id = p11c_dup_bytes(withid->id, withid->idlen);
        if (k->id == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
        k->idlen = withid->idlen;
    }
    if (withlabel != NULL) {
        free(k->label);
        k->label = (char *)p11c_dup_bytes(withlabel->label, withlabel->labellen);
        if (k->label == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
    }
    if (k->kt == CKK_RSA && withn != NULL) {
        if (p11c_key_set_public(k, withn->n, withn->nlen, withn->e, withn->elen) != CKR_OK)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
        return CKR_OK;
    }
    if (k->kt != CKK_RSA && withpt != NULL)
        return p11c_key_set_ec_public(k, withpt->params, withpt->paramslen, withpt->point,
                                      withpt->pointlen);
    return p11c_err_rv(err, P11C_CKR_NOT_RSA, "C_GetAttributeValue");
}

/* A private object that hides its public components (every EC private key
 * in SoftHSM2 hides its point): read them from the public half of the
 * pair. */
static CK_RV fill_from_public(P11C_KEY *k, P11C_ERR *err)
{
    CK_OBJECT_HANDLE pub;
    size_t npub = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv = p11c_key_objects(k, CKO_PUBLIC_KEY, &pub, NULL, 1, &npub, err);
    if (rv == CKR_OK && npub == 0)
        rv = p11c_err_rv(err, P11C_CKR_NOT_RSA, "C_GetAttributeValue");
    if (rv == CKR_OK)
        rv = p11c_session_get(k->t, &s, err);
    if (rv == CKR_OK) {
        rv = p11c_key_read_public(k, s, pub, err);
        p11c_session_put(k->t, s, rv);
    }
    return rv;
}

/* URI object attributes (label, id) as a template. */
static CK_ULONG uri_template(const P11C_URI *u, CK_ATTRIBUTE *a)
{
    CK_ULONG n = 0;
    if (u->label != NULL) {
        a[n].type = CKA_LABEL;
        a[n].pValue = (void *)u->label;
        a[n].ulValueLen = strlen(u->label);
        n++;
    }
    if (u->has_id) {
        a[n].type = CKA_ID;
        a[n].pValue = (void *)u->id;
        a[n].ulValueLen = u->idlen;
        n++;
    }
    return n;
}

int p11c_pin_known(P11C_TOKEN *t, const char *pin)
{
    if (pin != NULL || (t->info.flags & CKF_LOGIN_REQUIRED) == 0 ||
        (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0 || p11c_token_logged_in(t))
        return 1;
    char *mpin = p11c_module_pin_copy(t->m);
    int known = mpin != NULL;
    p11c_pin_free(mpin);
    return known;
}

/* The key named by u on t: public objects first (no login), private ones
 * when needed. *detail explains a P11C_CKR_NO_KEY. */
static CK_RV load_on_token(P11C_TOKEN *t, const P11C_URI *u, int need_priv, int pub_only,
                           const char *pin, P11C_KEY **out, size_t *nonrsa, const char **detail,
                           P11C_ERR *err)
{
    CK_ATTRIBUTE a[2];
    CK_ULONG na = uri_template(u, a);
    P11C_FOUND *f = NULL;
    size_t nf = 0, ng;
    P11C_KEY *k = NULL;
    CK_RV rv;

    *out = NULL;
    if (!need_priv) {
        rv = p11c_objects_search(t, CKO_PUBLIC_KEY, a, na, &f, &nf, nonrsa, err);
        if (rv != CKR_OK)
            goto end;
        ng = p11c_objects_group(f, nf);
        if (ng > 1) {
            rv = P11C_CKR_KEY_AMBIGUOUS;
            goto end;
        }
        if (ng == 1)
            goto make;
        if (pub_only) {
            rv = P11C_CKR_NO_KEY;
            goto end;
        }
        if (!p11c_pin_known(t, pin)) {
            *detail = "no public key object, and no PIN to look for private ones";
            rv = P11C_CKR_NO_KEY;
            goto end;
        }
        p11c_found_free(f, nf);
        f = NULL;
        nf = 0;
    }
    /* A session lost during the search may have taken the login with it
     * (closing an application's last session logs it out): private objects
     * are then invisible, not absent, so log in again and look once more. */
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = p11c_token_login_int(t, pin, 0, err);
        if (rv != CKR_OK)
            goto end;
        rv = p11c_objects_search(t, CKO_PRIVATE_KEY, a, na, &f, &nf, nonrsa, err);
        if (rv != CKR_OK)
            goto end;
        if (nf > 0 || p11c_token_logged_in(t))
            break;
    }
    ng = p11c_objects_group(f, nf);
    if (ng > 1) {
        rv = P11C_CKR_KEY_AMBIGUOUS;
        goto end;
    }
    if (ng == 0) {
        rv = P11C_CKR_NO_KEY;
        goto end;
    }
make:
    k = p11c_key_new(t);
    if (k == NULL) {
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_key_load");
        goto end;
    }
    k->public_only = pub_only;
    rv = key_fill(k, f, nf, 0, err);
    if (rv == P11C_CKR_NOT_RSA && k->priv != CK_INVALID_HANDLE)
        rv = fill_from_public(k, err);
    if (rv != CKR_OK)
        goto end;
    *out = k;
    k = NULL;
end:
    p11c_key_free(k);
    p11c_found_free(f, nf);
    return rv;
}

/* Parses uri, reads its PIN and matches its tokens: the first steps of every
 * lookup. On failure nothing is left to release. */
static CK_RV uri_tokens(P11C_MODULE *m, const char *uri, P11C_URI *u, P11C_TOKEN ***tokens,
                        size_t *ntokens, P11C_ERR *err)
{
    *tokens = NULL;
    *ntokens = 0;
    CK_RV rv = p11c_uri_parse(uri, u, err);
    if (rv != CKR_OK)
        return rv;
    p11c_err_what(err, "%s", u->desc);
    rv = p11c_uri_pin(u, err);
    if (rv == CKR_OK)
        rv = p11c_module_enter(m, err);
    if (rv == CKR_OK)
        rv = p11c_tokens_match(m, u->u, tokens, ntokens, err);
    if (rv != CKR_OK) {
        free(*tokens);
        *tokens = NULL;
        p11c_uri_clear(u);
    }
    return rv;
}

CK_RV p11c_key_load(P11C_MODULE *m, const char *uri, p11c_want want, P11C_KEY **out, P11C_ERR *err)
{
    P11C_URI u;
    P11C_TOKEN **tokens = NULL;
    size_t ntokens = 0, nonrsa = 0;
    P11C_KEY *key = NULL;
    const char *detail = NULL;
    CK_RV rv;

    if (m == NULL || out == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "p11c_key_load", "no module");
    *out = NULL;
    rv = uri_tokens(m, uri, &u, &tokens, &ntokens, err);
    if (rv != CKR_OK)
        return rv;
    if (u.has_cls && u.cls != CKO_PUBLIC_KEY && u.cls != CKO_PRIVATE_KEY) {
        rv = p11c_err_set(err, P11C_CKR_URI_UNSUPPORTED, "p11c_key_load",
                          "%s: only keys (type=private or type=public) can be loaded", u.desc);
        goto end;
    }
    if (want == P11C_WANT_PRIVATE && u.has_cls && u.cls == CKO_PUBLIC_KEY) {
        rv = p11c_err_set(err, P11C_CKR_NO_KEY, "p11c_key_load", "%s: the private half is needed",
                          u.desc);
        goto end;
    }
    int need_priv = want == P11C_WANT_PRIVATE || (u.has_cls && u.cls == CKO_PRIVATE_KEY);
    int pub_only = u.has_cls && u.cls == CKO_PUBLIC_KEY;

    if (ntokens == 0) {
        rv = p11c_no_token(m, u.u, u.desc, "p11c_key_load", err);
        goto end;
    }
    for (size_t i = 0; i < ntokens; i++) {
        P11C_KEY *k = NULL;
        rv = load_on_token(tokens[i], &u, need_priv, pub_only, u.pin, &k, &nonrsa, &detail, err);
        if (rv == P11C_CKR_NO_KEY)
            continue;
        if (rv == P11C_CKR_KEY_AMBIGUOUS || (rv == CKR_OK && key != NULL)) {
            p11c_key_free(k);
            rv = p11c_err_set(err, P11C_CKR_KEY_AMBIGUOUS, "p11c_key_load",
                              "%s: different keys match", u.desc);
            goto end;
        }
        if (rv == P11C_CKR_NOT_RSA) {
            nonrsa++; /* a key, but of a kind or on a curve we do not use */
            continue;
        }
        if (rv != CKR_OK) {
            p11c_err_what(err, "%s", u.desc);
            goto end;
        }
        key = k;
    }
    if (key == NULL) {
        if (nonrsa > 0)
            rv = p11c_err_set(err, P11C_CKR_NOT_RSA, "p11c_key_load",
                              "%s: not a key of a kind p11chat uses (RSA; EC on P-256, P-384 or "
                              "P-521; Ed25519 or Ed448)",
                              u.desc);
        else
            rv = p11c_err_set(err, P11C_CKR_NO_KEY, "p11c_key_load", "%s: %s", u.desc,
                              detail != NULL ? detail : "no such key");
        goto end;
    }
    key->pin = u.pin;
    u.pin = NULL;
    *out = key;
    key = NULL;
    rv = CKR_OK;
end:
    p11c_key_free(key);
    free(tokens);
    p11c_uri_clear(&u);
    return rv;
}

CK_RV p11c_key_enum(P11C_MODULE *m, const char *uri, void (*cb)(P11C_KEY *key, void *arg),
                    void *arg, P11C_ERR *err)
{
    P11C_URI u;
    P11C_TOKEN **tokens = NULL;
    size_t ntokens = 0;
    P11C_FOUND *f = NULL, *fpriv = NULL;
    size_t nf = 0, npriv = 0;
    CK_RV rv;

    if (m == NULL || cb == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "p11c_key_enum", "no module or callback");
    rv = uri_tokens(m, uri, &u, &tokens, &ntokens, err);
    if (rv != CKR_OK)
        return rv;
    if (u.has_cls && u.cls != CKO_PUBLIC_KEY && u.cls != CKO_PRIVATE_KEY)
        goto end; /* certificates and other objects are no keys */

    for (size_t ti = 0; ti < ntokens; ti++) {
        P11C_TOKEN *t = tokens[ti];
        CK_ATTRIBUTE a[2];
        CK_ULONG na = uri_template(&u, a);
        int privs_searched = 0;

        if (!u.has_cls || u.cls == CKO_PUBLIC_KEY) {
            rv = p11c_objects_search(t, CKO_PUBLIC_KEY, a, na, &f, &nf, NULL, err);
            if (rv != CKR_OK)
                goto end;
        }
        if ((!u.has_cls || u.cls == CKO_PRIVATE_KEY) && p11c_pin_known(t, u.pin)) {
            rv = p11c_token_login_int(t, u.pin, 0, err);
            if (rv == CKR_OK)
                rv = p11c_objects_search(t, CKO_PRIVATE_KEY, a, na, &fpriv, &npriv, NULL, err);
            if (rv != CKR_OK)
                goto end;
            privs_searched = 1;
            if (npriv > 0) {
                P11C_FOUND *all = realloc(f, (nf + npriv) * sizeof(*all));
                if (all == NULL) {
                    rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_key_enum");
                    goto end;
                }
                memcpy(all + nf, fpriv, npriv * sizeof(*all));
                f = all;
                nf += npriv;
                free(fpriv);
                fpriv = NULL;
                npriv = 0;
            }
        }
        size_t ng = p11c_objects_group(f, nf);
        for (size_t g = 0; g < ng; g++) {
            P11C_KEY *k = p11c_key_new(t);
            if (k == NULL) {
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_key_enum");
                goto end;
            }
            k->public_only = u.has_cls && u.cls == CKO_PUBLIC_KEY;
            CK_RV frv = key_fill(k, f, nf, g, NULL);
            if (frv == P11C_CKR_NOT_RSA && k->priv != CK_INVALID_HANDLE)
                frv = fill_from_public(k, NULL);
            if (frv != CKR_OK) {
                p11c_key_free(k); /* no readable public half: unusable, skipped */
                continue;
            }
            if (privs_searched && k->priv == CK_INVALID_HANDLE)
                k->priv_absent = 1;
            if (u.pin != NULL && (k->pin = p11c_pin_dup(u.pin)) == NULL) {
                p11c_key_free(k);
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_key_enum");
                goto end;
            }
            cb(k, arg);
            p11c_key_free(k);
        }
        p11c_found_free(f, nf);
        f = NULL;
        nf = 0;
    }
    rv = CKR_OK;
end:
    p11c_found_free(f, nf);
    p11c_found_free(fpriv, npriv);
    free(tokens);
    p11c_uri_clear(&u);
    return rv;
}
