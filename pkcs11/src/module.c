/* Modules: loading through p11-kit, initialisation, fork, the call wrapper. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>

/* Serialises the re-initialisation of modules in a forked child. Only ever
 * taken when getpid() differs from the pid a module was initialised in. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;

CK_RV p11c_call_done(P11C_MODULE *m, P11C_ERR *err, const char *func, CK_RV rv)
{
    atomic_fetch_add_explicit(&m->calls, 1, memory_order_relaxed);
    /* Logged out behind our back: every token logs in again on next use. */
    if (rv == CKR_USER_NOT_LOGGED_IN)
        atomic_fetch_add(&m->logouts, 1);
    if (rv != CKR_OK && err != NULL) {
        err->rv = rv;
        err->func = func;
    }
    return rv;
}

CK_RV p11c_call_missing(P11C_ERR *err, const char *func)
{
    return p11c_err_rv(err, CKR_FUNCTION_NOT_SUPPORTED, func);
}

char *p11c_pin_dup(const char *pin)
{
    if (pin == NULL)
        return NULL;
    size_t len = strlen(pin);
    char *copy = malloc(len + 1);
    if (copy != NULL)
        memcpy(copy, pin, len + 1);
    return copy;
}

void p11c_pin_free(char *pin)
{
    if (pin == NULL)
        return;
    OPENSSL_cleanse(pin, strlen(pin));
    free(pin);
}

CK_RV p11c_module_initialize(P11C_MODULE *m, P11C_ERR *err)
{
    CK_RV rv;
    if (m->init_args != NULL) {
        /* The module's own parameters (NSS softokn: configdir=...) go in
         * pReserved, which p11-kit's initialiser leaves NULL. */
        CK_C_INITIALIZE_ARGS args;
        memset(&args, 0, sizeof(args));
        args.flags = CKF_OS_LOCKING_OK;
        args.pReserved = m->init_args;
        rv = m->fl->C_Initialize(&args);
    } else {
        rv = p11_kit_module_initialize(m->fl);
    }
    atomic_fetch_add_explicit(&m->calls, 1, memory_order_relaxed);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        rv = CKR_OK;
    if (rv != CKR_OK)
        p11c_err_set(err, rv, "C_Initialize", "module '%s'", m->name);
    return rv;
}

CK_RV p11c_module_load(const char *spec, P11C_MODULE **out, P11C_ERR *err)
{
    return p11c_module_load_args(spec, NULL, out, err);
}

CK_RV p11c_module_load_args(const char *spec, const char *init_args, P11C_MODULE **out,
                            P11C_ERR *err)
{
    CK_RV rv = CKR_HOST_MEMORY;
    P11C_MODULE *m = NULL;

    if (out == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "p11c_module_load", "no output");
    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return p11c_err_set(err, CKR_HOST_MEMORY, "p11c_module_load", "module");
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->refs, 1);
    atomic_init(&m->calls, 0);
    atomic_init(&m->pid, 0);
    atomic_init(&m->epoch, 0);
    atomic_init(&m->logouts, 0);
    atomic_init(&m->no_copies, 0);
    atomic_init(&m->pin_cache, 1);
    atomic_init(&m->pin_final_try, 0);
    atomic_init(&m->context_logins, 0);
    atomic_init(&m->recoveries, 0);
    atomic_init(&m->forked, 0);
    m->uid = getuid();
    if (init_args != NULL && init_args[0] != '\0' &&
        (m->init_args = p11c_pin_dup(init_args)) == NULL)
        goto end;
    if (m->init_args != NULL && (spec == NULL || strchr(spec, '/') == NULL)) {
        /* p11-kit passes a registered module's own parameters itself
         * (x-init-reserved in its module file); the proxy takes none. */
        rv = p11c_err_set(err, P11C_CKR_MODULE_LOAD, "p11c_module_load",
                          "module '%s': initialisation arguments need the module's file path "
                          "(a registered module takes them from x-init-reserved in its p11-kit "
                          "module file)",
                          spec != NULL && spec[0] != '\0' ? spec : "p11-kit-proxy");
        goto end;
    }

    if (spec == NULL || spec[0] == '\0') {
        /* p11-kit refuses to load its proxy as a module; libp11-kit itself is
         * the proxy (p11-kit-proxy.so links to it), so ask it directly. */
        m->name = p11c_pin_dup("p11-kit-proxy");
        if (m->name == NULL)
            goto end;
        m->proxy = 1;
        rv = C_GetFunctionList(&m->fl);
        if (rv != CKR_OK || m->fl == NULL) {
            rv = p11c_err_set(err, P11C_CKR_MODULE_LOAD, "C_GetFunctionList",
                              "module 'p11-kit-proxy': %s", p11c_rv_name(rv));
            m->fl = NULL;
            goto end;
        }
    } else if (strchr(spec, '/') != NULL) {
        m->name = p11c_pin_dup(spec);
        if (m->name == NULL)
            goto end;
        /* Unmanaged when the module takes parameters of its own: p11-kit's
         * managed C_Initialize would not pass them on. */
        m->fl = p11_kit_module_load(spec, m->init_args != NULL ? P11_KIT_MODULE_UNMANAGED : 0);
    } else {
        m->name = p11c_pin_dup(spec);
        if (m->name == NULL)
            goto end;
        m->list = p11_kit_modules_load(NULL, 0);
        if (m->list != NULL)
            m->fl = p11_kit_module_for_name(m->list, spec);
        if (m->fl == NULL) {
            rv = p11c_err_set(err, P11C_CKR_MODULE_LOAD, "p11_kit_modules_load",
                              "module '%s': no module of that name is registered with p11-kit",
                              spec);
            goto end;
        }
    }
    if (m->fl == NULL) {
        const char *msg = p11_kit_message();
        rv = p11c_err_set(err, P11C_CKR_MODULE_LOAD, "p11_kit_module_load", "module '%s': %s",
                          m->name, msg != NULL ? msg : "cannot load");
        goto end;
    }
    rv = p11c_module_initialize(m, err);
    if (rv != CKR_OK)
        goto end;
    atomic_store(&m->pid, getpid());
    atomic_store(&m->epoch, 1);
    *out = m;
    m = NULL;
    rv = CKR_OK;
end:
    if (m != NULL) {
        if (rv == CKR_HOST_MEMORY)
            p11c_err_set(err, rv, "p11c_module_load", "module");
        if (m->list != NULL)
            p11_kit_modules_release(m->list);
        else if (m->fl != NULL && !m->proxy)
            p11_kit_module_release(m->fl);
        free(m->name);
        free(m->init_args);
        pthread_mutex_destroy(&m->lock);
        free(m);
    }
    return rv;
}

CK_RV p11c_module_enter(P11C_MODULE *m, P11C_ERR *err)
{
    pid_t me = getpid();
    CK_RV rv = CKR_OK;

    if (atomic_load_explicit(&m->pid, memory_order_acquire) == me)
        return CKR_OK;

    pthread_mutex_lock(&fork_lock);
    if (atomic_load(&m->pid) == me)
        goto end;
    /* A child of fork(): only the forking thread came along, so no lock of
     * ours can be legitimately held; a parent thread may have held one at the
     * moment of the fork, hence the fresh locks. */
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_lock(&m->lock);
    p11c_tokens_after_fork(m);
    rv = p11c_module_initialize(m, err);
    if (rv == CKR_OK) {
        atomic_fetch_add(&m->epoch, 1);
        atomic_store(&m->forked, 1);
        p11c_tokens_refind(m);
        atomic_store_explicit(&m->pid, me, memory_order_release);
    }
    pthread_mutex_unlock(&m->lock);
end:
    pthread_mutex_unlock(&fork_lock);
    return rv;
}

void p11c_module_ref(P11C_MODULE *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void p11c_module_unref(P11C_MODULE *m)
{
    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    /* In a child that never used the module, the sessions and the
     * initialisation belong to the parent: leave them alone. */
    int ours = atomic_load(&m->pid) == getpid();
    p11c_tokens_free(m, ours);
    if (ours) {
        p11_kit_module_finalize(m->fl);
        atomic_fetch_add_explicit(&m->calls, 1, memory_order_relaxed);
        if (m->list != NULL)
            p11_kit_modules_release(m->list);
        else if (!m->proxy)
            p11_kit_module_release(m->fl);
    }
    p11c_pin_free(m->pin);
    free(m->name);
    free(m->init_args);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void p11c_module_free(P11C_MODULE *m)
{
    p11c_module_unref(m);
}

CK_RV p11c_module_set_pin(P11C_MODULE *m, const char *pin)
{
    if (m == NULL)
        return CKR_ARGUMENTS_BAD;
    char *copy = NULL;
    if (pin != NULL) {
        copy = p11c_pin_dup(pin);
        if (copy == NULL)
            return CKR_HOST_MEMORY;
    }
    pthread_mutex_lock(&m->lock);
    char *old = m->pin;
    m->pin = copy;
    pthread_mutex_unlock(&m->lock);
    p11c_pin_free(old);
    return CKR_OK;
}

char *p11c_module_pin_copy(P11C_MODULE *m)
{
    pthread_mutex_lock(&m->lock);
    char *copy = p11c_pin_dup(m->pin);
    pthread_mutex_unlock(&m->lock);
    return copy;
}

void p11c_module_set_key_copies(P11C_MODULE *m, int on)
{
    if (m != NULL)
        atomic_store(&m->no_copies, !on);
}

unsigned long p11c_module_call_count(const P11C_MODULE *m)
{
    if (m == NULL)
        return 0;
    return atomic_load_explicit(&((P11C_MODULE *)m)->calls, memory_order_relaxed);
}
