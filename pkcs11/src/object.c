/* Finding key objects on a token, reading them, and pairing the halves of a
 * key (or copies of one) into groups. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void p11c_found_clear(P11C_FOUND *f)
{
    free(f->id);
    free(f->label);
    free(f->n);
    free(f->e);
    free(f->params);
    free(f->point);
    memset(f, 0, sizeof(*f));
}

void p11c_found_free(P11C_FOUND *f, size_t n)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        p11c_found_clear(&f[i]);
    free(f);
}

static int attr_ok(CK_RV rv)
{
    return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID;
}

CK_RV p11c_find_objects(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
                        CK_OBJECT_HANDLE **out, CK_ULONG *n, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    CK_OBJECT_HANDLE *all = NULL;
    CK_ULONG num = 0, cap = 0;

    *out = NULL;
    *n = 0;
    CK_RV rv = P11C_CALL(m, err, C_FindObjectsInit, s, tmpl, ntmpl);
    if (rv != CKR_OK)
        return rv;
    for (;;) {
        CK_OBJECT_HANDLE batch[32];
        CK_ULONG got = 0;
        rv = P11C_CALL(m, err, C_FindObjects, s, batch, 32, &got);
        if (rv != CKR_OK || got == 0)
            break;
        if (got > 32 || num + got > P11C_MAX_OBJECTS) {
            rv = p11c_err_rv(err, CKR_GENERAL_ERROR, "C_FindObjects");
            break;
        }
        if (num + got > cap) {
            CK_ULONG ncap = cap != 0 ? cap * 2 : 32;
            while (ncap < num + got)
                ncap *= 2;
            CK_OBJECT_HANDLE *grown = realloc(all, ncap * sizeof(*grown));
            if (grown == NULL) {
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_FindObjects");
                break;
            }
            all = grown;
            cap = ncap;
        }
        memcpy(all + num, batch, got * sizeof(*batch));
        num += got;
    }
    /* After a failure the error recorded stays the first one. */
    CK_RV rv2 = P11C_CALL(m, rv == CKR_OK ? err : NULL, C_FindObjectsFinal, s);
    if (rv2 != CKR_OK && !p11c_session_lost(rv2)) {
        /* No search may stay open on a session that goes back to the pool:
         * end it again, and if that fails too, have the session closed. */
        CK_RV rv3 = P11C_CALL(m, NULL, C_FindObjectsFinal, s);
        if (rv3 != CKR_OK && rv3 != CKR_OPERATION_NOT_INITIALIZED && p11c_session_reusable(rv2))
            rv2 =
                p11c_err_rv(rv == CKR_OK ? err : NULL, CKR_OPERATION_ACTIVE, "C_FindObjectsFinal");
    }
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK) {
        free(all);
        return rv;
    }
    *out = all;
    *n = num;
    return CKR_OK;
}

CK_RV p11c_get_attr(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len, P11C_ERR *err)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    *val = NULL;
    *len = 0;
    CK_RV rv = P11C_CALL(t->m, err, C_GetAttributeValue, s, obj, &a, 1);
    if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID)
        return CKR_OK;
    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
        return CKR_OK;
    if (a.ulValueLen > P11C_MAX_ATTR)
        return p11c_err_rv(err, CKR_GENERAL_ERROR, "C_GetAttributeValue");
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue == NULL)
        return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
    rv = P11C_CALL(t->m, err, C_GetAttributeValue, s, obj, &a, 1);
    if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        free(a.pValue);
        return attr_ok(rv) ? CKR_OK : rv;
    }
    *val = a.pValue;
    *len = a.ulValueLen;
    return CKR_OK;
}

/* Class, key type, CKA_TOKEN, id, label, and the public components (modulus
 * and exponent, or EC parameters and point) of one object, in two calls. */
static CK_RV read_found(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, P11C_FOUND *f,
                        P11C_ERR *err)
{
    CK_ATTRIBUTE a[9] = {
        {CKA_CLASS, &f->cls, sizeof(f->cls)},
        {CKA_KEY_TYPE, &f->kt, sizeof(f->kt)},
        {CKA_TOKEN, &f->token, sizeof(f->token)},
        {CKA_ID, NULL, 0},
        {CKA_LABEL, NULL, 0},
        {CKA_MODULUS, NULL, 0},
        {CKA_PUBLIC_EXPONENT, NULL, 0},
        {CKA_EC_PARAMS, NULL, 0},
        {CKA_EC_POINT, NULL, 0},
    };
    uint8_t **dst[6] = {&f->id, &f->label, &f->n, &f->e, &f->params, &f->point};
    size_t *dlen[6] = {&f->idlen, &f->labellen, &f->nlen, &f->elen, &f->paramslen, &f->pointlen};
    CK_ATTRIBUTE b[6];
    size_t which[6];
    CK_ULONG nb = 0;

    memset(f, 0, sizeof(*f));
    f->h = h;
    a[0].pValue = &f->cls;
    a[1].pValue = &f->kt;
    a[2].pValue = &f->token;
    CK_RV rv = P11C_CALL(t->m, err, C_GetAttributeValue, s, h, a, 9);
    if (!attr_ok(rv))
        return rv;
    if (a[0].ulValueLen != sizeof(f->cls))
        f->cls = (CK_OBJECT_CLASS)-1;
    if (a[1].ulValueLen != sizeof(f->kt))
        f->kt = (CK_KEY_TYPE)-1;
    if (a[2].ulValueLen != sizeof(f->token))
        f->token = CK_TRUE;
    for (size_t i = 0; i < 6; i++) {
        CK_ULONG len = a[3 + i].ulValueLen;
        if (len == CK_UNAVAILABLE_INFORMATION || len == 0)
            continue;
        if (len > P11C_MAX_ATTR)
            return p11c_err_rv(err, CKR_GENERAL_ERROR, "C_GetAttributeValue");
        *dst[i] = malloc(len);
        if (*dst[i] == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
        b[nb].type = a[3 + i].type;
        b[nb].pValue = *dst[i];
        b[nb].ulValueLen = len;
        which[nb++] = i;
    }
    if (nb == 0)
        return CKR_OK;
    rv = P11C_CALL(t->m, err, C_GetAttributeValue, s, h, b, nb);
    if (!attr_ok(rv))
        return rv;
    for (CK_ULONG j = 0; j < nb; j++) {
        size_t i = which[j];
        if (b[j].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            free(*dst[i]);
            *dst[i] = NULL;
            *dlen[i] = 0;
        } else {
            *dlen[i] = b[j].ulValueLen;
        }
    }
    /* Points are kept raw, whichever form the token stores them in, so that
     * the halves of a pair compare equal. */
    if (f->pointlen != 0) {
        const P11C_CURVE *c = p11c_curve_by_params(f->params, f->paramslen);
        const uint8_t *pt;
        size_t ptlen;
        if (c != NULL && p11c_point_unwrap(c, f->point, f->pointlen, &pt, &ptlen)) {
            memmove(f->point, pt, ptlen);
            f->pointlen = ptlen;
        } else {
            free(f->point);
            f->point = NULL;
            f->pointlen = 0;
        }
    }
    return CKR_OK;
}

/* Objects of class cls matching tmpl (class added here), read; RSA keys only.
 * *nonrsa counts the other key objects that matched. */
CK_RV p11c_objects_search(P11C_TOKEN *t, CK_OBJECT_CLASS cls, const CK_ATTRIBUTE *extra,
                          CK_ULONG nextra, P11C_FOUND **out, size_t *nout, size_t *nonrsa,
                          P11C_ERR *err)
{
    CK_ATTRIBUTE tmpl[8];
    CK_OBJECT_HANDLE *hs = NULL;
    CK_ULONG nh = 0;
    P11C_FOUND *f = NULL;
    size_t nf = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv = CKR_OK;

    *out = NULL;
    *nout = 0;
    tmpl[0].type = CKA_CLASS;
    tmpl[0].pValue = &cls;
    tmpl[0].ulValueLen = sizeof(cls);
    for (CK_ULONG i = 0; i < nextra && i < 7; i++)
        tmpl[1 + i] = extra[i];
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = p11c_session_get(t, &s, err);
        if (rv != CKR_OK)
            return rv;
        rv = p11c_find_objects(t, s, tmpl, 1 + (nextra < 7 ? nextra : 7), &hs, &nh, err);
        if (rv == CKR_OK && nh > 0) {
            f = calloc(nh, sizeof(*f));
            if (f == NULL)
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_FindObjects");
        }
        for (CK_ULONG i = 0; rv == CKR_OK && i < nh; i++) {
            rv = read_found(t, s, hs[i], &f[nf], err);
            int kind = f[nf].kt == CKK_RSA || f[nf].kt == CKK_EC || f[nf].kt == CKK_EC_EDWARDS;
            if (rv == CKR_OK && kind && f[nf].cls == cls) {
                nf++;
                continue;
            }
            if (rv == CKR_OK && f[nf].cls == cls && nonrsa != NULL)
                (*nonrsa)++;
            /* An object deleted meanwhile is simply no match. */
            if (rv == CKR_OBJECT_HANDLE_INVALID)
                rv = CKR_OK;
            p11c_found_clear(&f[nf]);
        }
        p11c_session_put(t, s, rv);
        free(hs);
        hs = NULL;
        if (rv == CKR_OK || !p11c_session_lost(rv) || attempt == 1)
            break;
        p11c_found_free(f, nf);
        f = NULL;
        nf = 0;
    }
    if (rv != CKR_OK) {
        p11c_found_free(f, nf);
        return rv;
    }
    *out = f;
    *nout = nf;
    return CKR_OK;
}

int p11c_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The two halves of one pair, or two copies of one key: same kind, same
 * modulus or EC point when both show it, else the same id, else (no id on
 * either) the same label. */
int p11c_same_key(const P11C_FOUND *a, const P11C_FOUND *b)
{
    if (a->kt != b->kt && a->kt != (CK_KEY_TYPE)-1 && b->kt != (CK_KEY_TYPE)-1)
        return 0;
    if (a->nlen != 0 && b->nlen != 0)
        return p11c_bytes_eq(a->n, a->nlen, b->n, b->nlen);
    if (a->pointlen != 0 && b->pointlen != 0)
        return p11c_bytes_eq(a->point, a->pointlen, b->point, b->pointlen);
    if (a->idlen != 0 || b->idlen != 0)
        return p11c_bytes_eq(a->id, a->idlen, b->id, b->idlen);
    return a->labellen != 0 && p11c_bytes_eq(a->label, a->labellen, b->label, b->labellen);
}

size_t p11c_objects_group(P11C_FOUND *f, size_t n)
{
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        f[i].group = groups;
        for (size_t j = 0; j < i; j++) {
            if (p11c_same_key(&f[i], &f[j])) {
                f[i].group = f[j].group;
                break;
            }
        }
        if (f[i].group == groups)
            groups++;
    }
    return groups;
}

uint8_t *p11c_dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len + 1);
    if (c != NULL && len != 0)
        memcpy(c, p, len);
    if (c != NULL)
        c[len] = 0;
    return c;
}
