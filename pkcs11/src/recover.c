/*
 * Recovery: a module whose token went away underneath (the server of a
 * remote token through p11-kit's RPC died or restarted, a reader was
 * unplugged) answers CKR_DEVICE_ERROR, CKR_TOKEN_NOT_PRESENT,
 * CKR_CRYPTOKI_NOT_INITIALIZED or, for every old session,
 * CKR_SESSION_HANDLE_INVALID until it is re-opened. The operation that sees
 * it re-opens the module, its key finds its objects again and logs in again
 * (module epoch), a bounded number of times with a short pause between, and
 * only a call the token answered CKR_OK is ever reported done.
 */
#include "internal.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>

/* Re-openings per operation, and the pause before the n-th (n x 200 ms). */
#define P11C_RECOVER_TRIES    3
#define P11C_RECOVER_PAUSE_MS 200

int p11c_module_lost(CK_RV rv)
{
    return rv == CKR_DEVICE_ERROR || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_CRYPTOKI_NOT_INITIALIZED || rv == CKR_DEVICE_REMOVED ||
           rv == CKR_SESSION_HANDLE_INVALID;
}

CK_RV p11c_module_recover(P11C_MODULE *m, unsigned long seen, P11C_ERR *err)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&m->lock);
    if (atomic_load(&m->epoch) != seen)
        goto end; /* another thread re-opened it meanwhile */
    /* What the old instance says no longer matters. */
    P11C_CALL(m, NULL, C_Finalize, NULL);
    rv = p11c_module_initialize(m, err);
    if (rv != CKR_OK)
        goto end;
    atomic_fetch_add(&m->epoch, 1);
    atomic_fetch_add(&m->recoveries, 1);
    p11c_tokens_reset(m);
    p11c_tokens_refind(m);
end:
    pthread_mutex_unlock(&m->lock);
    return rv;
}

static void pause_ms(unsigned int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int p11c_recover_again(P11C_MODULE *m, P11C_TOKEN *t, unsigned long seen, CK_RV *rv, int *tries,
                       P11C_ERR *err)
{
    if (!p11c_module_lost(*rv))
        return 0;
    CK_RV last = *rv;
    const char *func = err != NULL && err->func != NULL ? err->func : "C_Initialize";
    if (*tries < P11C_RECOVER_TRIES) {
        P11C_ERR rerr;
        memset(&rerr, 0, sizeof(rerr));
        pause_ms(P11C_RECOVER_PAUSE_MS * (unsigned int)*tries);
        (*tries)++;
        if (p11c_module_recover(m, seen, &rerr) == CKR_OK)
            return 1;
        last = rerr.rv != CKR_OK ? rerr.rv : last;
        func = rerr.func != NULL ? rerr.func : func;
        if (*tries < P11C_RECOVER_TRIES)
            return 1; /* the module could not be opened yet: wait, try again */
    }
    /* Really gone: say so, with what was tried. */
    if (err != NULL) {
        size_t len = strlen(err->what);
        int other_user = getuid() != m->uid || atomic_load(&m->forked);
        snprintf(err->what + len, sizeof(err->what) - len,
                 ": the token is gone (module '%s' re-opened %d times)%s", m->name, *tries,
                 last == CKR_TOKEN_NOT_PRESENT && other_user
                     ? "; after a fork or a change of user the token may not be visible to this "
                       "user (SoftHSM2 keeps tokens in a directory only their owner can read)"
                     : "; check the token, or the server of a remote token, and try again");
        (void)t;
    }
    *rv = p11c_err_rv(err, last, func);
    return 0;
}

unsigned long p11c_module_recoveries(const P11C_MODULE *m)
{
    if (m == NULL)
        return 0;
    return atomic_load(&((P11C_MODULE *)m)->recoveries);
}
