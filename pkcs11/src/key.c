/* Keys: finding and pairing objects, cached handles, sign, decrypt, destroy. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Bounds on what a token may make us allocate. */
#define P11C_MAX_OBJECTS 4096
#define P11C_MAX_ATTR    65536
/* The largest modulus read back on its own (16384 bits). */
#define P11C_MAX_MODULUS 2048

/* One key object as read from the token. */
typedef struct p11c_found {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    CK_BBOOL token; /* CKA_TOKEN; true when the token does not say */
    uint8_t *id, *label, *n, *e;
    size_t idlen, labellen, nlen, elen;
    size_t group;
} P11C_FOUND;

static void found_clear(P11C_FOUND *f)
{
    free(f->id);
    free(f->label);
    free(f->n);
    free(f->e);
    memset(f, 0, sizeof(*f));
}

static void found_free(P11C_FOUND *f, size_t n)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        found_clear(&f[i]);
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

/* Class, key type, CKA_TOKEN, id, label, modulus and exponent of one object,
 * in two calls. */
static CK_RV read_found(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, P11C_FOUND *f,
                        P11C_ERR *err)
{
    CK_ATTRIBUTE a[7] = {
        {CKA_CLASS, &f->cls, sizeof(f->cls)},
        {CKA_KEY_TYPE, &f->kt, sizeof(f->kt)},
        {CKA_ID, NULL, 0},
        {CKA_LABEL, NULL, 0},
        {CKA_MODULUS, NULL, 0},
        {CKA_PUBLIC_EXPONENT, NULL, 0},
        {CKA_TOKEN, &f->token, sizeof(f->token)},
    };
    uint8_t **dst[4] = {&f->id, &f->label, &f->n, &f->e};
    size_t *dlen[4] = {&f->idlen, &f->labellen, &f->nlen, &f->elen};
    CK_ATTRIBUTE b[4];
    size_t which[4];
    CK_ULONG nb = 0;

    memset(f, 0, sizeof(*f));
    f->h = h;
    a[0].pValue = &f->cls;
    a[1].pValue = &f->kt;
    a[6].pValue = &f->token;
    CK_RV rv = P11C_CALL(t->m, err, C_GetAttributeValue, s, h, a, 7);
    if (!attr_ok(rv))
        return rv;
    if (a[0].ulValueLen != sizeof(f->cls))
        f->cls = (CK_OBJECT_CLASS)-1;
    if (a[1].ulValueLen != sizeof(f->kt))
        f->kt = (CK_KEY_TYPE)-1;
    if (a[6].ulValueLen != sizeof(f->token))
        f->token = CK_TRUE;
    for (size_t i = 0; i < 4; i++) {
        CK_ULONG len = a[2 + i].ulValueLen;
        if (len == CK_UNAVAILABLE_INFORMATION || len == 0)
            continue;
        if (len > P11C_MAX_ATTR)
            return p11c_err_rv(err, CKR_GENERAL_ERROR, "C_GetAttributeValue");
        *dst[i] = malloc(len);
        if (*dst[i] == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
        b[nb].type = a[2 + i].type;
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
    return CKR_OK;
}

/* Objects of class cls matching tmpl (class added here), read; RSA keys only.
 * *nonrsa counts the other key objects that matched. */
static CK_RV search(P11C_TOKEN *t, CK_OBJECT_CLASS cls, const CK_ATTRIBUTE *extra, CK_ULONG nextra,
                    P11C_FOUND **out, size_t *nout, size_t *nonrsa, P11C_ERR *err)
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
            if (rv == CKR_OK && f[nf].kt == CKK_RSA && f[nf].cls == cls) {
                nf++;
                continue;
            }
            if (rv == CKR_OK && f[nf].cls == cls && nonrsa != NULL)
                (*nonrsa)++;
            /* An object deleted meanwhile is simply no match. */
            if (rv == CKR_OBJECT_HANDLE_INVALID)
                rv = CKR_OK;
            found_clear(&f[nf]);
        }
        p11c_session_put(t, s, rv);
        free(hs);
        hs = NULL;
        if (rv == CKR_OK || !p11c_session_lost(rv) || attempt == 1)
            break;
        found_free(f, nf);
        f = NULL;
        nf = 0;
    }
    if (rv != CKR_OK) {
        found_free(f, nf);
        return rv;
    }
    *out = f;
    *nout = nf;
    return CKR_OK;
}

static int bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The two halves of one pair, or two copies of one key: same modulus when both
 * show it, else the same id, else (no id on either) the same label. */
static int same_key(const P11C_FOUND *a, const P11C_FOUND *b)
{
    if (a->nlen != 0 && b->nlen != 0)
        return bytes_eq(a->n, a->nlen, b->n, b->nlen);
    if (a->idlen != 0 || b->idlen != 0)
        return bytes_eq(a->id, a->idlen, b->id, b->idlen);
    return a->labellen != 0 && bytes_eq(a->label, a->labellen, b->label, b->labellen);
}

static size_t group(P11C_FOUND *f, size_t n)
{
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        f[i].group = groups;
        for (size_t j = 0; j < i; j++) {
            if (same_key(&f[i], &f[j])) {
                f[i].group = f[j].group;
                break;
            }
        }
        if (f[i].group == groups)
            groups++;
    }
    return groups;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len + 1);
    if (c != NULL && len != 0)
        memcpy(c, p, len);
    if (c != NULL)
        c[len] = 0;
    return c;
}

static unsigned int bits_of(const uint8_t *n, size_t nlen)
{
    while (nlen > 0 && n[0] == 0) {
        n++;
        nlen--;
    }
    if (nlen == 0)
        return 0;
    unsigned int bits = (unsigned int)(nlen * 8);
    for (uint8_t top = n[0]; (top & 0x80) == 0; top <<= 1)
        bits--;
    return bits;
}

/* Sets the public components (copied) of k. */
CK_RV p11c_key_set_public(P11C_KEY *k, const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen)
{
    while (nlen > 1 && n[0] == 0) {
        n++;
        nlen--;
    }
    while (elen > 1 && e[0] == 0) {
        e++;
        elen--;
    }
    uint8_t *nc = dup_bytes(n, nlen), *ec = dup_bytes(e, elen);
    if (nc == NULL || ec == NULL) {
        free(nc);
        free(ec);
        return CKR_HOST_MEMORY;
    }
    free(k->n);
    free(k->e);
    k->n = nc;
    k->nlen = nlen;
    k->e = ec;
    k->elen = elen;
    k->bits = bits_of(nc, nlen);
    return CKR_OK;
}

/* Label, id and public components of the key from the objects of group g,
 * public objects first. */
static CK_RV key_fill(P11C_KEY *k, const P11C_FOUND *f, size_t n, size_t g, P11C_ERR *err)
{
    const P11C_FOUND *withn = NULL, *withid = NULL, *withlabel = NULL;
    for (int pass = 0; pass < 2; pass++) {
        CK_OBJECT_CLASS cls = pass == 0 ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
        for (size_t i = 0; i < n; i++) {
            if (f[i].group != g || f[i].cls != cls)
                continue;
            if (withn == NULL && f[i].nlen != 0 && f[i].elen != 0)
                withn = &f[i];
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
    if (withn == NULL)
        return p11c_err_rv(err, P11C_CKR_NOT_RSA, "C_GetAttributeValue");
    if (p11c_key_set_public(k, withn->n, withn->nlen, withn->e, withn->elen) != CKR_OK)
        return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
    if (withid != NULL) {
        k->id = dup_bytes(withid->id, withid->idlen);
        if (k->id == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
        k->idlen = withid->idlen;
    }
    if (withlabel != NULL) {
        free(k->label);
        k->label = (char *)dup_bytes(withlabel->label, withlabel->labellen);
        if (k->label == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
    }
    return CKR_OK;
}

P11C_KEY *p11c_key_new(P11C_TOKEN *t)
{
    P11C_KEY *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->label = calloc(1, 1);
    if (k->label == NULL) {
        free(k);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->t = t;
    k->pub = k->priv = CK_INVALID_HANDLE;
    k->hold = CK_INVALID_HANDLE;
    k->epoch = atomic_load(&t->m->epoch);
    pthread_mutex_init(&k->lock, NULL);
    p11c_module_ref(t->m);
    return k;
}

CK_RV p11c_key_read_public(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, P11C_ERR *err)
{
    uint8_t *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    CK_RV rv = p11c_get_attr(k->t, s, obj, CKA_MODULUS, &n, &nlen, err);
    if (rv == CKR_OK)
        rv = p11c_get_attr(k->t, s, obj, CKA_PUBLIC_EXPONENT, &e, &elen, err);
    if (rv == CKR_OK && (nlen == 0 || elen == 0))
        rv = p11c_err_rv(err, P11C_CKR_NOT_RSA, "C_GetAttributeValue");
    if (rv == CKR_OK && p11c_key_set_public(k, n, nlen, e, elen) != CKR_OK)
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetAttributeValue");
    free(n);
    free(e);
    return rv;
}

void p11c_key_what(const P11C_KEY *k, P11C_ERR *err)
{
    if (err == NULL)
        return;
    if (k->label[0] != '\0') {
        p11c_err_what(err, "token '%s', key '%s'", k->t->label, k->label);
    } else {
        char hex[2 * 20 + 1] = "";
        size_t n = k->idlen < 20 ? k->idlen : 20;
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", k->id[i]);
        p11c_err_what(err, "token '%s', key id %s", k->t->label, hex);
    }
}

/* Appends ": detail" to err->what. */
static void what_detail(P11C_ERR *err, const char *detail)
{
    if (err == NULL)
        return;
    size_t len = strlen(err->what);
    snprintf(err->what + len, sizeof(err->what) - len, ": %s", detail);
}

/* Caller holds k->lock: forget handles of an earlier initialisation. */
static void key_refresh_locked(P11C_KEY *k)
{
    unsigned long epoch = atomic_load(&k->t->m->epoch);
    if (k->epoch != epoch) {
        k->epoch = epoch;
        k->pub = k->priv = CK_INVALID_HANDLE;
        k->priv_absent = 0;
        k->copy = P11C_COPY_NONE; /* a copy of the parent's, or gone */
    }
}

/* Template naming this key's objects of class cls: by id, else label, else
 * modulus. */
static CK_ULONG key_template(const P11C_KEY *k, CK_ATTRIBUTE *a)
{
    if (k->idlen != 0) {
        a[0].type = CKA_ID;
        a[0].pValue = k->id;
        a[0].ulValueLen = k->idlen;
    } else if (k->label[0] != '\0') {
        a[0].type = CKA_LABEL;
        a[0].pValue = k->label;
        a[0].ulValueLen = strlen(k->label);
    } else {
        a[0].type = CKA_MODULUS;
        a[0].pValue = k->n;
        a[0].ulValueLen = k->nlen;
    }
    return 1;
}

/* Handles of the objects of class cls that belong to k (at most max), token
 * objects first; tok[i] (when tok is not NULL) says which are. */
static CK_RV key_objects(P11C_KEY *k, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *hs, CK_BBOOL *tok,
                         size_t max, size_t *nh, P11C_ERR *err)
{
    CK_ATTRIBUTE a[1];
    P11C_FOUND *f = NULL;
    size_t nf = 0;
    P11C_FOUND me = {0};

    *nh = 0;
    CK_RV rv = search(k->t, cls, a, key_template(k, a), &f, &nf, NULL, err);
    if (rv != CKR_OK)
        return rv;
    me.n = k->n;
    me.nlen = k->nlen;
    me.id = k->id;
    me.idlen = k->idlen;
    me.label = (uint8_t *)k->label;
    me.labellen = strlen(k->label);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nf && *nh < max; i++) {
            /* A half that hides its modulus is matched by id or label alone. */
            if ((f[i].token != CK_FALSE) != (pass == 0) || !same_key(&me, &f[i]))
                continue;
            if (tok != NULL)
                tok[*nh] = f[i].token;
            hs[(*nh)++] = f[i].h;
        }
    }
    found_free(f, nf);
    return CKR_OK;
}

/* Destroys k's session copy, if it made one in this process and module
 * epoch. The caller holds k->lock or is the key's last user. */
static void key_drop_copy(P11C_KEY *k)
{
    P11C_TOKEN *t = k->t;
    CK_SESSION_HANDLE s;

    if (k->copy != P11C_COPY_MADE)
        return;
    if (k->epoch == atomic_load(&t->m->epoch) && atomic_load(&t->m->pid) == getpid() &&
        p11c_keeper_acquire(t, &s, NULL) == CKR_OK) {
        /* The copy may have died (a lost keeper, a logout) and a token may
         * reuse its handle for another object: destroy only what is still a
         * session object with this key's modulus. Otherwise it goes with the
         * keeper session at the latest. */
        CK_BBOOL token = CK_TRUE;
        uint8_t n[P11C_MAX_MODULUS];
        CK_ATTRIBUTE a[2] = {{CKA_TOKEN, &token, sizeof(token)}, {CKA_MODULUS, n, sizeof(n)}};
        CK_RV rv = P11C_CALL(t->m, NULL, C_GetAttributeValue, s, k->priv, a, 2);
        size_t skip = 0;
        while (rv == CKR_OK && skip + 1 < a[1].ulValueLen && n[skip] == 0)
            skip++;
        if (rv == CKR_OK && token == CK_FALSE &&
            bytes_eq(n + skip, a[1].ulValueLen - skip, k->n, k->nlen))
            rv = P11C_CALL(t->m, NULL, C_DestroyObject, s, k->priv);
        p11c_keeper_release(t, s, rv);
    }
    k->priv = CK_INVALID_HANDLE;
    k->copy = P11C_COPY_NONE;
}

/*
 * Makes the session copy of token object h (k->copy is BUSY, set by this
 * thread) and returns the handle to use: the copy, or h when the token
 * refuses to copy (CKA_COPYABLE false, no room, any error: never an error of
 * the operation; h is then used for the rest of this epoch).
 */
static CK_OBJECT_HANDLE key_copy(P11C_KEY *k, CK_OBJECT_HANDLE h, unsigned long epoch)
{
    P11C_TOKEN *t = k->t;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[1] = {{CKA_TOKEN, &no, sizeof(no)}};
    CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
    CK_SESSION_HANDLE s;
    CK_RV rv = CKR_FUNCTION_NOT_SUPPORTED;

    /* Twice when the keeper was lost: closed behind our back, it took the
     * copies with it. */
    for (int attempt = 0; attempt < 2 && !atomic_load(&t->m->no_copies); attempt++) {
        rv = p11c_keeper_acquire(t, &s, NULL);
        if (rv != CKR_OK)
            break;
        rv = P11C_CALL(t->m, NULL, C_CopyObject, s, h, tmpl, 1, &c);
        p11c_keeper_release(t, s, rv);
        if (!p11c_session_lost(rv))
            break;
    }
    pthread_mutex_lock(&k->lock);
    int mine = k->epoch == epoch && k->priv == h && k->copy == P11C_COPY_BUSY;
    if (mine && rv == CKR_OK) {
        k->priv = c;
        k->copy = P11C_COPY_MADE;
    } else if (mine) {
        k->copy = P11C_COPY_NONE;
    }
    pthread_mutex_unlock(&k->lock);
    if (mine && rv == CKR_OK)
        return c;
    if (rv == CKR_OK && p11c_keeper_acquire(t, &s, NULL) == CKR_OK) {
        /* The handle was forgotten meanwhile (fork, a failed operation). */
        rv = P11C_CALL(t->m, NULL, C_DestroyObject, s, c);
        p11c_keeper_release(t, s, rv);
    }
    return h;
}

/* The private half's handle: cached, else found once (after login); a token
 * object is used through its session copy (key_copy). */
static CK_RV key_private(P11C_KEY *k, CK_OBJECT_HANDLE *h, P11C_ERR *err)
{
    CK_OBJECT_HANDLE found[2];
    CK_BBOOL tok[2];
    size_t nfound = 0;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&k->lock);
    key_refresh_locked(k);
    if (k->destroyed)
        rv = P11C_CKR_NO_KEY;
    else if (k->public_only)
        rv = P11C_CKR_NO_PRIVATE;
    *h = k->priv;
    unsigned long epoch = k->epoch;
    int copy = rv == CKR_OK && *h != CK_INVALID_HANDLE && k->copy == P11C_COPY_WANTED;
    if (copy)
        k->copy = P11C_COPY_BUSY;
    pthread_mutex_unlock(&k->lock);
    if (rv == P11C_CKR_NO_KEY) {
        what_detail(err, "the key was destroyed");
        return p11c_err_rv(err, rv, "p11c_key_destroy");
    }
    if (rv != CKR_OK) {
        what_detail(err, "loaded as a public key (type=public)");
        return p11c_err_rv(err, rv, "p11c_key_load");
    }
    if (copy)
        *h = key_copy(k, *h, epoch);
    if (*h != CK_INVALID_HANDLE)
        return CKR_OK;

    rv = p11c_token_login_int(k->t, k->pin, 0, err);
    if (rv != CKR_OK)
        return rv;
    rv = key_objects(k, CKO_PRIVATE_KEY, found, tok, 2, &nfound, err);
    if (rv == CKR_OK && nfound == 0 && (k->t->info.flags & CKF_LOGIN_REQUIRED) != 0) {
        /* Private objects hide from a session that is not logged in: the
         * token may have logged us out behind our back. */
        if (p11c_token_login_int(k->t, k->pin, 1, NULL) == CKR_OK)
            rv = key_objects(k, CKO_PRIVATE_KEY, found, tok, 2, &nfound, err);
    }
    if (rv != CKR_OK)
        return rv;
    if (nfound == 0) {
        /* Tell a key removed from the token from a public key alone. */
        CK_OBJECT_HANDLE pub;
        size_t npub = 0;
        rv = key_objects(k, CKO_PUBLIC_KEY, &pub, NULL, 1, &npub, err);
        if (rv != CKR_OK)
            return rv;
        pthread_mutex_lock(&k->lock);
        if (k->epoch == epoch)
            k->priv_absent = 1;
        pthread_mutex_unlock(&k->lock);
        if (npub == 0) {
            what_detail(err, "no longer on the token");
            return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_FindObjects");
        }
        what_detail(err, "the token holds no private half");
        return p11c_err_rv(err, P11C_CKR_NO_PRIVATE, "C_FindObjects");
    }
    copy = 0;
    pthread_mutex_lock(&k->lock);
    if (k->epoch == epoch && k->priv == CK_INVALID_HANDLE) {
        k->priv = found[0];
        k->priv_absent = 0;
        copy = tok[0] != CK_FALSE && !k->ephemeral;
        k->copy = copy ? P11C_COPY_BUSY : P11C_COPY_NONE;
    }
    pthread_mutex_unlock(&k->lock);
    *h = copy ? key_copy(k, found[0], epoch) : found[0];
    return CKR_OK;
}

static void key_forget_private(P11C_KEY *k, CK_OBJECT_HANDLE h)
{
    pthread_mutex_lock(&k->lock);
    if (k->priv == h) {
        /* A copy whose handle failed is gone already: not destroyed here. */
        k->priv = CK_INVALID_HANDLE;
        k->copy = P11C_COPY_NONE;
    }
    pthread_mutex_unlock(&k->lock);
}

/* ---- Loading -------------------------------------------------------------- */

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

static int pin_known(P11C_TOKEN *t, const char *pin)
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
        rv = search(t, CKO_PUBLIC_KEY, a, na, &f, &nf, nonrsa, err);
        if (rv != CKR_OK)
            goto end;
        ng = group(f, nf);
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
        if (!pin_known(t, pin)) {
            *detail = "no public key object, and no PIN to look for private ones";
            rv = P11C_CKR_NO_KEY;
            goto end;
        }
        found_free(f, nf);
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
        rv = search(t, CKO_PRIVATE_KEY, a, na, &f, &nf, nonrsa, err);
        if (rv != CKR_OK)
            goto end;
        if (nf > 0 || p11c_token_logged_in(t))
            break;
    }
    ng = group(f, nf);
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
    if (rv == P11C_CKR_NOT_RSA && k->priv != CK_INVALID_HANDLE) {
        /* A private object that hides its modulus: read it from the public
         * half of the pair. */
        CK_OBJECT_HANDLE pub;
        size_t npub = 0;
        CK_SESSION_HANDLE s;
        rv = key_objects(k, CKO_PUBLIC_KEY, &pub, NULL, 1, &npub, err);
        if (rv == CKR_OK && npub == 0)
            rv = p11c_err_rv(err, P11C_CKR_NOT_RSA, "C_GetAttributeValue");
        if (rv == CKR_OK)
            rv = p11c_session_get(t, &s, err);
        if (rv == CKR_OK) {
            rv = p11c_key_read_public(k, s, pub, err);
            p11c_session_put(t, s, rv);
        }
    }
    if (rv != CKR_OK)
        goto end;
    *out = k;
    k = NULL;
end:
    p11c_key_free(k);
    found_free(f, nf);
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
        rv = p11c_err_set(err, P11C_CKR_NO_TOKEN, "p11c_key_load", "%s: no such token", u.desc);
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
        if (rv != CKR_OK) {
            p11c_err_what(err, "%s", u.desc);
            goto end;
        }
        key = k;
    }
    if (key == NULL) {
        if (nonrsa > 0)
            rv = p11c_err_set(err, P11C_CKR_NOT_RSA, "p11c_key_load", "%s: not an RSA key", u.desc);
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
            rv = search(t, CKO_PUBLIC_KEY, a, na, &f, &nf, NULL, err);
            if (rv != CKR_OK)
                goto end;
        }
        if ((!u.has_cls || u.cls == CKO_PRIVATE_KEY) && pin_known(t, u.pin)) {
            rv = p11c_token_login_int(t, u.pin, 0, err);
            if (rv == CKR_OK)
                rv = search(t, CKO_PRIVATE_KEY, a, na, &fpriv, &npriv, NULL, err);
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
        size_t ng = group(f, nf);
        for (size_t g = 0; g < ng; g++) {
            P11C_KEY *k = p11c_key_new(t);
            if (k == NULL) {
                rv = p11c_err_rv(err, CKR_HOST_MEMORY, "p11c_key_enum");
                goto end;
            }
            k->public_only = u.has_cls && u.cls == CKO_PUBLIC_KEY;
            if (key_fill(k, f, nf, g, NULL) != CKR_OK) {
                p11c_key_free(k); /* no readable modulus: unusable, skipped */
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
        found_free(f, nf);
        f = NULL;
        nf = 0;
    }
    rv = CKR_OK;
end:
    found_free(f, nf);
    found_free(fpriv, npriv);
    free(tokens);
    p11c_uri_clear(&u);
    return rv;
}

/* ---- Reference counting and accessors --------------------------------------- */

P11C_KEY *p11c_key_up_ref(P11C_KEY *k)
{
    if (k != NULL)
        atomic_fetch_add(&k->refs, 1);
    return k;
}

/* Destroys an ephemeral key's objects and gives its session back. */
static void key_release_hold(P11C_KEY *k)
{
    P11C_TOKEN *t = k->t;
    P11C_MODULE *m = t->m;
    CK_RV rv = CKR_OK;

    if (k->hold == CK_INVALID_HANDLE)
        return;
    /* Not in a child of fork(): the session and its objects are the parent's. */
    if (k->hold_epoch == atomic_load(&m->epoch) && atomic_load(&m->pid) == getpid()) {
        if (k->priv != CK_INVALID_HANDLE && rv == CKR_OK)
            rv = P11C_CALL(m, NULL, C_DestroyObject, k->hold, k->priv);
        if (k->pub != CK_INVALID_HANDLE && rv == CKR_OK)
            rv = P11C_CALL(m, NULL, C_DestroyObject, k->hold, k->pub);
        /* When destroying failed, closing the session ends the objects. */
        if (rv == CKR_OK)
            p11c_session_put(t, k->hold, rv);
        else
            p11c_session_discard(t, k->hold);
    }
    k->hold = CK_INVALID_HANDLE;
    k->priv = k->pub = CK_INVALID_HANDLE;
}

void p11c_key_free(P11C_KEY *k)
{
    if (k == NULL || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    P11C_MODULE *m = k->t->m;
    key_release_hold(k);
    key_drop_copy(k);
    free(k->label);
    free(k->id);
    free(k->n);
    free(k->e);
    p11c_pin_free(k->pin);
    pthread_mutex_destroy(&k->lock);
    free(k);
    p11c_module_unref(m);
}

int p11c_key_has_private(P11C_KEY *k)
{
    CK_OBJECT_HANDLE h;

    if (k == NULL || p11c_module_enter(k->t->m, NULL) != CKR_OK)
        return 0;
    pthread_mutex_lock(&k->lock);
    key_refresh_locked(k);
    int known = k->destroyed || k->public_only || k->priv_absent ? 0
                : k->priv != CK_INVALID_HANDLE                   ? 1
                                                                 : -1;
    pthread_mutex_unlock(&k->lock);
    if (known >= 0)
        return known;
    if (!pin_known(k->t, k->pin))
        return 0;
    return key_private(k, &h, NULL) == CKR_OK;
}

int p11c_key_is_ephemeral(const P11C_KEY *k)
{
    return k != NULL && k->ephemeral;
}

unsigned int p11c_key_bits(const P11C_KEY *k)
{
    return k != NULL ? k->bits : 0;
}

void p11c_key_public(const P11C_KEY *k, const uint8_t **n, size_t *nlen, const uint8_t **e,
                     size_t *elen)
{
    *n = k != NULL ? k->n : NULL;
    *nlen = k != NULL ? k->nlen : 0;
    *e = k != NULL ? k->e : NULL;
    *elen = k != NULL ? k->elen : 0;
}

const char *p11c_key_label(const P11C_KEY *k)
{
    return k != NULL ? k->label : "";
}

const uint8_t *p11c_key_id(const P11C_KEY *k, size_t *len)
{
    *len = k != NULL ? k->idlen : 0;
    return k != NULL ? k->id : NULL;
}

P11C_TOKEN *p11c_key_token(const P11C_KEY *k)
{
    return k != NULL ? k->t : NULL;
}

/* ---- Sign and decrypt ------------------------------------------------------- */

typedef union {
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
} P11C_MECH_PARAMS;

static CK_MECHANISM_TYPE pss_hash(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_SHA1_RSA_PKCS_PSS:
        return CKM_SHA_1;
    case CKM_SHA224_RSA_PKCS_PSS:
        return CKM_SHA224;
    case CKM_SHA256_RSA_PKCS_PSS:
        return CKM_SHA256;
    case CKM_SHA384_RSA_PKCS_PSS:
        return CKM_SHA384;
    case CKM_SHA512_RSA_PKCS_PSS:
        return CKM_SHA512;
    default:
        return 0;
    }
}

static CK_RSA_PKCS_MGF_TYPE mgf_for(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA_1:
        return CKG_MGF1_SHA1;
    case CKM_SHA224:
        return CKG_MGF1_SHA224;
    case CKM_SHA256:
        return CKG_MGF1_SHA256;
    case CKM_SHA384:
        return CKG_MGF1_SHA384;
    case CKM_SHA512:
        return CKG_MGF1_SHA512;
    default:
        return 0;
    }
}

/* The CK_MECHANISM for m; parameters live in p. Nothing is sent as zero. */
static CK_RV mech_build(const P11C_MECH *in, CK_MECHANISM *out, P11C_MECH_PARAMS *p)
{
    memset(p, 0, sizeof(*p));
    out->mechanism = in->type;
    out->pParameter = NULL;
    out->ulParameterLen = 0;
    switch (in->type) {
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA1_RSA_PKCS_PSS:
    case CKM_SHA224_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS:
        p->pss.hashAlg = in->hash != 0 ? in->hash : pss_hash(in->type);
        p->pss.mgf = in->mgf != 0 ? in->mgf : mgf_for(p->pss.hashAlg);
        p->pss.sLen = in->salt_len;
        if (p->pss.hashAlg == 0 || p->pss.mgf == 0)
            return CKR_MECHANISM_PARAM_INVALID;
        out->pParameter = &p->pss;
        out->ulParameterLen = sizeof(p->pss);
        break;
    case CKM_RSA_PKCS_OAEP:
        p->oaep.hashAlg = in->hash;
        p->oaep.mgf = in->mgf != 0 ? in->mgf : mgf_for(in->hash);
        p->oaep.source = CKZ_DATA_SPECIFIED;
        p->oaep.pSourceData = in->label_len != 0 ? (void *)in->label : NULL;
        p->oaep.ulSourceDataLen = in->label_len;
        if (p->oaep.hashAlg == 0 || p->oaep.mgf == 0 || (in->label_len != 0 && in->label == NULL))
            return CKR_MECHANISM_PARAM_INVALID;
        out->pParameter = &p->oaep;
        out->ulParameterLen = sizeof(p->oaep);
        break;
    default:
        break;
    }
    return CKR_OK;
}

/* One private-key operation, with the recoveries the token allows: a lost
 * session is replaced, a logged-out token logged in again, a stale handle
 * found again; each once. */
static CK_RV key_op(P11C_KEY *k, int decrypt, const CK_MECHANISM *ck, const uint8_t *in,
                    size_t inlen, uint8_t *out, size_t *outlen, P11C_ERR *err)
{
    P11C_TOKEN *t = k->t;
    P11C_MODULE *m = t->m;
    int again_session = 0, again_login = 0, again_handle = 0;
    CK_OBJECT_HANDLE h;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    for (;;) {
        CK_ULONG len = (CK_ULONG)*outlen;
        rv = key_private(k, &h, err);
        if (rv != CKR_OK)
            break;
        rv = p11c_session_get(t, &s, err);
        if (rv != CKR_OK)
            break;
        if (decrypt) {
            rv = P11C_CALL(m, err, C_DecryptInit, s, (CK_MECHANISM *)ck, h);
            if (rv == CKR_OK)
                rv = P11C_CALL(m, err, C_Decrypt, s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
        } else {
            rv = P11C_CALL(m, err, C_SignInit, s, (CK_MECHANISM *)ck, h);
            if (rv == CKR_OK)
                rv = P11C_CALL(m, err, C_Sign, s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
        }
        p11c_session_put(t, s, rv);
        if (rv == CKR_OK) {
            *outlen = len;
            break;
        }
        if (p11c_session_lost(rv) && !again_session) {
            again_session = 1;
            continue;
        }
        if (rv == CKR_USER_NOT_LOGGED_IN && !again_login) {
            again_login = 1;
            rv = p11c_token_login_int(t, k->pin, 1, err);
            if (rv != CKR_OK)
                break;
            continue;
        }
        if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) && k->ephemeral) {
            /* Session objects die with their session, and private ones
             * with a logout: they cannot be found again. */
            what_detail(err, "the session key is gone (its session closed or the token "
                             "logged out)");
            rv = p11c_err_rv(err, P11C_CKR_NO_KEY, decrypt ? "C_DecryptInit" : "C_SignInit");
            break;
        }
        if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) && !again_handle) {
            again_handle = 1;
            key_forget_private(k, h);
            continue;
        }
        break;
    }
    return rv;
}

CK_RV p11c_key_sign(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                    uint8_t *sig, size_t *siglen, P11C_ERR *err)
{
    CK_MECHANISM ck;
    P11C_MECH_PARAMS params;

    if (k == NULL || mech == NULL || siglen == NULL || (in == NULL && inlen != 0))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_Sign", "no key, mechanism or buffer");
    if (sig == NULL) {
        *siglen = k->nlen;
        return CKR_OK;
    }
    if (*siglen < k->nlen) {
        *siglen = k->nlen;
        p11c_key_what(k, err);
        return p11c_err_rv(err, CKR_BUFFER_TOO_SMALL, "C_Sign");
    }
    p11c_key_what(k, err);
    CK_RV rv = mech_build(mech, &ck, &params);
    if (rv != CKR_OK) {
        what_detail(err, "PSS needs a hash and an MGF");
        return p11c_err_rv(err, rv, "C_SignInit");
    }
    rv = p11c_module_enter(k->t->m, err);
    if (rv == CKR_OK)
        rv = key_op(k, 0, &ck, in, inlen, sig, siglen, err);
    return rv;
}

CK_RV p11c_key_decrypt(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen, P11C_ERR *err)
{
    CK_MECHANISM ck;
    P11C_MECH_PARAMS params;
    uint8_t *tmp = NULL;
    size_t tmplen = 0;

    if (k == NULL || mech == NULL || outlen == NULL || (in == NULL && inlen != 0))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_Decrypt", "no key, mechanism or buffer");
    if (out == NULL) {
        *outlen = k->nlen;
        return CKR_OK;
    }
    p11c_key_what(k, err);
    CK_RV rv = mech_build(mech, &ck, &params);
    if (rv != CKR_OK) {
        what_detail(err, "OAEP needs a hash and an MGF");
        return p11c_err_rv(err, rv, "C_DecryptInit");
    }
    rv = p11c_module_enter(k->t->m, err);
    if (rv != CKR_OK)
        goto end;
    if (*outlen >= k->nlen) {
        rv = key_op(k, 1, &ck, in, inlen, out, outlen, err);
        goto end;
    }
    /* A buffer smaller than the modulus may still hold the plaintext; decrypt
     * into our own so that the token never stops at CKR_BUFFER_TOO_SMALL
     * with the operation left active. */
    tmplen = k->nlen;
    tmp = malloc(tmplen);
    if (tmp == NULL) {
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_Decrypt");
        goto end;
    }
    rv = key_op(k, 1, &ck, in, inlen, tmp, &tmplen, err);
    if (rv != CKR_OK)
        goto end;
    if (tmplen > *outlen) {
        *outlen = tmplen;
        rv = p11c_err_rv(err, CKR_BUFFER_TOO_SMALL, "C_Decrypt");
        goto end;
    }
    memcpy(out, tmp, tmplen);
    *outlen = tmplen;
end:
    if (tmp != NULL)
        OPENSSL_clear_free(tmp, k->nlen);
    return rv;
}

/* ---- Destroy -------------------------------------------------------------- */

CK_RV p11c_key_destroy(P11C_KEY *k, P11C_ERR *err)
{
    CK_OBJECT_HANDLE hs[8];
    size_t nh = 0, total = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (k == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_DestroyObject", "no key");
    p11c_key_what(k, err);
    rv = p11c_module_enter(k->t->m, err);
    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&k->lock);
    int destroyed = k->destroyed;
    pthread_mutex_unlock(&k->lock);
    if (destroyed) {
        what_detail(err, "the key was destroyed");
        return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_DestroyObject");
    }
    if (k->ephemeral && k->hold != CK_INVALID_HANDLE) {
        pthread_mutex_lock(&k->lock);
        key_release_hold(k);
        k->destroyed = 1;
        pthread_mutex_unlock(&k->lock);
        return CKR_OK;
    }
    rv = p11c_token_login_int(k->t, k->pin, 0, err);
    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&k->lock);
    key_refresh_locked(k);
    key_drop_copy(k);
    pthread_mutex_unlock(&k->lock);
    /* Session copies made by other keys of this process match too: they go
     * with the token objects. */
    for (int pass = 0; pass < 2; pass++) {
        rv = key_objects(k, pass == 0 ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY, hs, NULL, 8, &nh, err);
        if (rv != CKR_OK)
            return rv;
        if (nh == 0)
            continue;
        rv = p11c_session_get(k->t, &s, err);
        if (rv != CKR_OK)
            return rv;
        for (size_t i = 0; i < nh && rv == CKR_OK; i++)
            rv = P11C_CALL(k->t->m, err, C_DestroyObject, s, hs[i]);
        p11c_session_put(k->t, s, rv);
        if (rv != CKR_OK)
            return rv;
        total += nh;
    }
    pthread_mutex_lock(&k->lock);
    k->destroyed = 1;
    k->pub = k->priv = CK_INVALID_HANDLE;
    pthread_mutex_unlock(&k->lock);
    if (total == 0) {
        what_detail(err, "no longer on the token");
        return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_DestroyObject");
    }
    return CKR_OK;
}
