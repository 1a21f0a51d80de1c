/*
 * Suite 0x02 handshakes (spec section 10), both sides in this process: the
 * handshake with P-256 long-term keys and a fresh S (no pool) against the
 * sum of the primitives it performs, each timed alone in the same rounds
 * through the library's own calls (three ECDSA signatures with the
 * long-term keys, three verifications, the P-256 keys S and E, two ECDH and
 * the extraction of Sec); then its latency against suite 0x01 with RSA keys,
 * a fresh RSA S and a pooled one.
 *
 * The long-term keys are made in the bench token when the provider handles
 * EC keys there, in software otherwise (a note says which).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "bench.h"
#include "p11c_internal.h"

#define TBS_LEN 400 /* about the size of TBS_B for P-256 keys */

typedef struct prims2 {
    EVP_PKEY *lt, *lt_pub; /* Alice's long-term key and its public half in software */
    const char *sk_propq;  /* where S is made */
    uint8_t tbs[TBS_LEN];
    uint8_t *sig;
    size_t siglen;
} PRIMS2;

/* Makes key pairs `label` in the bench token with pkcs11-tool and loads the
 * private one through the provider; NULL when either fails. */
static EVP_PKEY *token_ec_key(const char *label, const char *id)
{
    char cmd[8192], uri[256];

    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module '%s' --token-label '%s' --login --pin 1234 --keypairgen "
             "--key-type EC:prime256v1 --label '%s' --id %s >/dev/null 2>&1",
             bench.module, BENCH_TOKEN, label, id);
    if (system(cmd) != 0)
        return NULL;
    snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=%s;type=private", BENCH_TOKEN, label);
    return bench_store_load(bench.libctx, uri, 1);
}

/* 1 when the key signs in suite 0x02's way (the provider may load EC keys
 * and not sign with them). */
static int signs(EVP_PKEY *k)
{
    uint8_t *sig = NULL;
    size_t len = 0;
    int ok = p11c_sig_sign(bench.libctx, NULL, k, (const uint8_t *)"x", 1, &sig, &len) == P11C_OK;

    OPENSSL_free(sig);
    ERR_clear_error();
    return ok;
}

static EVP_PKEY *public_copy(EVP_PKEY *key)
{
    uint8_t *der = NULL;
    size_t len = 0;
    EVP_PKEY *pub = NULL;

    if (p11c_pub_der(key, &der, &len) == P11C_OK &&
        p11c_pub_decode(bench.libctx, "provider=default", der, len, P11C_KIND_ANY, &pub) != P11C_OK)
        pub = NULL;
    OPENSSL_free(der);
    return pub;
}

/*
 * The primitives of one suite 0x02 handshake, each alone, on fresh objects as
 * in a handshake (S and E made, their public halves decoded). Wall seconds,
 * < 0 on failure.
 */
static double time_prims2(PRIMS2 *p)
{
    double t = 0, t0;
    EVP_PKEY *s = NULL, *e = NULL, *s_pub = NULL, *e_pub = NULL;
    uint8_t z[32], sec[64], *ps = NULL, *pe = NULL;
    size_t psl = 0, pel = 0;
    int ok = 0;

#define TIMED(expr)                                                                                \
    do {                                                                                           \
        t0 = bench_now();                                                                          \
        if (!(expr))                                                                               \
            goto end;                                                                              \
        t += bench_now() - t0;                                                                     \
    } while (0)
    TIMED(p11c_ec_session_key_make(bench.libctx, p->sk_propq, &s) == P11C_OK);
    TIMED(p11c_ec_session_key_make(bench.libctx, "provider=default", &e) == P11C_OK);
    TIMED(p11c_pub_der(s, &ps, &psl) == P11C_OK && p11c_pub_der(e, &pe, &pel) == P11C_OK);
    TIMED(p11c_pub_decode(bench.libctx, "?provider=default", ps, psl, P11C_KIND_P256, &s_pub) ==
          P11C_OK);
    TIMED(p11c_pub_decode(bench.libctx, "?provider=default", pe, pel, P11C_KIND_P256, &e_pub) ==
          P11C_OK);
    for (int i = 0; i < 3; i++) {
        OPENSSL_free(p->sig);
        p->sig = NULL;
        TIMED(p11c_sig_sign(bench.libctx, "?provider=default", p->lt, p->tbs, sizeof(p->tbs),
                            &p->sig, &p->siglen) == P11C_OK);
        TIMED(p11c_sig_verify(bench.libctx, "?provider=default", p->lt_pub, p->tbs, sizeof(p->tbs),
                              p->sig, p->siglen) == P11C_OK);
    }
    TIMED(p11c_ecdh_z(bench.libctx, "?provider=default", e, s_pub, z) == P11C_OK);
    TIMED(p11c_ecdh_z(bench.libctx, "?provider=default", s, e_pub, z) == P11C_OK);
    TIMED(p11c_ecdh_sec(bench.libctx, "?provider=default", z, ps, psl, pe, pel, sec) == P11C_OK);
    TIMED(p11c_ecdh_sec(bench.libctx, "?provider=default", z, ps, psl, pe, pel, sec) == P11C_OK);
    /* S and E are destroyed at the end of their handshake. */
    TIMED((EVP_PKEY_free(s), s = NULL, EVP_PKEY_free(e), e = NULL, 1));
#undef TIMED
    ok = 1;
end:
    OPENSSL_cleanse(z, sizeof(z));
    OPENSSL_cleanse(sec, sizeof(sec));
    EVP_PKEY_free(s);
    EVP_PKEY_free(e);
    EVP_PKEY_free(s_pub);
    EVP_PKEY_free(e_pub);
    OPENSSL_free(ps);
    OPENSSL_free(pe);
    return ok ? t : -1;
}

static double one_handshake(const BENCH_PAIR_CFG *cfg)
{
    double t0 = bench_now();

    return bench_pair(cfg, NULL, NULL) ? bench_now() - t0 : -1;
}

/* Suite 0x02 handshakes against the sum of their primitives, S made where sk_propq says. */
static void against_primitives(EVP_PKEY *a, EVP_PKEY *b, const char *keys, const char *sk_propq,
                               const char *sk)
{
    int samples = bench.quick ? 5 : 15, n;
    double *hs = calloc((size_t)samples, sizeof(double));
    double *sum = calloc((size_t)samples, sizeof(double));
    double *q = calloc((size_t)samples, sizeof(double));
    BENCH_PAIR_CFG cfg;
    PRIMS2 p;
    char name[128];

    memset(&p, 0, sizeof(p));
    memset(&cfg, 0, sizeof(cfg));
    p.lt = a;
    p.lt_pub = public_copy(a);
    p.sk_propq = sk_propq;
    RAND_bytes(p.tbs, sizeof(p.tbs));
    cfg.key_a = a;
    cfg.key_b = b;
    cfg.sk_propq = sk_propq;
    cfg.suite = P11C_SUITE_2;
    if (hs == NULL || sum == NULL || q == NULL || p.lt_pub == NULL || one_handshake(&cfg) < 0)
        goto fail;
    for (n = 0; n < samples; n++) {
        sum[n] = time_prims2(&p);
        hs[n] = one_handshake(&cfg);
        if (sum[n] <= 0 || hs[n] <= 0)
            goto fail;
        q[n] = hs[n] / sum[n];
        hs[n] *= 1e3;
        sum[n] *= 1e3;
    }
    double quiet = bench_percentile(hs, (size_t)n, 0.1) / bench_percentile(sum, (size_t)n, 0.1);
    snprintf(name, sizeof(name), "suite 0x02 handshake, %s P-256 keys, S %s", keys, sk);
    bench_row("handshake2", name, bench_median(hs, (size_t)n), "ms",
              bench_percentile(hs, (size_t)n, 0.9), quiet, "sum of primitives");
    bench_row("handshake2", "  sum of its primitives, timed alone", bench_median(sum, (size_t)n),
              "ms", bench_percentile(sum, (size_t)n, 0.9), -1, NULL);
    bench_row("handshake2", "  median of the per-handshake ratios", NAN, "", -1,
              bench_median(q, (size_t)n), "sum of primitives");
    snprintf(name, sizeof(name), "suite 0x02, %s keys, fresh S %s: hs / primitives", keys, sk);
    bench_target(name, quiet, "ratio", "lt", 1.2);
    goto end;
fail:
    fprintf(stderr, "bench: suite 0x02 handshake (%s keys, S %s) failed\n", keys, sk);
    bench_ossl_err("handshake2");
end:
    OPENSSL_free(p.sig);
    EVP_PKEY_free(p.lt_pub);
    free(hs);
    free(sum);
    free(q);
}

/* Suite 0x02 (EC keys, fresh S) against suite 0x01 (RSA keys, fresh and pooled S),
 * one handshake of each in turn. */
static void against_suite1(EVP_PKEY *ea, EVP_PKEY *eb, EVP_PKEY *ra, EVP_PKEY *rb, const char *keys)
{
    int samples = bench.quick ? 5 : 15, n;
    double *t[3];
    BENCH_PAIR_CFG cfg[3];
    P11C_KEYPOOL *pool = p11c_keypool_new(bench.libctx, "provider=default", 4, NULL);
    static const char *const what[3] = {"suite 0x02, EC keys, fresh P-256 S",
                                        "suite 0x01, RSA keys, fresh RSA S",
                                        "suite 0x01, RSA keys, pooled RSA S"};
    char name[160];

    memset(cfg, 0, sizeof(cfg));
    for (int i = 0; i < 3; i++) {
        t[i] = calloc((size_t)samples, sizeof(double));
        cfg[i].key_a = i == 0 ? ea : ra;
        cfg[i].key_b = i == 0 ? eb : rb;
        cfg[i].sk_propq = "provider=default";
        cfg[i].suite = i == 0 ? P11C_SUITE_2 : P11C_SUITE_1;
    }
    cfg[2].sk_fn = p11c_keypool_take;
    cfg[2].sk_arg = pool;
    if (pool == NULL || t[0] == NULL || t[1] == NULL || t[2] == NULL)
        goto fail;
    for (int i = 0; i < 3; i++)
        if (one_handshake(&cfg[i]) < 0)
            goto fail;
    for (n = 0; n < samples; n++) {
        struct timespec ms = {0, 1000000};
        double t0 = bench_now();
        /* The pooled case finds its key ready, as between rare handshakes. */
        while (p11c_keypool_ready(pool) < 4 && bench_now() - t0 < 60)
            nanosleep(&ms, NULL);
        for (int i = 0; i < 3; i++)
            if ((t[i][n] = one_handshake(&cfg[i]) * 1e3) <= 0)
                goto fail;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s (%s keys)", what[i], keys);
        bench_row("handshake2", name, bench_median(t[i], (size_t)n), "ms",
                  bench_percentile(t[i], (size_t)n, 0.9),
                  i == 0 ? -1 : bench_median(t[0], (size_t)n) / bench_median(t[i], (size_t)n),
                  i == 0 ? NULL : "suite 0x02 / this");
    }
    goto end;
fail:
    fprintf(stderr, "bench: suite 0x02 against suite 0x01 (%s keys) failed\n", keys);
    bench_ossl_err("handshake2");
end:
    p11c_keypool_free(pool);
    for (int i = 0; i < 3; i++)
        free(t[i]);
}

void bench_handshake2(void)
{
    EVP_PKEY *ea = NULL, *eb = NULL, *ra = NULL, *rb = NULL;
    const char *keys = "software";
    char uri[256];
    int token_s = 0;

    if (bench.have_provider) {
        ea = token_ec_key("alice_ec", "11");
        eb = token_ec_key("bob_ec", "12");
        snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=alice;type=private", BENCH_TOKEN);
        ra = bench_store_load(bench.libctx, uri, 1);
        snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=bob;type=private", BENCH_TOKEN);
        rb = bench_store_load(bench.libctx, uri, 1);
        if (ea != NULL && eb != NULL && ra != NULL && rb != NULL && signs(ea) && signs(eb)) {
            EVP_PKEY *s = NULL;
            keys = "token";
            token_s = p11c_ec_session_key_make(bench.libctx, "provider=p11chat", &s) == P11C_OK;
            EVP_PKEY_free(s);
        } else {
            bench_note("suite 0x02: the provider does not sign with EC keys in the token here; "
                       "its figures are for software keys");
        }
        ERR_clear_error();
    }
    if (strcmp(keys, "software") == 0) {
        EVP_PKEY_free(ea);
        EVP_PKEY_free(eb);
        EVP_PKEY_free(ra);
        EVP_PKEY_free(rb);
        ea = EVP_PKEY_Q_keygen(bench.libctx, "provider=default", "EC", "P-256");
        eb = EVP_PKEY_Q_keygen(bench.libctx, "provider=default", "EC", "P-256");
        ra = EVP_PKEY_Q_keygen(bench.libctx, "provider=default", "RSA", (size_t)2048);
        rb = EVP_PKEY_Q_keygen(bench.libctx, "provider=default", "RSA", (size_t)2048);
    }
    if (ea == NULL || eb == NULL || ra == NULL || rb == NULL) {
        fprintf(stderr, "bench: suite 0x02: no keys\n");
        goto end;
    }
    against_primitives(ea, eb, keys, "provider=default", "on demand, software");
    if (token_s)
        against_primitives(ea, eb, keys, "provider=p11chat", "on demand, token");
    against_suite1(ea, eb, ra, rb, keys);
end:
    EVP_PKEY_free(ea);
    EVP_PKEY_free(eb);
    EVP_PKEY_free(ra);
    EVP_PKEY_free(rb);
}
