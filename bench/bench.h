/*
 * p11chat-bench: shared pieces (timing, interleaved rounds, the result
 * table, the token and the OpenSSL contexts every section uses).
 *
 * Every comparison is measured in one run, reference and subject in
 * alternating rounds (A B, B A, ...), so that a ratio holds on a noisy shared
 * machine: both sides see the same conditions.
 */
#ifndef P11C_BENCH_H
#define P11C_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11chat.h"

#define BENCH_TOKEN "p11chat-bench"

/* ---- Time ------------------------------------------------------------------ */

double bench_now(void);        /* seconds, CLOCK_MONOTONIC */
double bench_clock_cost(void); /* seconds one bench_now() takes */

/* ---- Options and shared state --------------------------------------------- */

typedef struct bench_env {
    int quick;               /* --quick: a short smoke run */
    double round_s;          /* target duration of one round of one contender */
    double clock_s;          /* what one clock reading costs (subtracted from each operation) */
    int rounds;              /* rounds per comparison */
    int keep;                /* --keep: leave the token directory */
    const char *only;        /* run only the sections whose name contains this */
    char dir[4096];          /* the bench's own token directory */
    char conf[4200];         /* OpenSSL configuration loading the provider */
    char conf_count[4200];   /* the same with the counting PKCS#11 module */
    const char *module;      /* SoftHSM2 module */
    const char *provider_so; /* p11chat.so, or NULL when not built */
    const char *apps_dir;    /* directory of the p11chat command */
    const char *fault_so;    /* counting PKCS#11 module, or NULL */
    OSSL_LIB_CTX *libctx;    /* default + p11chat providers (p11chat when available) */
    int have_provider;
    EVP_PKEY *sw_key;  /* RSA-2048, default provider; also imported into the token */
    char machine[512]; /* nproc, CPU, OpenSSL and SoftHSM versions */
} BENCH_ENV;

extern BENCH_ENV bench;

int bench_section_wanted(const char *name);

/* ---- Interleaved rounds ----------------------------------------------------- */

/* One operation; returns 1 on success. */
typedef int (*bench_op_fn)(void *arg);

typedef struct bench_contender {
    const char *name;
    bench_op_fn op;
    void *arg;
    /* Optional, untimed, before each round: make ready n operations. */
    int (*prepare)(void *arg, size_t n);
    int threads;      /* 0 or 1: the calling thread; n: n threads running op at once */
    size_t per_round; /* operations per round per thread (calibrated when 0) */
    double *rate;     /* rounds entries: operations per second in each round */
    double *cpu_rate; /* one thread only: operations per second of its CPU time */
    size_t batch;     /* operations timed together (calibrated when 0): about 100 us */
    double *op_t;     /* per-operation time of every batch, all rounds and threads */
    size_t n_op;
    int failed;
} BENCH_CONTENDER;

/*
 * Runs `rounds` rounds; in each, every contender in turn runs its operation
 * per_round times (per thread). Returns 1 when every contender succeeded.
 */
int bench_interleave(BENCH_CONTENDER *c, size_t n, int rounds);
void bench_contender_free(BENCH_CONTENDER *c, size_t n);

double bench_median(const double *v, size_t n);
double bench_percentile(const double *v, size_t n, double p);
/* A contender's rate: threads / its median operation time (see util.c). */
double bench_rate(const BENCH_CONTENDER *c, int rounds);
/* bench_rate(a) / bench_rate(b): both from the same interleaved rounds. */
double bench_ratio(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b, int rounds);
/* The same in CPU time (one-thread contenders only). */
double bench_cpu_ratio_best(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b1,
                            const BENCH_CONTENDER *b2, int rounds);
/* bench_rate(a) / max(bench_rate(b1), bench_rate(b2)). */
double bench_ratio_best(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b1,
                        const BENCH_CONTENDER *b2, int rounds);

/* ---- Results ---------------------------------------------------------------- */

/* A row of the table. p90 < 0: none. ratio < 0: none (then vs is ignored). */
void bench_row(const char *section, const char *name, double value, const char *unit, double p90,
               double ratio, const char *vs);
/* A target: met when value >= target ("ge") or value < target ("lt"). */
void bench_target(const char *name, double value, const char *unit, const char *cmp, double target);
/* A note printed under the table (and kept in the JSON). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void bench_print(void);
int bench_write_json(const char *path);
/* 1 when every target recorded so far is met. */
int bench_targets_met(void);

/* ---- Helpers ---------------------------------------------------------------- */

/* Loads a key from a pkcs11: URI (or any URI) through OSSL_STORE in bench.libctx. */
EVP_PKEY *bench_store_load(OSSL_LIB_CTX *libctx, const char *uri, int want_private);
/* Prints OpenSSL's error queue with a prefix to stderr and clears it. */
void bench_ossl_err(const char *what);

/* ---- Handshakes ------------------------------------------------------------- */

typedef struct bench_pair_cfg {
    EVP_PKEY *key_a, *key_b;   /* long-term keys of Alice and Bob */
    const char *sk_propq;      /* where S is made on demand ("provider=default", ...) */
    p11c_session_key_fn sk_fn; /* or a pool */
    void *sk_arg;
    int suite; /* Alice's suite (0: by her key) */
} BENCH_PAIR_CFG;

/*
 * Runs one full handshake in memory. With a and b NULL the sessions are
 * freed; otherwise the established sessions are returned. Returns 1 on
 * success.
 */
int bench_pair(const BENCH_PAIR_CFG *cfg, P11C_SESSION **a, P11C_SESSION **b);

/* ---- Sections --------------------------------------------------------------- */

/* engine.c: the libp11 ENGINE, in the default library context. */
void *bench_engine_key(const char *uri); /* NULL when the engine cannot be used (says why) */
int bench_engine_sign(void *key, const uint8_t *msg, size_t len);
void bench_engine_free(void);

void bench_records(void);
void bench_rsa(void);
void bench_ec(void);
void bench_handshake(void);
void bench_handshake2(void); /* handshake2.c: suite 0x02 */
void bench_tcp(void);
void bench_tokens(void); /* tokens.c: per-use PIN, remote token */

#endif
