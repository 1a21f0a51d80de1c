/* Keys: the object, its cached handles, the private-key operation with its
 * recoveries, reference counting, accessors and destroy. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    uint8_t *nc = p11c_dup_bytes(n, nlen), *ec = p11c_dup_bytes(e, elen);
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
    k->kt = CKK_RSA;
    k->pub = k->priv = CK_INVALID_HANDLE;
    k->hold = CK_INVALID_HANDLE;
    k->always_auth = -1;
    k->epoch = atomic_load(&t->m->epoch);
    pthread_mutex_init(&k->lock, NULL);
    p11c_module_ref(t->m);
    return k;
}

CK_RV p11c_key_read_public(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, P11C_ERR *err)
{
    uint8_t *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    if (k->kt != CKK_RSA)
        return p11c_key_read_ec_public(k, s, obj, err);
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
void p11c_what_detail(P11C_ERR *err, const char *detail)
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
 * modulus (RSA) or kind (the point is then compared). */
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
    } else if (k->kt == CKK_RSA) {
        a[0].type = CKA_MODULUS;
        a[0].pValue = k->n;
        a[0].ulValueLen = k->nlen;
    } else {
        a[0].type = CKA_KEY_TYPE;
        a[0].pValue = (void *)&k->kt;
        a[0].ulValueLen = sizeof(k->kt);
    }
    return 1;
}

/* Handles of the objects of class cls that belong to k (at most max), token
 * objects first; tok[i] (when tok is not NULL) says which are. */
CK_RV p11c_key_objects(P11C_KEY *k, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *hs, CK_BBOOL *tok,
                       size_t max, size_t *nh, P11C_ERR *err)
{
    CK_ATTRIBUTE a[1];
    P11C_FOUND *f = NULL;
    size_t nf = 0;
    P11C_FOUND me = {0};

    *nh = 0;
    CK_RV rv = p11c_objects_search(k->t, cls, a, key_template(k, a), &f, &nf, NULL, err);
    if (rv != CKR_OK)
        return rv;
    me.kt = k->kt;
    me.n = k->n;
    me.nlen = k->nlen;
    me.point = k->point;
    me.pointlen = k->pointlen;
    me.id = k->id;
    me.idlen = k->idlen;
    me.label = (uint8_t *)k->label;
    me.labellen = strlen(k->label);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nf && *nh < max; i++) {
            /* A half that hides its modulus is matched by id or label alone. */
            if ((f[i].token != CK_FALSE) != (pass == 0) || !p11c_same_key(&me, &f[i]))
                continue;
            if (tok != NULL)
                tok[*nh] = f[i].token;
            hs[(*nh)++] = f[i].h;
        }
    }
    p11c_found_free(f, nf);
    return CKR_OK;
}

/* The private half's handle: cached, else found once (after login); a token
 * object is used through its session copy (p11c_key_copy). */
CK_RV p11c_key_private(P11C_KEY *k, CK_OBJECT_HANDLE *h, P11C_ERR *err)
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
        p11c_what_detail(err, "the key was destroyed");
        return p11c_err_rv(err, rv, "p11c_key_destroy");
    }
    if (rv != CKR_OK) {
        p11c_what_detail(err, "loaded as a public key (type=public)");
        return p11c_err_rv(err, rv, "p11c_key_load");
    }
    if (copy)
        *h = p11c_key_copy(k, *h, epoch);
    if (*h != CK_INVALID_HANDLE)
        return CKR_OK;

    rv = p11c_token_login_int(k->t, k->pin, 0, err);
    if (rv != CKR_OK)
        return rv;
    rv = p11c_key_objects(k, CKO_PRIVATE_KEY, found, tok, 2, &nfound, err);
    if (rv == CKR_OK && nfound == 0 && (k->t->info.flags & CKF_LOGIN_REQUIRED) != 0) {
        /* Private objects hide from a session that is not logged in: the
         * token may have logged us out behind our back. */
        if (p11c_token_login_int(k->t, k->pin, 1, NULL) == CKR_OK)
            rv = p11c_key_objects(k, CKO_PRIVATE_KEY, found, tok, 2, &nfound, err);
    }
    if (rv != CKR_OK)
        return rv;
    if (nfound == 0) {
        /* Tell a key removed from the token from a public key alone. */
        CK_OBJECT_HANDLE pub;
        size_t npub = 0;
        rv = p11c_key_objects(k, CKO_PUBLIC_KEY, &pub, NULL, 1, &npub, err);
        if (rv != CKR_OK)
            return rv;
        pthread_mutex_lock(&k->lock);
        if (k->epoch == epoch)
            k->priv_absent = 1;
        pthread_mutex_unlock(&k->lock);
        if (npub == 0 && k->ephemeral) {
            /* Session objects die with their session: a logout, or the
             * module re-opened after the token went away, took this one. */
            p11c_what_detail(err, "the session key is gone (its session closed, the token "
                                  "logged out or its module was re-opened)");
            return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_FindObjects");
        }
        if (npub == 0) {
            p11c_what_detail(err, "no longer on the token");
            return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_FindObjects");
        }
        p11c_what_detail(err, "the token holds no private half");
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
    *h = copy ? p11c_key_copy(k, found[0], epoch) : found[0];
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
    p11c_key_drop_copy(k);
    free(k->label);
    free(k->id);
    free(k->n);
    free(k->e);
    free(k->point);
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
    if (!p11c_pin_known(k->t, k->pin))
        return 0;
    return p11c_key_private(k, &h, NULL) == CKR_OK;
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

/* One private-key operation, with the recoveries the token allows: a lost
 * session is replaced, a logged-out token logged in again, a stale handle
 * found again; each once. */
CK_RV p11c_key_op(P11C_KEY *k, int op, const CK_MECHANISM *ck, const uint8_t *in, size_t inlen,
                  uint8_t *out, size_t *outlen, P11C_ERR *err)
{
    P11C_TOKEN *t = k->t;
    P11C_MODULE *m = t->m;
    int again_session = 0, again_login = 0, again_handle = 0, recovered = 0;
    CK_OBJECT_HANDLE h;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    for (;;) {
        CK_ULONG len = (CK_ULONG)*outlen;
        int mid_op = 0;
        unsigned long epoch = atomic_load(&m->epoch);
        rv = p11c_key_private(k, &h, err);
        if (rv == CKR_OK)
            rv = p11c_session_get(t, &s, err);
        if (rv != CKR_OK) {
            /* The module gone underneath: re-opened, the key found again. */
            if (p11c_recover_again(m, t, epoch, &rv, &recovered, err))
                continue;
            break;
        }
        if (op == P11C_OP_DERIVE) {
            rv = p11c_ecdh_run(k, s, ck, h, out, &len, err);
        } else if (op == P11C_OP_DECRYPT) {
            rv = P11C_CALL(m, err, C_DecryptInit, s, (CK_MECHANISM *)ck, h);
            if (rv == CKR_OK && (rv = p11c_key_use_login(k, s, h, err)) != CKR_OK)
                mid_op = 1;
            if (rv == CKR_OK)
                rv = P11C_CALL(m, err, C_Decrypt, s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
        } else {
            rv = P11C_CALL(m, err, C_SignInit, s, (CK_MECHANISM *)ck, h);
            if (rv == CKR_OK && (rv = p11c_key_use_login(k, s, h, err)) != CKR_OK)
                mid_op = 1;
            if (rv == CKR_OK)
                rv = P11C_CALL(m, err, C_Sign, s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
        }
        /* A failed per-use login leaves the operation active: the session
         * is closed rather than given back. */
        if (mid_op)
            p11c_session_discard(t, s);
        else
            p11c_session_put(t, s, rv);
        if (rv == CKR_OK) {
            *outlen = len;
            break;
        }
        if (p11c_session_lost(rv) && !again_session) {
            again_session = 1;
            continue;
        }
        if (p11c_recover_again(m, t, epoch, &rv, &recovered, err))
            continue;
        if (p11c_module_lost(rv))
            break;
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
            p11c_what_detail(err, "the session key is gone (its session closed or the token "
                                  "logged out)");
            rv = p11c_err_rv(err, P11C_CKR_NO_KEY,
                             op == P11C_OP_DERIVE    ? "C_DeriveKey"
                             : op == P11C_OP_DECRYPT ? "C_DecryptInit"
                                                     : "C_SignInit");
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
        p11c_what_detail(err, "the key was destroyed");
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
    p11c_key_drop_copy(k);
    pthread_mutex_unlock(&k->lock);
    /* Session copies made by other keys of this process match too: they go
     * with the token objects. */
    for (int pass = 0; pass < 2; pass++) {
        rv = p11c_key_objects(k, pass == 0 ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY, hs, NULL, 8, &nh,
                              err);
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
        p11c_what_detail(err, "no longer on the token");
        return p11c_err_rv(err, P11C_CKR_NO_KEY, "C_DestroyObject");
    }
    return CKR_OK;
}
