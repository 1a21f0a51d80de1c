/*
 * Session-key pool (spec section 8): a background thread keeps up to `size`
 * fresh RSA-2048 session keys ready so that a handshake does not wait for key
 * generation. Each key is handed out once; the session that takes it frees
 * (destroys) it after its one handshake, so forward secrecy is unchanged.
 *
 * The thread runs at the lowest priority: refilling the pool takes only the
 * CPU time that handshakes leave, instead of competing with the handshake
 * that just took a key. A taker that finds the pool empty makes its key
 * itself rather than wait for that thread.
 */
#define _DEFAULT_SOURCE /* syscall() */
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "p11c_internal.h"

#define POOL_MAX 1024

struct p11c_keypool {
    OSSL_LIB_CTX *libctx;
    char *propq;
    size_t size;
    EVP_PKEY **keys;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t room; /* a key was taken, or the pool is stopping */
    int stop;
    /* A generation failed: the thread waits for the next take before it tries
     * again (no spinning on a dead token). */
    int failed;
    pthread_t thread;
    /* The process that made the pool. In a child made by fork() the keys are
     * the parent's (the same S in two processes would end forward secrecy
     * for both) and the thread is gone: the child discards the keys and
     * makes each one when it is taken. */
    pid_t pid;
    int orphan;
};

/* The calling thread only (on Linux, nice is a property of each thread). */
static void lowest_priority(void)
{
#ifdef __linux__
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
}

static void *pool_worker(void *arg)
{
    P11C_KEYPOOL *pool = arg;

    lowest_priority();
    pthread_mutex_lock(&pool->mu);
    while (!pool->stop) {
        EVP_PKEY *key = NULL;
        p11c_err ret;

        if (pool->n >= pool->size || pool->failed) {
            pthread_cond_wait(&pool->room, &pool->mu);
            continue;
        }
        pthread_mutex_unlock(&pool->mu);
        ret = p11c_session_key_make(pool->libctx, pool->propq, &key);
        if (ret != P11C_OK)
            ERR_clear_error(); /* the taker finds out for itself */
        pthread_mutex_lock(&pool->mu);
        if (ret != P11C_OK) {
            pool->failed = 1;
            continue;
        }
        if (pool->stop || pool->n >= pool->size) {
            EVP_PKEY_free(key);
            continue;
        }
        pool->keys[pool->n++] = key;
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

P11C_KEYPOOL *p11c_keypool_new(OSSL_LIB_CTX *libctx, const char *propq, size_t size, p11c_err *err)
{
    p11c_err ret = P11C_ERR_ARG;
    P11C_KEYPOOL *pool = NULL;
    int mu = 0, room = 0;

    if (size == 0 || size > POOL_MAX)
        goto end;
    ret = P11C_ERR_MEMORY;
    pool = OPENSSL_zalloc(sizeof(*pool));
    if (pool == NULL)
        goto end;
    pool->libctx = libctx;
    pool->size = size;
    pool->keys = OPENSSL_zalloc(size * sizeof(*pool->keys));
    if (pool->keys == NULL || (propq != NULL && (pool->propq = OPENSSL_strdup(propq)) == NULL))
        goto end;
    ret = P11C_ERR_STATE;
    if (pthread_mutex_init(&pool->mu, NULL) != 0)
        goto end;
    mu = 1;
    if (pthread_cond_init(&pool->room, NULL) != 0)
        goto end;
    room = 1;
    pool->pid = getpid();
    if (pthread_create(&pool->thread, NULL, pool_worker, pool) != 0)
        goto end;
    ret = P11C_OK;
end:
    if (ret != P11C_OK && pool != NULL) {
        if (room)
            pthread_cond_destroy(&pool->room);
        if (mu)
            pthread_mutex_destroy(&pool->mu);
        OPENSSL_free(pool->keys);
        OPENSSL_free(pool->propq);
        OPENSSL_free(pool);
        pool = NULL;
    }
    if (err != NULL)
        *err = ret;
    return pool;
}

/*
 * In a child of the process that made the pool (first call there): frees
 * the inherited keys, every pointer once (a fork in the middle of a take
 * may have copied one twice), and sets up a lock of its own (the parent's
 * may have been held by a thread the child does not have). The first call
 * in a child must not race another call on the same pool.
 */
static void after_fork(P11C_KEYPOOL *pool)
{
    if (pool->pid == getpid())
        return;
    for (size_t i = 0; i < pool->n && i < pool->size; i++) {
        int seen = pool->keys[i] == NULL;
        for (size_t k = 0; k < i && !seen; k++)
            seen = pool->keys[k] == pool->keys[i];
        if (!seen)
            EVP_PKEY_free(pool->keys[i]);
    }
    memset(pool->keys, 0, pool->size * sizeof(*pool->keys));
    pool->n = 0;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->room, NULL);
    pool->orphan = 1;
    pool->pid = getpid();
}

void p11c_keypool_free(P11C_KEYPOOL *pool)
{
    if (pool == NULL)
        return;
    after_fork(pool);
    if (pool->orphan) {
        /* No thread of ours to stop. */
        pthread_cond_destroy(&pool->room);
        pthread_mutex_destroy(&pool->mu);
        OPENSSL_free(pool->keys);
        OPENSSL_free(pool->propq);
        OPENSSL_free(pool);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->room);
    pthread_mutex_unlock(&pool->mu);
    pthread_join(pool->thread, NULL);
    for (size_t i = 0; i < pool->n; i++)
        EVP_PKEY_free(pool->keys[i]);
    pthread_cond_destroy(&pool->room);
    pthread_mutex_destroy(&pool->mu);
    OPENSSL_free(pool->keys);
    OPENSSL_free(pool->propq);
    OPENSSL_free(pool);
}

EVP_PKEY *p11c_keypool_take(void *arg)
{
    P11C_KEYPOOL *pool = arg;
    EVP_PKEY *key = NULL;

    if (pool == NULL)
        return NULL;
    after_fork(pool);
    pthread_mutex_lock(&pool->mu);
    if (pool->n > 0) {
        /* Oldest first: FIFO keeps no key waiting longer than needed. */
        key = pool->keys[0];
        memmove(pool->keys, pool->keys + 1, (pool->n - 1) * sizeof(*pool->keys));
        pool->keys[--pool->n] = NULL;
    }
    pool->failed = 0;
    pthread_cond_signal(&pool->room);
    pthread_mutex_unlock(&pool->mu);
    /* Empty: made here, at the caller's priority; a failure leaves its
     * reason in the caller's error queue. */
    if (key == NULL && p11c_session_key_make(pool->libctx, pool->propq, &key) != P11C_OK)
        key = NULL;
    return key;
}

size_t p11c_keypool_ready(P11C_KEYPOOL *pool)
{
    size_t n;

    if (pool == NULL)
        return 0;
    after_fork(pool);
    pthread_mutex_lock(&pool->mu);
    n = pool->n;
    pthread_mutex_unlock(&pool->mu);
    return n;
}
