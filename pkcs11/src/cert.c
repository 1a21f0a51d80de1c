/*
 * Certificates stored in a token (CKO_CERTIFICATE, X.509): found by the
 * URI's token, label and id, read without a login (certificates are public
 * objects). A URI naming a key (object=, no type=) also finds the key's
 * certificate when the labels differ: by the id of the key's public half,
 * as PKCS#11 pairs certificates with keys.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Certificates on t matching tmpl (class added here): each one's value,
 * label and id to cb. */
static CK_RV certs_on(P11C_TOKEN *t, const CK_ATTRIBUTE *extra, CK_ULONG nextra, p11c_cert_cb *cb,
                      void *arg, size_t *found, P11C_ERR *err)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ctype = CKC_X_509;
    CK_ATTRIBUTE tmpl[4] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)},
    };
    CK_OBJECT_HANDLE *h = NULL;
    CK_ULONG n = 0, ntmpl = 2;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    for (CK_ULONG i = 0; i < nextra && ntmpl < 4; i++)
        tmpl[ntmpl++] = extra[i];
    rv = p11c_session_get(t, &s, err);
    if (rv != CKR_OK)
        return rv;
    rv = p11c_find_objects(t, s, tmpl, ntmpl, &h, &n, err);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        P11C_CERT c;
        uint8_t *value = NULL, *label = NULL, *id = NULL;
        size_t vlen = 0, llen = 0, idlen = 0;

        rv = p11c_get_attr(t, s, h[i], CKA_VALUE, &value, &vlen, err);
        if (rv == CKR_OK)
            rv = p11c_get_attr(t, s, h[i], CKA_LABEL, &label, &llen, err);
        if (rv == CKR_OK)
            rv = p11c_get_attr(t, s, h[i], CKA_ID, &id, &idlen, err);
        if (rv == CKR_OK && vlen > 0) {
            char *l = (char *)p11c_dup_bytes(label, llen);
            if (l == NULL) {
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_cert_enum");
            } else {
                c.der = value;
                c.derlen = vlen;
                c.label = l;
                c.id = id;
                c.idlen = idlen;
                c.token = t->label;
                cb(&c, arg);
                (*found)++;
                free(l);
            }
        }
        free(value);
        free(label);
        free(id);
    }
    p11c_session_put(t, s, rv);
    free(h);
    return rv;
}

CK_RV p11c_cert_enum(P11C_MODULE *m, const char *uri, p11c_cert_cb *cb, void *arg, P11C_ERR *err)
{
    P11C_URI u;
    P11C_TOKEN **tokens = NULL;
    size_t ntokens = 0, found = 0;
    CK_ATTRIBUTE a[2];
    CK_ULONG na = 0;
    CK_RV rv;

    if (m == NULL || cb == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "p11c_cert_enum", "no module or callback");
    rv = p11c_uri_parse(uri, &u, err);
    if (rv != CKR_OK)
        return rv;
    p11c_err_what(err, "%s", u.desc);
    if (u.has_cls && u.cls != CKO_CERTIFICATE)
        goto end; /* keys and other objects are no certificates */
    rv = p11c_module_enter(m, err);
    if (rv == CKR_OK)
        rv = p11c_tokens_match(m, u.u, &tokens, &ntokens, err);
    if (rv != CKR_OK)
        goto end;
    if (u.label != NULL) {
        a[na].type = CKA_LABEL;
        a[na].pValue = (void *)u.label;
        a[na].ulValueLen = strlen(u.label);
        na++;
    }
    if (u.has_id) {
        a[na].type = CKA_ID;
        a[na].pValue = (void *)u.id;
        a[na].ulValueLen = u.idlen;
        na++;
    }
    for (size_t ti = 0; ti < ntokens && rv == CKR_OK; ti++) {
        size_t before = found;
        rv = certs_on(tokens[ti], a, na, cb, arg, &found, err);
        /* a key's label with no certificate of that label: the key's id */
        if (rv == CKR_OK && found == before && u.label != NULL && !u.has_id && !u.has_cls) {
            P11C_FOUND *f = NULL;
            size_t nf = 0;
            rv = p11c_objects_search(tokens[ti], CKO_PUBLIC_KEY, a, na, &f, &nf, NULL, err);
            for (size_t i = 0; rv == CKR_OK && i < nf; i++) {
                CK_ATTRIBUTE byid = {CKA_ID, f[i].id, f[i].idlen};
                if (f[i].idlen > 0 &&
                    (i == 0 || !p11c_bytes_eq(f[i].id, f[i].idlen, f[0].id, f[0].idlen)))
                    rv = certs_on(tokens[ti], &byid, 1, cb, arg, &found, err);
            }
            p11c_found_free(f, nf);
        }
    }
end:
    free(tokens);
    p11c_uri_clear(&u);
    return rv;
}
