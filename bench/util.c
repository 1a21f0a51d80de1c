/* Timing, interleaved rounds, statistics and the result table. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/store.h>

#include "bench.h"

/* What one bench_now() costs: the median gap between two consecutive readings. */
double bench_clock_cost(void)
{
    double t[1001], d[1000];

    for (int i = 0; i < 1001; i++)
        t[i] = bench_now();
    for (int i = 0; i < 1000; i++)
        d[i] = t[i + 1] - t[i];
    return bench_median(d, 1000);
}

double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Rounds ----------------------------------------------------------------- */

typedef struct worker {
    BENCH_CONTENDER *c;
    pthread_barrier_t *start;
    size_t n;
    int ok;
    double *dur; /* n durations, one per operation */
} WORKER;

static void *worker_run(void *arg)
{
    WORKER *w = arg;

    size_t b = w->c->batch;
    double t, prev;

    pthread_barrier_wait(w->start);
    w->ok = 1;
    prev = bench_now();
    for (size_t i = 0; i < w->n / b; i++) {
        for (size_t j = 0; j < b; j++)
            if (!w->c->op(w->c->arg)) {
                w->ok = 0;
                return NULL;
            }
        t = bench_now();
        w->dur[i] = (t - prev) / (double)b;
        prev = t;
    }
    return NULL;
}

static double thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * One round of c with n operations per thread, each operation timed on its
 * own into c->op_t. Returns the round's seconds, < 0 on failure.
 */
static double run_round(BENCH_CONTENDER *c, size_t n, double *cpu)
{
    int threads = c->threads > 1 ? c->threads : 1;
    double t0, t1, c0, t, prev;

    *cpu = 0;
    if (threads == 1) {
        c0 = thread_cpu();
        t0 = prev = bench_now();
        for (size_t i = 0; i < n / c->batch; i++) {
            for (size_t j = 0; j < c->batch; j++)
                if (!c->op(c->arg))
                    return -1;
            t = bench_now();
            c->op_t[c->n_op++] = (t - prev) / (double)c->batch;
            prev = t;
        }
        t1 = prev;
        *cpu = thread_cpu() - c0;
        return t1 - t0;
    }

    pthread_t tid[16];
    WORKER w[16];
    pthread_barrier_t start;
    int started = 0, ok = 1;

    if (threads > 16)
        threads = 16;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i] = (WORKER){c, &start, n, 0, c->op_t + c->n_op + (size_t)i * (n / c->batch)};
        if (pthread_create(&tid[i], NULL, worker_run, &w[i]) != 0)
            break;
        started++;
    }
    if (started < threads) {
        /* Cannot happen in practice; release the ones waiting and give up. */
        fprintf(stderr, "bench: cannot start %d threads\n", threads);
        abort();
    }
    pthread_barrier_wait(&start);
    t1 = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        ok &= w[i].ok;
    }
    pthread_barrier_destroy(&start);
    if (!ok)
        return -1;
    /* The round as the workers saw it: the longest one's operations. */
    for (int i = 0; i < threads; i++) {
        double sum = 0;
        for (size_t j = 0; j < n / c->batch; j++)
            sum += w[i].dur[j] * (double)c->batch;
        t1 = fmax(t1, sum);
    }
    c->n_op += (size_t)threads * (n / c->batch);
    return t1;
}

static int calibrate(BENCH_CONTENDER *c)
{
    double t0 = bench_now(), el;
    size_t k = 0;

    /* Warm up and estimate: at least 3 operations and a quarter of a round. */
    do {
        if (!c->op(c->arg))
            return 0;
        k++;
        el = bench_now() - t0;
    } while (k < 3 || el < bench.round_s / 4);
    c->per_round = (size_t)((double)k * bench.round_s / el);
    if (c->per_round < 1)
        c->per_round = 1;
    if (c->batch == 0)
        c->batch = (size_t)ceil(100e-6 * (double)k / el);
    return 1;
}

int bench_interleave(BENCH_CONTENDER *c, size_t n, int rounds)
{
    int ok = 1;

    for (size_t i = 0; i < n; i++) {
        c[i].rate = calloc((size_t)rounds, sizeof(double));
        c[i].cpu_rate = calloc((size_t)rounds, sizeof(double));
        if (c[i].cpu_rate == NULL) {
            free(c[i].rate);
            c[i].rate = NULL;
        }
        /* A contender with a prepare step must say how many operations a round has. */
        c[i].failed = c[i].rate == NULL || (c[i].per_round == 0 && c[i].prepare != NULL) ||
                      (c[i].per_round == 0 && !calibrate(&c[i]));
        if (!c[i].failed) {
            size_t th = c[i].threads > 1 ? (size_t)c[i].threads : 1;
            if (c[i].batch == 0)
                c[i].batch = 1;
            if (c[i].batch > c[i].per_round)
                c[i].batch = c[i].per_round;
            /* Whole batches only. */
            c[i].per_round -= c[i].per_round % c[i].batch;
            c[i].n_op = 0;
            c[i].op_t = calloc(c[i].per_round / c[i].batch * th * (size_t)rounds, sizeof(double));
            c[i].failed = c[i].op_t == NULL;
        }
        if (c[i].failed) {
            fprintf(stderr, "bench: %s failed\n", c[i].name);
            bench_ossl_err(c[i].name);
            ok = 0;
        }
    }
    for (int r = 0; r < rounds && ok; r++) {
        /* Alternate the order too (A B, B A): neither side always follows the other. */
        for (size_t j = 0; j < n; j++) {
            size_t i = (r & 1) ? n - 1 - j : j;
            double s, cpu = 0;
            if (c[i].prepare != NULL && !c[i].prepare(c[i].arg, c[i].per_round)) {
                s = -1;
            } else {
                s = run_round(&c[i], c[i].per_round, &cpu);
            }
            int threads = c[i].threads > 1 ? c[i].threads : 1;
            if (s <= 0) {
                fprintf(stderr, "bench: %s failed in round %d\n", c[i].name, r);
                bench_ossl_err(c[i].name);
                c[i].failed = 1;
                ok = 0;
                break;
            }
            c[i].rate[r] = (double)(c[i].per_round * (size_t)threads) / s;
            c[i].cpu_rate[r] = cpu > 0 ? (double)c[i].per_round / cpu : NAN;
            if (getenv("BENCH_DEBUG") != NULL)
                fprintf(stderr, "debug: round %d %s: %zu ops, %.6f s, %.1f/s\n", r, c[i].name,
                        c[i].per_round, s, c[i].rate[r]);
        }
    }
    return ok;
}

void bench_contender_free(BENCH_CONTENDER *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].rate);
        free(c[i].cpu_rate);
        free(c[i].op_t);
        c[i].rate = c[i].cpu_rate = c[i].op_t = NULL;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double bench_percentile(const double *v, size_t n, double p)
{
    double *s, pos, r;
    size_t lo;

    if (n == 0)
        return NAN;
    s = malloc(n * sizeof(*s));
    if (s == NULL)
        return NAN;
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), cmp_double);
    pos = p * (double)(n - 1);
    lo = (size_t)pos;
    r = lo + 1 < n ? s[lo] + (pos - (double)lo) * (s[lo + 1] - s[lo]) : s[lo];
    free(s);
    return r;
}

double bench_median(const double *v, size_t n)
{
    return bench_percentile(v, n, 0.5);
}

/*
 * On a machine shared with other work, an operation either runs undisturbed
 * or is preempted and takes many times longer; per-round rates are then
 * bimodal and depend on how long a round is. Operations are therefore timed
 * in batches of about 100 us (one operation when it is longer; long enough to
 * include amortised costs such as a DRBG refill every 32 records), and a
 * contender's rate is the inverse of its median time per operation (times
 * its threads): what it does when it has the CPU, the same for a short round
 * as for a long one, and on an idle machine close to operations / elapsed
 * time.
 */
double bench_rate(const BENCH_CONTENDER *c, int rounds)
{
    int threads = c->threads > 1 ? c->threads : 1;

    (void)rounds;
    if (c->failed || c->n_op == 0)
        return NAN;
    /* Less one clock reading, which each timed batch includes. */
    return (double)threads /
           (bench_median(c->op_t, c->n_op) - bench.clock_s / (double)(c->batch ? c->batch : 1));
}

#define RATE_PCT 0.5

static double cpu_rate(const BENCH_CONTENDER *c, int rounds)
{
    return c->failed ? NAN : bench_percentile(c->cpu_rate, (size_t)rounds, RATE_PCT);
}

double bench_ratio(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b, int rounds)
{
    return bench_rate(a, rounds) / bench_rate(b, rounds);
}

double bench_ratio_best(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b1,
                        const BENCH_CONTENDER *b2, int rounds)
{
    return bench_rate(a, rounds) / fmax(bench_rate(b1, rounds), bench_rate(b2, rounds));
}

double bench_cpu_ratio_best(const BENCH_CONTENDER *a, const BENCH_CONTENDER *b1,
                            const BENCH_CONTENDER *b2, int rounds)
{
    return cpu_rate(a, rounds) / fmax(cpu_rate(b1, rounds), cpu_rate(b2, rounds));
}

/* ---- Results ---------------------------------------------------------------- */

typedef struct row {
    char section[32];
    char name[96];
    double value;
    char unit[16];
    double p90;
    double ratio;
    char vs[64];
} ROW;

typedef struct target {
    char name[96];
    double value;
    char unit[16];
    char cmp[3];
    double target;
    int met;
} TARGET;

static ROW rows[256];
static size_t nrows;
static TARGET targets[32];
static size_t ntargets;
static char notes[32][512];
static size_t nnotes;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src == NULL ? "" : src);
}

void bench_row(const char *section, const char *name, double value, const char *unit, double p90,
               double ratio, const char *vs)
{
    ROW *r;

    if (nrows == sizeof(rows) / sizeof(rows[0]))
        return;
    r = &rows[nrows++];
    copy(r->section, sizeof(r->section), section);
    copy(r->name, sizeof(r->name), name);
    copy(r->unit, sizeof(r->unit), unit);
    copy(r->vs, sizeof(r->vs), vs);
    r->value = value;
    r->p90 = p90;
    r->ratio = ratio;
}

void bench_target(const char *name, double value, const char *unit, const char *cmp, double target)
{
    TARGET *t;

    if (ntargets == sizeof(targets) / sizeof(targets[0]))
        return;
    t = &targets[ntargets++];
    copy(t->name, sizeof(t->name), name);
    copy(t->unit, sizeof(t->unit), unit);
    copy(t->cmp, sizeof(t->cmp), cmp);
    t->value = value;
    t->target = target;
    t->met = !isnan(value) && (strcmp(cmp, "lt") == 0 ? value < target : value >= target);
}

void bench_note(const char *fmt, ...)
{
    va_list ap;

    if (nnotes == sizeof(notes) / sizeof(notes[0]))
        return;
    va_start(ap, fmt);
    vsnprintf(notes[nnotes++], sizeof(notes[0]), fmt, ap);
    va_end(ap);
}

int bench_targets_met(void)
{
    for (size_t i = 0; i < ntargets; i++)
        if (!targets[i].met)
            return 0;
    return 1;
}

/* Values from 0.001 to 10^9 in a readable number of digits. */
static void fmt_value(char *buf, size_t cap, double v)
{
    double a = fabs(v);

    if (isnan(v))
        snprintf(buf, cap, "n/a");
    else if (a >= 1000)
        snprintf(buf, cap, "%.0f", v);
    else if (a >= 100)
        snprintf(buf, cap, "%.1f", v);
    else if (a >= 1)
        snprintf(buf, cap, "%.2f", v);
    else
        snprintf(buf, cap, "%.3f", v);
}

void bench_print(void)
{
    const char *sec = "";
    char v[32], p[32], q[32];

    for (size_t i = 0; i < nrows; i++) {
        ROW *r = &rows[i];
        if (strcmp(sec, r->section) != 0) {
            sec = r->section;
            printf("\n== %s\n", sec);
            printf("%-52s %12s %-9s %10s %8s  %s\n", "", "value", "unit", "p90", "ratio", "vs");
        }
        fmt_value(v, sizeof(v), r->value);
        if (r->unit[0] == '\0')
            v[0] = '\0'; /* a ratio-only row */
        if (r->p90 >= 0)
            fmt_value(p, sizeof(p), r->p90);
        else
            p[0] = '\0';
        if (r->ratio >= 0 || isnan(r->ratio))
            snprintf(q, sizeof(q), "%.3f", r->ratio);
        else
            q[0] = '\0';
        printf("%-52s %12s %-9s %10s %8s  %s\n", r->name, v, r->unit, p, q,
               r->ratio >= 0 || isnan(r->ratio) ? r->vs : "");
    }
    printf("\n== targets\n");
    for (size_t i = 0; i < ntargets; i++) {
        TARGET *t = &targets[i];
        fmt_value(v, sizeof(v), t->value);
        fmt_value(p, sizeof(p), t->target);
        printf("%-52s %12s %-9s %2s %-8s %s\n", t->name, v, t->unit,
               strcmp(t->cmp, "lt") == 0 ? "<" : ">=", p, t->met ? "met" : "MISSED");
    }
    if (nnotes > 0)
        printf("\n");
    for (size_t i = 0; i < nnotes; i++)
        printf("note: %s\n", notes[i]);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.6g", v);
}

int bench_write_json(const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        return 0;
    }
    fputs("{\n  \"machine\": ", f);
    json_str(f, bench.machine);
    fprintf(f, ",\n  \"quick\": %s,\n  \"rows\": [\n", bench.quick ? "true" : "false");
    for (size_t i = 0; i < nrows; i++) {
        ROW *r = &rows[i];
        fputs("    {\"section\": ", f);
        json_str(f, r->section);
        fputs(", \"name\": ", f);
        json_str(f, r->name);
        fputs(", \"value\": ", f);
        json_num(f, r->value);
        fputs(", \"unit\": ", f);
        json_str(f, r->unit);
        if (r->p90 >= 0) {
            fputs(", \"p90\": ", f);
            json_num(f, r->p90);
        }
        if (r->ratio >= 0 || isnan(r->ratio)) {
            fputs(", \"ratio\": ", f);
            json_num(f, r->ratio);
            fputs(", \"vs\": ", f);
            json_str(f, r->vs);
        }
        fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
    }
    fputs("  ],\n  \"targets\": [\n", f);
    for (size_t i = 0; i < ntargets; i++) {
        TARGET *t = &targets[i];
        int lt = strcmp(t->cmp, "lt") == 0;

        fputs("    {\"name\": ", f);
        json_str(f, t->name);
        /* ratio: the measured ratio; for a bound in units (the key load, in
         * ms) the measured value over the bound, which must stay below 1. */
        int units = strcmp(t->unit, "ratio") != 0;
        fputs(", \"ratio\": ", f);
        json_num(f, units ? t->value / t->target : t->value);
        fputs(", \"target\": ", f);
        json_num(f, units ? 1.0 : t->target);
        fputs(", \"value\": ", f);
        json_num(f, t->value);
        fputs(", \"unit\": ", f);
        json_str(f, t->unit);
        fputs(", \"bound\": ", f);
        json_num(f, t->target);
        fprintf(f, ", \"comparison\": \"%s\", \"met\": %s}%s\n",
                lt ? "<" : ">=", t->met ? "true" : "false", i + 1 < ntargets ? "," : "");
    }
    fputs("  ],\n  \"notes\": [\n", f);
    for (size_t i = 0; i < nnotes; i++) {
        fputs("    ", f);
        json_str(f, notes[i]);
        fprintf(f, "%s\n", i + 1 < nnotes ? "," : "");
    }
    fputs("  ]\n}\n", f);
    return fclose(f) == 0;
}

/* ---- Helpers ---------------------------------------------------------------- */

void bench_ossl_err(const char *what)
{
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "bench: %s: %s\n", what, buf);
    }
}

EVP_PKEY *bench_store_load(OSSL_LIB_CTX *libctx, const char *uri, int want_private)
{
    OSSL_STORE_CTX *sc = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *key = NULL;

    if (sc == NULL)
        return NULL;
    OSSL_STORE_expect(sc, want_private ? OSSL_STORE_INFO_PKEY : OSSL_STORE_INFO_PUBKEY);
    while (key == NULL && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            key = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(sc);
    return key;
}
