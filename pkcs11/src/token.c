/* Tokens: matching slots to URIs, the session pool, mechanisms (login: login.c). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/p11-kit.h>

/* Pool bound when the token reports no limit. */
#define P11C_DEFAULT_MAX_SESSIONS 64
/* The smallest pool that spares a session for the keeper. */
#define P11C_KEEPER_MIN_POOL 4
/* How long a caller waits for a session when the pool is exhausted. */
#define P11C_DEFAULT_WAIT_MS 2000

static void token_locks_init(P11C_TOKEN *t)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->login_lock, NULL);
    pthread_mutex_init(&t->keeper_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
}

static CK_ULONG limit_of(const CK_TOKEN_INFO *ti)
{
    CK_ULONG max = ti->ulMaxSessionCount;
    if (max == CK_EFFECTIVELY_INFINITE || max == CK_UNAVAILABLE_INFORMATION)
        max = P11C_DEFAULT_MAX_SESSIONS;
    CK_ULONG rw = ti->ulMaxRwSessionCount;
    if (rw != CK_EFFECTIVELY_INFINITE && rw != CK_UNAVAILABLE_INFORMATION && rw < max)
        max = rw;
    return max;
}

static CK_ULONG bound_of(const P11C_TOKEN *t)
{
    return t->max_override != 0 ? t->max_override : t->max;
}

static int same_token(const CK_TOKEN_INFO *a, const CK_TOKEN_INFO *b)
{
    return memcmp(a->label, b->label, sizeof(a->label)) == 0 &&
           memcmp(a->serialNumber, b->serialNumber, sizeof(a->serialNumber)) == 0 &&
           memcmp(a->manufacturerID, b->manufacturerID, sizeof(a->manufacturerID)) == 0 &&
           memcmp(a->model, b->model, sizeof(a->model)) == 0;
}

/* The token object for (slot, ti), made on first sight; m->lock not held. */
static P11C_TOKEN *token_get(P11C_MODULE *m, CK_SLOT_ID slot, const CK_SLOT_INFO *si,
                             const CK_TOKEN_INFO *ti)
{
    P11C_TOKEN *t;

    pthread_mutex_lock(&m->lock);
    for (t = m->tokens; t != NULL; t = t->next) {
        if (t->slot == slot && same_token(&t->info, ti))
            goto end;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto end;
    t->m = m;
    t->slot = slot;
    t->slot_info = *si;
    t->info = *ti;
    size_t len = p11_kit_space_strlen(ti->label, sizeof(ti->label));
    memcpy(t->label, ti->label, len);
    t->label[len] = '\0';
    t->present = 1;
    t->max = limit_of(ti);
    t->wait_ms = P11C_DEFAULT_WAIT_MS;
    t->read_only = (ti->flags & CKF_WRITE_PROTECTED) != 0;
    token_locks_init(t);
    t->next = m->tokens;
    m->tokens = t;
end:
    pthread_mutex_unlock(&m->lock);
    return t;
}

static CK_RV slot_list(P11C_MODULE *m, CK_SLOT_ID **out, CK_ULONG *n, P11C_ERR *err)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG num = 0;
    CK_RV rv = CKR_OK;

    for (int tries = 0; tries < 4; tries++) {
        rv = P11C_CALL(m, err, C_GetSlotList, CK_TRUE, NULL, &num);
        if (rv != CKR_OK)
            goto end;
        free(slots);
        slots = calloc(num + 1, sizeof(*slots));
        if (slots == NULL) {
            rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetSlotList");
            goto end;
        }
        rv = P11C_CALL(m, err, C_GetSlotList, CK_TRUE, slots, &num);
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
end:
    if (rv != CKR_OK) {
        free(slots);
        slots = NULL;
        num = 0;
    }
    *out = slots;
    *n = num;
    return rv;
}

static void note_slot_error(CK_RV rv, const char *func, CK_RV *first, const char **first_func)
{
    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SLOT_ID_INVALID || rv == CKR_DEVICE_REMOVED ||
        rv == CKR_TOKEN_NOT_RECOGNIZED || *first != CKR_OK)
        return;
    *first = rv;
    *first_func = func;
}

CK_RV p11c_tokens_match(P11C_MODULE *m, P11KitUri *u, P11C_TOKEN ***out, size_t *n, P11C_ERR *err)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0;
    P11C_TOKEN **found = NULL;
    size_t nfound = 0;
    CK_RV first = CKR_OK;
    const char *first_func = NULL;
    CK_SLOT_ID want = u != NULL ? p11_kit_uri_get_slot_id(u) : (CK_SLOT_ID)-1;

    CK_RV rv = slot_list(m, &slots, &nslots, err);
    if (rv != CKR_OK)
        goto end;
    found = calloc(nslots + 1, sizeof(*found));
    if (found == NULL) {
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetSlotList");
        goto end;
    }
    for (CK_ULONG i = 0; i < nslots; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        CK_RV r;
        if (want != (CK_SLOT_ID)-1 && slots[i] != want)
            continue;
        /* A slot whose token went away meanwhile is simply not a match; any
         * other failure is reported when nothing matched. */
        r = P11C_CALL(m, NULL, C_GetSlotInfo, slots[i], &si);
        if (r != CKR_OK) {
            note_slot_error(r, "C_GetSlotInfo", &first, &first_func);
            continue;
        }
        if (u != NULL && !p11_kit_uri_match_slot_info(u, &si))
            continue;
        r = P11C_CALL(m, NULL, C_GetTokenInfo, slots[i], &ti);
        if (r != CKR_OK) {
            note_slot_error(r, "C_GetTokenInfo", &first, &first_func);
            continue;
        }
        if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0)
            continue;
        if (u != NULL && !p11_kit_uri_match_token_info(u, &ti))
            continue;
        P11C_TOKEN *t = token_get(m, slots[i], &si, &ti);
        if (t == NULL) {
            rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetTokenInfo");
            goto end;
        }
        found[nfound++] = t;
    }
    if (nfound == 0 && first != CKR_OK)
        rv = p11c_err_rv(err, first, first_func);
end:
    free(slots);
    if (rv != CKR_OK) {
        free(found);
        found = NULL;
        nfound = 0;
    }
    *out = found;
    *n = nfound;
    return rv;
}

void p11c_tokens_after_fork(P11C_MODULE *m)
{
    for (P11C_TOKEN *t = m->tokens; t != NULL; t = t->next) {
        token_locks_init(t);
        t->nidle = 0;
        t->open = 0;
        t->login_epoch = 0;
        t->keeper_epoch = 0;
    }
}

void p11c_tokens_reset(P11C_MODULE *m)
{
    for (P11C_TOKEN *t = m->tokens; t != NULL; t = t->next) {
        pthread_mutex_lock(&t->lock);
        /* The old instance's sessions are gone with it: forgotten, not
         * closed (their handles may name new sessions now). */
        t->nidle = 0;
        t->open = 0;
        t->login_epoch = 0;
        t->keeper_epoch = 0;
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
    }
}

void p11c_tokens_refind(P11C_MODULE *m)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0;

    if (slot_list(m, &slots, &nslots, NULL) != CKR_OK)
        return; /* keep the old slot ids: the next call tells */
    for (P11C_TOKEN *t = m->tokens; t != NULL; t = t->next) {
        t->present = 0;
        for (CK_ULONG i = 0; i < nslots; i++) {
            CK_TOKEN_INFO ti;
            if (P11C_CALL(m, NULL, C_GetTokenInfo, slots[i], &ti) == CKR_OK &&
                same_token(&t->info, &ti)) {
                t->slot = slots[i];
                t->present = 1;
                break;
            }
        }
    }
    free(slots);
}

void p11c_tokens_free(P11C_MODULE *m, int close_sessions)
{
    P11C_TOKEN *t = m->tokens;
    while (t != NULL) {
        P11C_TOKEN *next = t->next;
        if (close_sessions) {
            for (size_t i = 0; i < t->nidle; i++)
                P11C_CALL(m, NULL, C_CloseSession, t->idle[i]);
            if (t->keeper_epoch == atomic_load(&m->epoch))
                P11C_CALL(m, NULL, C_CloseSession, t->keeper);
        }
        free(t->idle);
        free(t->mechs);
        p11c_pin_free(t->pin);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_destroy(&t->login_lock);
        pthread_mutex_destroy(&t->keeper_lock);
        pthread_cond_destroy(&t->cond);
        free(t);
        t = next;
    }
    m->tokens = NULL;
}

/* ---- Session pool ------------------------------------------------------- */

/* The module epoch in which this thread last took a session: a session given
 * back after the module was re-opened (recover.c) or re-initialised after
 * fork belongs to the old instance, and its handle may now name another
 * caller's session; it is dropped, never closed or reused. */
static _Thread_local unsigned long got_epoch;

static int session_stale(const P11C_TOKEN *t)
{
    return got_epoch != atomic_load(&t->m->epoch);
}

int p11c_session_lost(CK_RV rv)
{
    /* CKR_OPERATION_ACTIVE: a session left mid-operation by an earlier
     * failure; it is closed and the work done again on a fresh one. */
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_OPERATION_ACTIVE;
}

int p11c_session_reusable(CK_RV rv)
{
    /* After these the session is known to be idle: either the call was refused
     * before any operation began, or (C_Sign, C_Decrypt) it ended it. */
    switch (rv) {
    case CKR_OK:
    case CKR_ARGUMENTS_BAD:
    case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_LOCKED:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_USER_ALREADY_LOGGED_IN:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return 1;
    default:
        return 0;
    }
}

static void timespec_after_ms(struct timespec *ts, unsigned int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

CK_RV p11c_session_get(P11C_TOKEN *t, CK_SESSION_HANDLE *s, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    struct timespec deadline;
    int waiting = 0;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&t->lock);
    for (;;) {
        if (!t->present) {
            pthread_mutex_unlock(&t->lock);
            return p11c_err_rv(err, CKR_TOKEN_NOT_PRESENT, "C_OpenSession");
        }
        if (t->nidle > 0) {
            *s = t->idle[--t->nidle];
            got_epoch = atomic_load(&m->epoch);
            pthread_mutex_unlock(&t->lock);
            return CKR_OK;
        }
        if (t->open < bound_of(t)) {
            t->open++;
            int ro = t->read_only;
            got_epoch = atomic_load(&m->epoch);
            pthread_mutex_unlock(&t->lock);
            CK_FLAGS fl = CKF_SERIAL_SESSION | (ro ? 0 : CKF_RW_SESSION);
            rv = P11C_CALL(m, err, C_OpenSession, t->slot, fl, NULL, NULL, s);
            if (rv == CKR_TOKEN_WRITE_PROTECTED && !ro) {
                rv = P11C_CALL(m, err, C_OpenSession, t->slot, CKF_SERIAL_SESSION, NULL, NULL, s);
                if (rv == CKR_OK) {
                    pthread_mutex_lock(&t->lock);
                    t->read_only = 1;
                    pthread_mutex_unlock(&t->lock);
                }
            }
            if (rv == CKR_OK)
                return CKR_OK;
            pthread_mutex_lock(&t->lock);
            t->open--;
            pthread_cond_signal(&t->cond);
            if (rv != CKR_SESSION_COUNT || t->open == 0) {
                pthread_mutex_unlock(&t->lock);
                return rv;
            }
            /* The token allows fewer sessions than it said: learn its limit
             * and wait for one of ours to come back. */
            t->max = t->open;
        }
        if (!waiting) {
            timespec_after_ms(&deadline, t->wait_ms);
            waiting = 1;
        }
        int rc = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
        if (rc == ETIMEDOUT && t->nidle == 0 && t->open >= bound_of(t)) {
            pthread_mutex_unlock(&t->lock);
            return p11c_err_rv(err, P11C_CKR_SESSION_LIMIT, "session pool");
        }
    }
}

void p11c_session_discard(P11C_TOKEN *t, CK_SESSION_HANDLE s)
{
    if (session_stale(t))
        return;
    P11C_CALL(t->m, NULL, C_CloseSession, s);
    pthread_mutex_lock(&t->lock);
    if (t->open > 0)
        t->open--;
    /* Closing an application's last session logs it out. */
    if (t->open == 0)
        t->login_epoch = 0;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void p11c_session_put(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_RV last_rv)
{
    if (session_stale(t))
        return;
    if (!p11c_session_reusable(last_rv)) {
        p11c_session_discard(t, s);
        return;
    }
    pthread_mutex_lock(&t->lock);
    if (t->open > bound_of(t))
        goto close;
    if (t->nidle == t->idle_cap) {
        size_t cap = t->idle_cap != 0 ? t->idle_cap * 2 : 8;
        CK_SESSION_HANDLE *grown = realloc(t->idle, cap * sizeof(*grown));
        if (grown == NULL)
            goto close;
        t->idle = grown;
        t->idle_cap = cap;
    }
    t->idle[t->nidle++] = s;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return;
close:
    pthread_mutex_unlock(&t->lock);
    p11c_session_discard(t, s);
}

/* ---- The keeper session -------------------------------------------------- */

CK_RV p11c_keeper_acquire(P11C_TOKEN *t, CK_SESSION_HANDLE *s, P11C_ERR *err)
{
    unsigned long epoch = atomic_load(&t->m->epoch);
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&t->keeper_lock);
    pthread_mutex_lock(&t->lock);
    int have = t->keeper_epoch == epoch;
    CK_ULONG bound = bound_of(t);
    *s = t->keeper;
    pthread_mutex_unlock(&t->lock);
    if (have)
        return CKR_OK;
    /* A token that allows a few sessions needs them all for its work. */
    if (bound < P11C_KEEPER_MIN_POOL) {
        pthread_mutex_unlock(&t->keeper_lock);
        return p11c_err_rv(err, P11C_CKR_SESSION_LIMIT, "session pool");
    }
    /* A session of the pool that never goes back to it. */
    rv = p11c_session_get(t, s, err);
    if (rv != CKR_OK) {
        pthread_mutex_unlock(&t->keeper_lock);
        return rv;
    }
    pthread_mutex_lock(&t->lock);
    t->keeper = *s;
    t->keeper_epoch = epoch;
    pthread_mutex_unlock(&t->lock);
    return CKR_OK;
}

void p11c_keeper_release(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_RV last_rv)
{
    if (p11c_session_lost(last_rv)) {
        pthread_mutex_lock(&t->lock);
        int ours = t->keeper_epoch != 0 && t->keeper == s;
        if (ours)
            t->keeper_epoch = 0;
        pthread_mutex_unlock(&t->lock);
        if (ours)
            p11c_session_discard(t, s);
    }
    pthread_mutex_unlock(&t->keeper_lock);
}

/* ---- Public token functions ----------------------------------------------- */

CK_RV p11c_token_find(P11C_MODULE *m, const char *uri, P11C_TOKEN **out, P11C_ERR *err)
{
    P11C_URI u;
    P11C_TOKEN **found = NULL;
    size_t n = 0;

    if (m == NULL || out == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "p11c_token_find", "no module");
    *out = NULL;
    CK_RV rv = p11c_uri_parse(uri, &u, err);
    if (rv != CKR_OK)
        return rv;
    p11c_err_what(err, "%s", u.desc);
    rv = p11c_module_enter(m, err);
    if (rv != CKR_OK)
        goto end;
    rv = p11c_tokens_match(m, u.u, &found, &n, err);
    if (rv != CKR_OK)
        goto end;
    if (n == 0)
        rv = p11c_no_token(m, u.u, u.desc, "p11c_token_find", err);
    else if (n > 1)
        rv = p11c_err_set(err, P11C_CKR_TOKEN_AMBIGUOUS, "p11c_token_find", "%s: %zu tokens match",
                          u.desc, n);
    else
        *out = found[0];
end:
    free(found);
    p11c_uri_clear(&u);
    return rv;
}

const char *p11c_token_label(const P11C_TOKEN *t)
{
    return t != NULL ? t->label : "";
}

static int mech_cmp(const void *a, const void *b)
{
    CK_MECHANISM_TYPE x = ((const P11C_MECH_ENTRY *)a)->type;
    CK_MECHANISM_TYPE y = ((const P11C_MECH_ENTRY *)b)->type;
    return x < y ? -1 : x > y;
}

static CK_RV mechs_load(P11C_TOKEN *t, P11C_ERR *err)
{
    P11C_MODULE *m = t->m;
    CK_MECHANISM_TYPE *types = NULL;
    P11C_MECH_ENTRY *entries = NULL;
    CK_ULONG num = 0;
    CK_RV rv;

    pthread_mutex_lock(&t->lock);
    int loaded = t->mechs_loaded;
    pthread_mutex_unlock(&t->lock);
    if (loaded)
        return CKR_OK;

    rv = P11C_CALL(m, err, C_GetMechanismList, t->slot, NULL, &num);
    if (rv != CKR_OK)
        goto end;
    types = calloc(num + 1, sizeof(*types));
    entries = calloc(num + 1, sizeof(*entries));
    if (types == NULL || entries == NULL) {
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_GetMechanismList");
        goto end;
    }
    rv = P11C_CALL(m, err, C_GetMechanismList, t->slot, types, &num);
    if (rv != CKR_OK)
        goto end;
    for (CK_ULONG i = 0; i < num; i++)
        entries[i].type = types[i];
    qsort(entries, num, sizeof(*entries), mech_cmp);
    pthread_mutex_lock(&t->lock);
    if (!t->mechs_loaded) {
        t->mechs = entries;
        t->nmechs = num;
        t->mechs_loaded = 1;
        entries = NULL;
    }
    pthread_mutex_unlock(&t->lock);
end:
    free(types);
    free(entries);
    return rv;
}

static CK_RV mechanism_once(P11C_TOKEN *t, CK_MECHANISM_TYPE mech, CK_FLAGS flags,
                            CK_MECHANISM_INFO *info, P11C_ERR *err)
{
    P11C_MECH_ENTRY key = {.type = mech};
    P11C_MECH_ENTRY *e;
    CK_MECHANISM_INFO mi;
    CK_RV rv;

    rv = p11c_module_enter(t->m, err);
    if (rv != CKR_OK)
        return rv;
    rv = mechs_load(t, err);
    if (rv != CKR_OK)
        return rv;

    pthread_mutex_lock(&t->lock);
    e = bsearch(&key, t->mechs, t->nmechs, sizeof(*t->mechs), mech_cmp);
    int known = e != NULL && e->known;
    if (known)
        mi = e->info;
    pthread_mutex_unlock(&t->lock);
    if (e == NULL)
        return p11c_err_rv(err, CKR_MECHANISM_INVALID, "C_GetMechanismList");
    if (!known) {
        rv = P11C_CALL(t->m, err, C_GetMechanismInfo, t->slot, mech, &mi);
        if (rv != CKR_OK)
            return rv;
        pthread_mutex_lock(&t->lock);
        e->info = mi;
        e->known = 1;
        pthread_mutex_unlock(&t->lock);
    }
    if (info != NULL)
        *info = mi;
    if ((mi.flags & flags) != flags)
        return p11c_err_rv(err, CKR_MECHANISM_INVALID, "C_GetMechanismInfo");
    return CKR_OK;
}

CK_RV p11c_token_mechanism(P11C_TOKEN *t, CK_MECHANISM_TYPE mech, CK_FLAGS flags,
                           CK_MECHANISM_INFO *info, P11C_ERR *err)
{
    char name[48];
    int recovered = 0;
    CK_RV rv;

    if (t == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_GetMechanismInfo", "no token");
    p11c_err_what(err, "token '%s', %s", t->label, p11c_mech_name(mech, name, sizeof(name)));
    do {
        /* A token gone underneath (a remote token's server restarted): the
         * module re-opened, as for a key's operation (recover.c). */
        unsigned long epoch = atomic_load(&t->m->epoch);
        rv = mechanism_once(t, mech, flags, info, err);
        if (rv == CKR_OK || !p11c_recover_again(t->m, t, epoch, &rv, &recovered, err))
            break;
    } while (1);
    return rv;
}

CK_RV p11c_token_random(P11C_TOKEN *t, uint8_t *buf, size_t len, P11C_ERR *err)
{
    CK_SESSION_HANDLE s;

    if (t == NULL || (buf == NULL && len != 0))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_GenerateRandom", "no buffer");
    p11c_err_what(err, "token '%s', %zu random bytes", t->label, len);
    CK_RV rv = p11c_module_enter(t->m, err);
    if (rv != CKR_OK || len == 0)
        return rv;
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = p11c_session_get(t, &s, err);
        if (rv != CKR_OK)
            return rv;
        rv = P11C_CALL(t->m, err, C_GenerateRandom, s, buf, (CK_ULONG)len);
        p11c_session_put(t, s, rv);
        if (!p11c_session_lost(rv))
            break;
    }
    return rv;
}

CK_ULONG p11c_token_max_sessions(const P11C_TOKEN *t)
{
    if (t == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    CK_ULONG max = bound_of(t);
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return max;
}

void p11c_token_set_max_sessions(P11C_TOKEN *t, CK_ULONG max)
{
    CK_SESSION_HANDLE extra[16];
    size_t nextra = 0;

    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    t->max_override = max;
    /* Idle sessions above the new bound are closed now (sessions in use on
     * their return), keeping at least one so that the login survives. */
    while (t->nidle > 0 && t->open > bound_of(t) && t->open > 1 && nextra < 16) {
        extra[nextra++] = t->idle[--t->nidle];
        t->open--;
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < nextra; i++)
        P11C_CALL(t->m, NULL, C_CloseSession, extra[i]);
}

void p11c_token_set_session_wait(P11C_TOKEN *t, unsigned int ms)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    t->wait_ms = ms;
    pthread_mutex_unlock(&t->lock);
}
