/*
 * Item 3: the full P11C handshake in memory, both sides in this process,
 * against the sum of the primitive operations it performs, timed alone in
 * the same rounds: three PSS signatures with the long-term keys, three
 * verifications, one OAEP encryption with pub(S), one OAEP decryption with S
 * and, when S is made on demand, one RSA-2048 key generation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "bench.h"
#include "p11c_internal.h"

/* ---- One handshake ---------------------------------------------------------- */

static int pump(P11C_SESSION *from, P11C_SESSION *to, int *moved)
{
    uint8_t *m = NULL;
    size_t n = 0;

    while (p11c_session_pop_output(from, &m, &n)) {
        p11c_err e = p11c_session_recv(to, m, n);
        OPENSSL_free(m);
        if (e != P11C_OK) {
            fprintf(stderr, "bench: handshake: %s\n", p11c_strerror(e));
            return 0;
        }
        *moved = 1;
    }
    return 1;
}

static int drain(P11C_SESSION *s)
{
    P11C_EVENT ev;
    int ok = 1;

    while (p11c_session_next_event(s, &ev)) {
        if (ev.type == P11C_EV_ERROR)
            ok = 0;
        p11c_event_clear(&ev);
    }
    return ok;
}

int bench_pair(const BENCH_PAIR_CFG *cfg, P11C_SESSION **a_out, P11C_SESSION **b_out)
{
    P11C_CONFIG ca, cb;
    P11C_SESSION *a = NULL, *b = NULL;
    p11c_err e = P11C_OK;
    int ok = 0, moved = 1;

    memset(&ca, 0, sizeof(ca));
    ca.role = P11C_INITIATOR;
    ca.libctx = bench.libctx;
    /* As the p11chat command does: software unless a key says otherwise. */
    ca.propq = "?provider=default";
    ca.policy = P11C_POLICY_STRICT;
    cb = ca;
    cb.role = P11C_RESPONDER;
    ca.key = cfg->key_a;
    ca.identity = "alice@bench";
    ca.session_key_propq = cfg->sk_propq;
    ca.session_key_fn = cfg->sk_fn;
    ca.session_key_arg = cfg->sk_arg;
    ca.suite = cfg->suite;
    cb.key = cfg->key_b;
    cb.identity = "bob@bench";

    a = p11c_session_new(&ca, &e);
    if (a != NULL)
        b = p11c_session_new(&cb, &e);
    if (a == NULL || b == NULL || (e = p11c_session_start(a)) != P11C_OK) {
        fprintf(stderr, "bench: handshake: %s\n", p11c_strerror(e));
        goto end;
    }
    while (moved) {
        moved = 0;
        if (!pump(a, b, &moved) || !pump(b, a, &moved))
            goto end;
    }
    ok = p11c_session_established(a) && p11c_session_established(b);
    ok &= drain(a);
    ok &= drain(b);
end:
    if (ok && a_out != NULL && b_out != NULL) {
        *a_out = a;
        *b_out = b;
    } else {
        p11c_session_free(a);
        p11c_session_free(b);
    }
    if (!ok)
        bench_ossl_err("handshake");
    return ok;
}

/* ---- The primitives, one at a time ------------------------------------------ */

#define TBS_LEN 900 /* about the size of TBS_B for RSA-2048 keys */

typedef struct prims {
    EVP_PKEY *lt;     /* long-term key (Alice's and Bob's are of one kind) */
    EVP_PKEY *s;      /* a session key of the kind measured */
    EVP_PKEY *s_pub;  /* its public half, in software */
    EVP_PKEY *lt_pub; /* the long-term public key, in software */
    const char *sk_propq;
    uint8_t tbs[TBS_LEN];
    uint8_t sig[256];
    size_t siglen;
    uint8_t enc[256];
    size_t enclen;
} PRIMS;

static int pss(EVP_PKEY_CTX *pctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) > 0;
}

static int prim_sign(PRIMS *p)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = sizeof(p->sig);
    int ok = md != NULL &&
             EVP_DigestSignInit_ex(md, &pctx, "SHA256", bench.libctx, "?provider=default", p->lt,
                                   NULL) > 0 &&
             pss(pctx) && EVP_DigestSign(md, p->sig, &len, p->tbs, sizeof(p->tbs)) > 0;

    p->siglen = len;
    EVP_MD_CTX_free(md);
    return ok;
}

static int prim_verify(PRIMS *p)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL &&
             EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", bench.libctx, "?provider=default",
                                     p->lt_pub, NULL) > 0 &&
             pss(pctx) && EVP_DigestVerify(md, p->sig, p->siglen, p->tbs, sizeof(p->tbs)) == 1;

    EVP_MD_CTX_free(md);
    return ok;
}

static EVP_PKEY_CTX *oaep(EVP_PKEY *key, int enc)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(bench.libctx, key, "?provider=default");

    if (ctx == NULL)
        return NULL;
    if ((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int prim_encrypt(PRIMS *p)
{
    uint8_t sec[64];
    EVP_PKEY_CTX *ctx = oaep(p->s_pub, 1);
    size_t len = sizeof(p->enc);
    int ok = ctx != NULL && RAND_bytes(sec, sizeof(sec)) == 1 &&
             EVP_PKEY_encrypt(ctx, p->enc, &len, sec, sizeof(sec)) > 0;

    p->enclen = len;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int prim_decrypt(PRIMS *p)
{
    uint8_t out[256];
    EVP_PKEY_CTX *ctx = oaep(p->s, 0);
    size_t len = sizeof(out);
    int ok = ctx != NULL && EVP_PKEY_decrypt(ctx, out, &len, p->enc, p->enclen) > 0 && len == 64;

    OPENSSL_cleanse(out, sizeof(out));
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *keygen(const char *propq)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(bench.libctx, "RSA", propq);
    EVP_PKEY *pk = NULL;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) <= 0 || EVP_PKEY_keygen(ctx, &pk) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* The public half of any key, as a software key (through its DER encoding). */
static EVP_PKEY *public_copy(EVP_PKEY *key)
{
    uint8_t *der = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;

    if (p11c_pub_der(key, &der, &len) == P11C_OK &&
        p11c_key_from_der(bench.libctx, "provider=default", der, len, &pub) != P11C_OK)
        pub = NULL;
    OPENSSL_free(der);
    return pub;
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Times the primitives of one handshake, each alone, on key objects as fresh
 * as the handshake's own: a new S (its generation timed only when the
 * handshake makes S on demand) and public keys newly decoded, so that every
 * first-use cost (blinding, Montgomery set-up) is counted as in a handshake.
 * Returns the wall seconds (< 0 on failure); *cpu gets this thread's CPU seconds
 * (both sides of the handshake and the token calls run in it; the pool thread does not).
 */
static double time_prims(PRIMS *p, int keygen_timed, double *cpu)
{
    double t0, c0, t = 0, c = 0, tk, ck;
    int ok = 0;

    p->lt_pub = public_copy(p->lt);
    c0 = cpu_now();
    t0 = bench_now();
    p->s = keygen(p->sk_propq);
    tk = bench_now() - t0;
    ck = cpu_now() - c0;
    if (keygen_timed) {
        t += tk;
        c += ck;
    }
    p->s_pub = p->s != NULL ? public_copy(p->s) : NULL;
    if (p->lt_pub == NULL || p->s_pub == NULL)
        goto end;
#define TIMED(expr)                                                                                \
    do {                                                                                           \
        c0 = cpu_now();                                                                            \
        t0 = bench_now();                                                                          \
        if (!(expr))                                                                               \
            goto end;                                                                              \
        t += bench_now() - t0;                                                                     \
        c += cpu_now() - c0;                                                                       \
    } while (0)
    for (int i = 0; i < 3; i++) {
        TIMED(prim_sign(p));
        TIMED(prim_verify(p));
    }
    TIMED(prim_encrypt(p));
    TIMED(prim_decrypt(p));
    /* S is destroyed at the end of its handshake. */
    TIMED((EVP_PKEY_free(p->s), p->s = NULL, 1));
#undef TIMED
    ok = 1;
end:
    EVP_PKEY_free(p->s);
    EVP_PKEY_free(p->s_pub);
    EVP_PKEY_free(p->lt_pub);
    p->s = p->s_pub = p->lt_pub = NULL;
    *cpu = c;
    return ok ? t : -1;
}

/* ---- The section --------------------------------------------------------------- */

typedef struct hs_case {
    const char *keys; /* "software" or "token" */
    const char *sk;   /* where S comes from */
    int token_s;      /* S in the token */
    int pooled;       /* 1: a p11c_keypool; 2: one key made before, no pool thread (control) */
} HS_CASE;

/* The control case: S made before the handshake, untimed, with no thread refilling. */
static EVP_PKEY *ready_key;

static EVP_PKEY *take_ready(void *arg)
{
    EVP_PKEY *k = ready_key;

    (void)arg;
    ready_key = NULL;
    return k;
}

static int wait_pool_full(P11C_KEYPOOL *pool, size_t size)
{
    double t0 = bench_now();
    struct timespec ms = {0, 1000000};

    while (p11c_keypool_ready(pool) < size) {
        if (bench_now() - t0 > 120)
            return 0;
        nanosleep(&ms, NULL);
    }
    return 1;
}

static void one_case(const HS_CASE *hc, EVP_PKEY *key_a, EVP_PKEY *key_b)
{
    const char *sk_propq = hc->token_s ? "provider=p11chat" : "provider=default";
    int samples = hc->pooled == 1 ? (bench.quick ? 5 : 15) : (bench.quick ? 3 : 7);
    size_t pool_size = hc->token_s ? 4 : 8;
    double *hs = calloc((size_t)samples, sizeof(double));
    double *sum = calloc((size_t)samples, sizeof(double));
    double *q = calloc((size_t)samples, sizeof(double));
    double *qc = calloc((size_t)samples, sizeof(double));
    P11C_KEYPOOL *pool = NULL;
    BENCH_PAIR_CFG cfg;
    PRIMS p;
    char name[96];
    int n = 0;

    memset(&p, 0, sizeof(p));
    memset(&cfg, 0, sizeof(cfg));
    p.lt = key_a;
    p.sk_propq = sk_propq;
    RAND_bytes(p.tbs, sizeof(p.tbs));
    cfg.key_a = key_a;
    cfg.key_b = key_b;
    cfg.sk_propq = sk_propq;
    if (hs == NULL || sum == NULL || q == NULL || qc == NULL)
        goto end;
    if (hc->pooled == 2) {
        cfg.sk_fn = take_ready;
    } else if (hc->pooled) {
        p11c_err e;
        pool = p11c_keypool_new(bench.libctx, sk_propq, pool_size, &e);
        if (pool == NULL) {
            fprintf(stderr, "bench: key pool: %s\n", p11c_strerror(e));
            goto end;
        }
        cfg.sk_fn = p11c_keypool_take;
        cfg.sk_arg = pool;
    }
    /* Warm-up: one handshake, untimed. */
    if (hc->pooled == 2 && (ready_key = keygen(sk_propq)) == NULL)
        goto end;
    if (!bench_pair(&cfg, NULL, NULL))
        goto end;
    for (n = 0; n < samples; n++) {
        double t0, c0, cpu;
        /* A pooled handshake finds a key ready, as in a chat program where
         * handshakes are rare: the pool is full and its thread idle while the
         * primitives and then the handshake are timed. */
        if (pool != NULL && !wait_pool_full(pool, pool_size))
            break;
        if (hc->pooled == 2 && (ready_key = keygen(sk_propq)) == NULL)
            break;
        sum[n] = time_prims(&p, !hc->pooled, &cpu);
        if (sum[n] <= 0)
            break;
        c0 = cpu_now();
        t0 = bench_now();
        if (!bench_pair(&cfg, NULL, NULL))
            break;
        hs[n] = bench_now() - t0;
        qc[n] = (cpu_now() - c0) / cpu;
        q[n] = hs[n] / sum[n];
        hs[n] *= 1e3;
        sum[n] *= 1e3;
    }
    if (n < samples) {
        fprintf(stderr, "bench: handshake (%s keys, S %s) failed\n", hc->keys, hc->sk);
        goto end;
    }
    /* Undisturbed: the 10th percentiles of both (see util.c on preemption). */
    double quiet = bench_percentile(hs, (size_t)n, 0.1) / bench_percentile(sum, (size_t)n, 0.1);
    snprintf(name, sizeof(name), "handshake, %s keys, S %s", hc->keys, hc->sk);
    bench_row("handshake", name, bench_median(hs, (size_t)n), "ms",
              bench_percentile(hs, (size_t)n, 0.9), quiet, "sum of primitives");
    bench_row("handshake", "  sum of its primitives, timed alone", bench_median(sum, (size_t)n),
              "ms", bench_percentile(sum, (size_t)n, 0.9), -1, NULL);
    bench_row("handshake", "  median of the per-handshake ratios", NAN, "", -1,
              bench_median(q, (size_t)n), "sum of primitives");
    bench_row("handshake", "  the same in thread CPU time", NAN, "", -1,
              bench_median(qc, (size_t)n), "sum of primitives");
    if (hc->pooled == 1) {
        snprintf(name, sizeof(name), "handshake %s keys, pool %s: hs / primitives", hc->keys,
                 hc->token_s ? "token" : "software");
        bench_target(name, quiet, "ratio", "lt", 1.2);
    }
end:
    p11c_keypool_free(pool);
    EVP_PKEY_free(ready_key);
    ready_key = NULL;
    free(qc);
    free(hs);
    free(sum);
    free(q);
}

void bench_handshake(void)
{
    static const HS_CASE cases[] = {
        {"software", "on demand, software", 0, 0},
        {"software", "from a pool, software", 0, 1},
        {"token", "on demand, software", 0, 0},
        {"token", "on demand, token", 1, 0},
        {"token", "from a pool, software", 0, 1},
        {"token", "from a pool, token", 1, 1},
        /* Controls: S made before each handshake, no pool thread refilling meanwhile. */
        {"software", "made before, no pool thread", 0, 2},
        {"token", "made before (software), no pool thread", 0, 2},
    };
    EVP_PKEY *alice = NULL, *bob = NULL, *s_tok = NULL;
    char uri[256];

    if (bench.have_provider) {
        snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=alice;type=private", BENCH_TOKEN);
        alice = bench_store_load(bench.libctx, uri, 1);
        snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=bob;type=private", BENCH_TOKEN);
        bob = bench_store_load(bench.libctx, uri, 1);
        s_tok = keygen("provider=p11chat");
        if (alice == NULL || bob == NULL || s_tok == NULL) {
            fprintf(stderr, "bench: handshake: token keys unavailable\n");
            bench_ossl_err("handshake");
        }
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const HS_CASE *hc = &cases[i];
        int token = strcmp(hc->keys, "token") == 0;
        if ((token || hc->token_s) && (alice == NULL || bob == NULL || s_tok == NULL))
            continue;
        one_case(hc, token ? alice : bench.sw_key, token ? bob : bench.sw_key);
    }
    EVP_PKEY_free(alice);
    EVP_PKEY_free(bob);
    EVP_PKEY_free(s_tok);
}
