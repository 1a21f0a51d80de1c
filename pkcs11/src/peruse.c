/*
 * Keys that want the PIN for every use (CKA_ALWAYS_AUTHENTICATE, as on PIV
 * and OpenPGP cards): a context-specific login right after each C_SignInit or
 * C_DecryptInit on them (such keys are made by keygen.c's
 * p11c_key_generate_per_use).
 */
#include "internal.h"

#include <string.h>

/* CKA_ALWAYS_AUTHENTICATE of h, read once per key (the session copy has the
 * token object's attributes). */
static int always_auth(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    pthread_mutex_lock(&k->lock);
    int known = k->always_auth;
    pthread_mutex_unlock(&k->lock);
    if (known >= 0)
        return known;
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {CKA_ALWAYS_AUTHENTICATE, &v, sizeof(v)};
    CK_RV rv = P11C_CALL(k->t->m, NULL, C_GetAttributeValue, s, h, &a, 1);
    /* A token that does not know the attribute has no such keys. */
    int on = rv == CKR_OK && a.ulValueLen == sizeof(v) && v != CK_FALSE;
    if (rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) {
        pthread_mutex_lock(&k->lock);
        k->always_auth = on;
        pthread_mutex_unlock(&k->lock);
    }
    return on;
}

CK_RV p11c_key_use_login(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, P11C_ERR *err)
{
    if (!always_auth(k, s, h))
        return CKR_OK;
    atomic_fetch_add_explicit(&k->t->m->context_logins, 1, memory_order_relaxed);
    return p11c_login_context(k->t, s, k->pin, err);
}

unsigned long p11c_module_context_logins(const P11C_MODULE *m)
{
    if (m == NULL)
        return 0;
    return atomic_load_explicit(&((P11C_MODULE *)m)->context_logins, memory_order_relaxed);
}
