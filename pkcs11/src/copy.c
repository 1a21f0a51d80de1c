/* Session copies of private keys (see p11c_module_set_key_copies): made on
 * the token's keeper session, destroyed with the key. */
#include "internal.h"

#include <string.h>
#include <unistd.h>

/* Destroys k's session copy, if it made one in this process and module
 * epoch. The caller holds k->lock or is the key's last user. */
void p11c_key_drop_copy(P11C_KEY *k)
{
    P11C_TOKEN *t = k->t;
    CK_SESSION_HANDLE s;

    if (k->copy != P11C_COPY_MADE)
        return;
    if (k->epoch == atomic_load(&t->m->epoch) && atomic_load(&t->m->pid) == getpid() &&
        p11c_keeper_acquire(t, &s, NULL) == CKR_OK) {
        /* The copy may have died (a lost keeper, a logout) and a token may
         * reuse its handle for another object: destroy only what is still a
         * session object of this key (its modulus; for EC keys, whose
         * private objects show no point, its kind and id). Otherwise it goes
         * with the keeper session at the latest. */
        CK_BBOOL token = CK_TRUE;
        CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
        uint8_t n[P11C_MAX_MODULUS];
        int rsa = k->kt == CKK_RSA;
        CK_ATTRIBUTE a[3] = {{CKA_TOKEN, &token, sizeof(token)},
                             {CKA_KEY_TYPE, &kt, sizeof(kt)},
                             {rsa ? CKA_MODULUS : CKA_ID, n, sizeof(n)}};
        CK_RV rv = P11C_CALL(t->m, NULL, C_GetAttributeValue, s, k->priv, a, 3);
        size_t skip = 0;
        while (rsa && rv == CKR_OK && skip + 1 < a[2].ulValueLen && n[skip] == 0)
            skip++;
        const uint8_t *want = rsa ? k->n : k->id;
        size_t wantlen = rsa ? k->nlen : k->idlen;
        if (rv == CKR_OK && token == CK_FALSE && kt == k->kt &&
            p11c_bytes_eq(n + skip, a[2].ulValueLen - skip, want, wantlen))
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
CK_OBJECT_HANDLE p11c_key_copy(P11C_KEY *k, CK_OBJECT_HANDLE h, unsigned long epoch)
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
