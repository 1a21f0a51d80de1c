/*
 * Login: which PIN (the caller's, the one kept for the token, the module's,
 * the application's asker), the token's PIN state checked before a PIN is
 * spent, user and context-specific logins.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int p11c_token_logged_in(P11C_TOKEN *t)
{
    unsigned long epoch = atomic_load(&t->m->epoch);
    unsigned long logouts = atomic_load(&t->m->logouts);
    pthread_mutex_lock(&t->lock);
    int in = t->login_epoch != 0 && t->login_epoch == epoch && t->login_logouts == logouts;
    pthread_mutex_unlock(&t->lock);
    return in;
}

/* ---- The PIN kept for a token --------------------------------------------- */

static char *token_pin_copy(P11C_TOKEN *t)
{
    pthread_mutex_lock(&t->lock);
    char *copy = p11c_pin_dup(t->pin);
    pthread_mutex_unlock(&t->lock);
    return copy;
}

static void token_pin_keep(P11C_TOKEN *t, const char *pin)
{
    char *copy = NULL;
    if (pin != NULL && atomic_load(&t->m->pin_cache) && (copy = p11c_pin_dup(pin)) == NULL)
        return; /* out of memory: asked again next time */
    pthread_mutex_lock(&t->lock);
    char *old = t->pin;
    t->pin = copy;
    pthread_mutex_unlock(&t->lock);
    p11c_pin_free(old);
}

void p11c_token_pin_forget(P11C_TOKEN *t)
{
    token_pin_keep(t, NULL);
}

int p11c_token_pin_known(P11C_TOKEN *t)
{
    pthread_mutex_lock(&t->lock);
    int known = t->pin != NULL;
    pthread_mutex_unlock(&t->lock);
    if (known)
        return 1;
    char *mpin = p11c_module_pin_copy(t->m);
    known = mpin != NULL;
    p11c_pin_free(mpin);
    return known;
}

void p11c_module_set_pin_cache(P11C_MODULE *m, int on)
{
    if (m == NULL)
        return;
    atomic_store(&m->pin_cache, on ? 1 : 0);
    if (on)
        return;
    pthread_mutex_lock(&m->lock);
    for (P11C_TOKEN *t = m->tokens; t != NULL; t = t->next)
        token_pin_keep(t, NULL);
    pthread_mutex_unlock(&m->lock);
}

void p11c_module_set_pin_final_try(P11C_MODULE *m, int allow)
{
    if (m != NULL)
        atomic_store(&m->pin_final_try, allow ? 1 : 0);
}

void p11c_module_set_pin_ask(P11C_MODULE *m, p11c_pin_ask_fn *fn, void *arg)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->ask = fn;
    m->ask_arg = arg;
    pthread_mutex_unlock(&m->lock);
}

/*
 * A PIN to try, in this order: the caller's (a URI's), the one kept for the
 * token, the module's, the asker's. *asked says it came from the asker (it
 * is kept for the token once it worked). NULL when there is none.
 */
static char *pin_pick(P11C_TOKEN *t, const char *given, int *asked, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    char *pin = NULL;

    *asked = 0;
    if (given != NULL)
        return p11c_pin_dup(given);
    if ((pin = token_pin_copy(t)) != NULL)
        return pin;
    if ((pin = p11c_module_pin_copy(m)) != NULL)
        return pin;
    pthread_mutex_lock(&m->lock);
    p11c_pin_ask_fn *ask = m->ask;
    void *arg = m->ask_arg;
    pthread_mutex_unlock(&m->lock);
    if (ask != NULL && ask(arg, t, &pin, err) == CKR_OK && pin != NULL) {
        *asked = 1;
        return pin;
    }
    p11c_pin_free(pin);
    return NULL;
}

/* Refuses a PIN that cannot be right before the token counts it as a try:
 * empty, or blank around (a stray space or newline from a file or a prompt). */
static CK_RV pin_plausible(P11C_TOKEN *t, const char *pin, P11C_ERR *err)
{
    size_t len = strlen(pin);
    const char *why = NULL;

    if (len == 0)
        why = "the PIN given is empty";
    else if (strchr(" \t\r\n", pin[0]) != NULL || strchr(" \t\r\n", pin[len - 1]) != NULL)
        why = "the PIN given begins or ends with a blank (a space or a line break)";
    else if (strpbrk(pin, "\r\n") != NULL)
        why = "the PIN given holds a line break";
    if (why == NULL)
        return CKR_OK;
    p11c_err_set(err, P11C_CKR_PIN_SOURCE, "C_Login",
                 "token '%s': %s; not tried, so no PIN try "
                 "was spent",
                 t->label, why);
    return P11C_CKR_PIN_SOURCE;
}

/* The token's PIN state now, before a PIN is tried: locked tokens and, unless
 * allowed, a last try are refused. */
static CK_RV pin_state_check(P11C_TOKEN *t, CK_USER_TYPE user, P11C_ERR *err)
{
    CK_TOKEN_INFO ti;
    CK_RV rv = P11C_CALL(t->m, NULL, C_GetTokenInfo, t->slot, &ti);
    if (rv != CKR_OK)
        return CKR_OK; /* C_Login tells */
    if ((ti.flags & CKF_USER_PIN_LOCKED) != 0 && user != CKU_SO)
        return p11c_err_set(err, CKR_PIN_LOCKED, "C_Login",
                            "token '%s': the user PIN is locked (too many wrong tries); the "
                            "token's security officer must unlock it",
                            t->label);
    if ((ti.flags & CKF_USER_PIN_FINAL_TRY) != 0 && !atomic_load(&t->m->pin_final_try))
        return p11c_err_set(err, P11C_CKR_PIN_FINAL_TRY, "C_Login",
                            "token '%s': one PIN try is left, and a wrong PIN would lock the "
                            "token; not logging in. Check the PIN, then allow the try with "
                            "pkcs11-pin-final-try = yes (P11CHAT_PKCS11_PIN_FINAL_TRY=yes)",
                            t->label);
    return CKR_OK;
}

CK_RV p11c_token_login_int(P11C_TOKEN *t, const char *pin, int force, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    char *use = NULL;
    int asked = 0;
    CK_SESSION_HANDLE s;
    CK_RV rv = CKR_OK;

    if ((t->info.flags & CKF_LOGIN_REQUIRED) == 0)
        return CKR_OK;
    if (!force && p11c_token_logged_in(t))
        return CKR_OK;
    pthread_mutex_lock(&t->login_lock);
    if (!force && p11c_token_logged_in(t))
        goto end;
    /* A pinpad reader (protected authentication path) takes no PIN from us. */
    int pad = (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    if (!pad) {
        use = pin_pick(t, pin, &asked, err);
        if (use == NULL) {
            rv = p11c_err_rv(err, P11C_CKR_NO_PIN, "C_Login");
            goto end;
        }
        rv = pin_plausible(t, use, err);
        if (rv != CKR_OK)
            goto end;
    }
    rv = pin_state_check(t, CKU_USER, err);
    if (rv != CKR_OK)
        goto end;
    for (int attempt = 0; attempt < 2; attempt++) {
        unsigned long logouts = atomic_load(&m->logouts);
        rv = p11c_session_get(t, &s, err);
        if (rv != CKR_OK)
            goto end;
        rv = P11C_CALL(m, err, C_Login, s, CKU_USER, (CK_UTF8CHAR_PTR)use,
                       use != NULL ? (CK_ULONG)strlen(use) : 0);
        if (rv == CKR_USER_ALREADY_LOGGED_IN)
            rv = CKR_OK;
        if (rv == CKR_OK) {
            /* Recorded before the session goes back, so that a discard of
             * the last session (which logs out) clears it again. */
            pthread_mutex_lock(&t->lock);
            t->login_epoch = atomic_load(&m->epoch);
            t->login_logouts = logouts;
            pthread_mutex_unlock(&t->lock);
        }
        p11c_session_put(t, s, rv);
        if (!p11c_session_lost(rv))
            break;
    }
    if (rv == CKR_OK && asked)
        token_pin_keep(t, use);
    else if (rv == CKR_PIN_INCORRECT && pin == NULL)
        token_pin_keep(t, NULL); /* a kept PIN that no longer works is asked again */
end:
    p11c_pin_free(use);
    pthread_mutex_unlock(&t->login_lock);
    return rv;
}

CK_RV p11c_login_context(P11C_TOKEN *t, CK_SESSION_HANDLE s, const char *pin, P11C_ERR *err)
{
    char *use = NULL;
    int asked = 0;
    CK_RV rv;

    int pad = (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    if (!pad) {
        use = pin_pick(t, pin, &asked, err);
        if (use == NULL)
            return p11c_err_rv(err, P11C_CKR_NO_PIN, "C_Login");
        rv = pin_plausible(t, use, err);
        if (rv != CKR_OK)
            goto end;
    }
    rv = pin_state_check(t, CKU_CONTEXT_SPECIFIC, err);
    if (rv != CKR_OK)
        goto end;
    rv = P11C_CALL(t->m, err, C_Login, s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)use,
                   use != NULL ? (CK_ULONG)strlen(use) : 0);
    if (rv == CKR_OK && asked)
        token_pin_keep(t, use);
end:
    p11c_pin_free(use);
    return rv;
}

CK_RV p11c_token_login(P11C_TOKEN *t, const char *pin, P11C_ERR *err)
{
    if (t == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_Login", "no token");
    p11c_err_what(err, "token '%s'", t->label);
    CK_RV rv = p11c_module_enter(t->m, err);
    if (rv != CKR_OK)
        return rv;
    rv = p11c_token_login_int(t, pin, 0, err);
    /* A PIN handed in explicitly is the token's from now on, as an asked one. */
    if (rv == CKR_OK && pin != NULL)
        token_pin_keep(t, pin);
    return rv;
}
