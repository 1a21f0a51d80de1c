/*
 * The TLS pre-master check (provider/src/tls_padding.c) takes the same time
 * whatever the decrypted block holds: a good secret, a wrong first or second
 * byte, no separator, a separator in the wrong place, a wrong version. Each
 * kind is timed in interleaved batches (thread CPU time, so that a busy
 * machine's preemption does not count) and the medians compared. A check
 * written with early exits, timed the same way, must show a difference, or
 * the measurement could not see one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "testutil.h"
#include "tls_padding.h"

#define K       256 /* RSA-2048 */
#define KINDS   6
#define BATCH   64
#define SAMPLES 1500
#define SPREAD  0.05 /* largest relative difference of medians allowed */

static const char *kind_names[KINDS] = {
    "valid",        "first byte not zero", "second byte not 2",
    "no separator", "separator too early", "wrong version",
};

static uint8_t blocks[KINDS][K];

static int make_blocks(void)
{
    uint8_t *v = blocks[0];

    if (RAND_bytes(v, K) != 1)
        return 1;
    v[0] = 0;
    v[1] = 2;
    for (size_t i = 2; i < K - P11C_TLS_PREMASTER_LEN - 1; i++)
        v[i] = (uint8_t)(v[i] | 1); /* nonzero padding */
    v[K - P11C_TLS_PREMASTER_LEN - 1] = 0;
    v[K - P11C_TLS_PREMASTER_LEN] = 3;
    v[K - P11C_TLS_PREMASTER_LEN + 1] = 3;
    for (int k = 1; k < KINDS; k++)
        memcpy(blocks[k], v, K);
    blocks[1][0] = 1;
    blocks[2][1] = 1;
    blocks[3][K - P11C_TLS_PREMASTER_LEN - 1] = 0x42;
    blocks[4][20] = 0;
    blocks[5][K - P11C_TLS_PREMASTER_LEN + 1] = 2;
    return 0;
}

/* The same contract written the obvious way, with early exits. */
static int leaky_select(uint8_t out[P11C_TLS_PREMASTER_LEN], const uint8_t *em, size_t k,
                        unsigned int client_version, unsigned int alt_version,
                        const uint8_t rnd[P11C_TLS_PREMASTER_LEN])
{
    size_t i;

    (void)alt_version;
    memcpy(out, rnd, P11C_TLS_PREMASTER_LEN);
    if (em[0] != 0 || em[1] != 2)
        return 1;
    for (i = 2; i < k && em[i] != 0; i++)
        ;
    if (i != k - P11C_TLS_PREMASTER_LEN - 1)
        return 1;
    if (em[i + 1] != (client_version >> 8) || em[i + 2] != (client_version & 0xff))
        return 1;
    memcpy(out, em + i + 1, P11C_TLS_PREMASTER_LEN);
    return 1;
}

typedef int (*select_fn)(uint8_t *, const uint8_t *, size_t, unsigned int, unsigned int,
                         const uint8_t *);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile uint8_t sink;

/* Median batch time of each kind, the kinds interleaved in a random order. */
static void measure(select_fn fn, double median[KINDS])
{
    static double t[KINDS][SAMPLES];
    uint8_t out[P11C_TLS_PREMASTER_LEN], rnd[P11C_TLS_PREMASTER_LEN] = {0}, order[KINDS];

    for (int s = 0; s < SAMPLES; s++) {
        CU_ASSERT_EQUAL_FATAL(RAND_bytes(order, sizeof(order)), 1);
        for (int j = 0; j < KINDS; j++) {
            int k = (j + order[0]) % KINDS;
            double t0 = now_ns();
            for (int b = 0; b < BATCH; b++)
                fn(out, blocks[k], K, 0x0303, 0, rnd);
            t[k][s] = now_ns() - t0;
            sink ^= out[0];
        }
    }
    for (int k = 0; k < KINDS; k++) {
        qsort(t[k], SAMPLES, sizeof(double), cmp_double);
        median[k] = t[k][SAMPLES / 2];
    }
}

/* Largest relative difference of any kind's median from the valid one's. */
static double spread(const double median[KINDS], const char *who)
{
    double worst = 0;

    for (int k = 0; k < KINDS; k++) {
        double d = median[k] / median[0] - 1.0;
        if (d < 0)
            d = -d;
        if (d > worst)
            worst = d;
        printf("  %s %-20s %8.0f ns per %d\n", who, kind_names[k], median[k], BATCH);
    }
    return worst;
}

static void test_results(void)
{
    uint8_t out[P11C_TLS_PREMASTER_LEN], rnd[P11C_TLS_PREMASTER_LEN];

    memset(rnd, 0xEE, sizeof(rnd));
    CU_ASSERT_EQUAL(p11c_tls_premaster_select(out, blocks[0], K, 0x0303, 0, rnd), 1);
    CU_ASSERT_EQUAL(memcmp(out, blocks[0] + K - P11C_TLS_PREMASTER_LEN, sizeof(out)), 0);
    for (int k = 1; k < KINDS; k++) {
        CU_ASSERT_EQUAL(p11c_tls_premaster_select(out, blocks[k], K, 0x0303, 0, rnd), 1);
        CU_ASSERT_EQUAL(memcmp(out, rnd, sizeof(out)), 0);
    }
    /* the wrong version is accepted as the alternative one */
    CU_ASSERT_EQUAL(p11c_tls_premaster_select(out, blocks[5], K, 0x0303, 0x0302, rnd), 1);
    CU_ASSERT_EQUAL(memcmp(out, blocks[5] + K - P11C_TLS_PREMASTER_LEN, sizeof(out)), 0);
    /* a key too small to hold padding and secret */
    CU_ASSERT_EQUAL(p11c_tls_premaster_select(out, blocks[0], 58, 0x0303, 0, rnd), 0);
}

static void test_timing(void)
{
    double ct[KINDS], leaky[KINDS], s_ct = 1, s_leaky;

    /* three tries: a busy machine may disturb one measurement */
    for (int attempt = 0; attempt < 3 && s_ct > SPREAD; attempt++) {
        measure(p11c_tls_premaster_select, ct);
        s_ct = spread(ct, "constant-time");
        printf("  constant-time: largest difference %.1f%%\n", s_ct * 100);
    }
    measure(leaky_select, leaky);
    s_leaky = spread(leaky, "early-exit");
    printf("  early-exit: largest difference %.1f%%\n", s_leaky * 100);
    CU_ASSERT_TRUE(s_ct <= SPREAD);
    /* the measurement sees what an early exit does */
    CU_ASSERT_TRUE(s_leaky > 4 * SPREAD);
}

int main(void)
{
    CU_pSuite s;

    CU_initialize_registry();
    s = CU_add_suite("tls_timing", make_blocks, NULL);
    CU_add_test(s, "results of each kind of block", test_results);
    CU_add_test(s, "the same time for each kind of block", test_timing);
    return tu_main();
}
