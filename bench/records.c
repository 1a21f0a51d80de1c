/*
 * Item 4: records. Sealing and opening through libp11chat sessions
 * (p11c_session_send_data / p11c_session_recv, what an application gets)
 * against the bare primitives over the same bytes: AES-256-CFB plus
 * HMAC-SHA256 through EVP on contexts keyed once. Also the two ways of CFB
 * decryption alone: EVP's CFB and AES-ECB over IV || C then XOR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "bench.h"
#include "p11c_internal.h"

#define HDR  24
#define IVL  16
#define MACL 32

/* ---- Bare primitives -------------------------------------------------------- */

typedef struct prim {
    EVP_CIPHER_CTX *enc, *dec, *ecb;
    EVP_MAC_CTX *mac;
    uint8_t *buf; /* header || IV || C || MAC for sealing */
    uint8_t *out; /* plaintext or key stream for opening */
    const uint8_t *msg;
    size_t len;
    const uint8_t *rec; /* a record to decrypt (decryption-only comparison) */
    struct batch *batch;
} PRIM;

static int prim_init(PRIM *p, size_t maxlen)
{
    uint8_t key[32], mkey[32];
    EVP_CIPHER *cfb = EVP_CIPHER_fetch(bench.libctx, "AES-256-CFB", "provider=default");
    EVP_CIPHER *ecb = EVP_CIPHER_fetch(bench.libctx, "AES-256-ECB", "provider=default");
    EVP_MAC *mac = EVP_MAC_fetch(bench.libctx, "HMAC", "provider=default");
    OSSL_PARAM params[2];
    int ok = 0;

    memset(p, 0, sizeof(*p));
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    RAND_bytes(key, sizeof(key));
    RAND_bytes(mkey, sizeof(mkey));
    p->enc = EVP_CIPHER_CTX_new();
    p->dec = EVP_CIPHER_CTX_new();
    p->ecb = EVP_CIPHER_CTX_new();
    p->mac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    p->buf = malloc(HDR + IVL + maxlen + MACL);
    p->out = malloc(maxlen + 16);
    if (cfb == NULL || ecb == NULL || p->enc == NULL || p->dec == NULL || p->ecb == NULL ||
        p->mac == NULL || p->buf == NULL || p->out == NULL)
        goto end;
    if (!EVP_EncryptInit_ex2(p->enc, cfb, key, NULL, NULL) ||
        !EVP_DecryptInit_ex2(p->dec, cfb, key, NULL, NULL) ||
        !EVP_EncryptInit_ex2(p->ecb, ecb, key, NULL, NULL) ||
        !EVP_CIPHER_CTX_set_padding(p->ecb, 0) || !EVP_MAC_init(p->mac, mkey, 32, params))
        goto end;
    memset(p->buf, 0, HDR + IVL);
    RAND_bytes(p->buf + HDR, IVL);
    ok = 1;
end:
    EVP_CIPHER_free(cfb);
    EVP_CIPHER_free(ecb);
    EVP_MAC_free(mac);
    return ok;
}

static void prim_cleanup(PRIM *p)
{
    EVP_CIPHER_CTX_free(p->enc);
    EVP_CIPHER_CTX_free(p->dec);
    EVP_CIPHER_CTX_free(p->ecb);
    EVP_MAC_CTX_free(p->mac);
    free(p->buf);
    free(p->out);
}

/* AES-256-CFB(M) into the record buffer, then HMAC over header || IV || C. */
static int op_prim_seal(void *arg)
{
    PRIM *p = arg;
    size_t maclen = 0;
    int n = 0;

    return EVP_EncryptInit_ex2(p->enc, NULL, NULL, p->buf + HDR, NULL) &&
           EVP_EncryptUpdate(p->enc, p->buf + HDR + IVL, &n, p->msg, (int)p->len) &&
           EVP_MAC_init(p->mac, NULL, 0, NULL) &&
           EVP_MAC_update(p->mac, p->buf, HDR + IVL + p->len) &&
           EVP_MAC_final(p->mac, p->buf + HDR + IVL + p->len, &maclen, MACL);
}

/* ---- Batches of records sealed by a session, for opening ----------------------- */

typedef struct batch {
    P11C_SESSION *tx; /* the sender */
    uint8_t **rec;
    size_t *len;
    size_t n, next, cap;
    const uint8_t *msg;
    size_t msglen;
} BATCH;

static void batch_clear(BATCH *b)
{
    for (size_t i = 0; i < b->n; i++)
        OPENSSL_free(b->rec[i]);
    b->n = b->next = 0;
}

static int batch_fill(void *arg, size_t n)
{
    BATCH *b = arg;

    batch_clear(b);
    if (n > b->cap) {
        uint8_t **r = realloc(b->rec, n * sizeof(*r));
        size_t *l = r != NULL ? realloc(b->len, n * sizeof(*l)) : NULL;
        if (r != NULL)
            b->rec = r;
        if (l == NULL)
            return 0;
        b->len = l;
        b->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (p11c_session_send_data(b->tx, b->msg, b->msglen) != P11C_OK ||
            !p11c_session_pop_output(b->tx, &b->rec[i], &b->len[i]))
            return 0;
        b->n++;
    }
    return 1;
}

typedef struct open_arg {
    BATCH batch;
    P11C_SESSION *rx; /* NULL: bare primitives */
    PRIM *prim;
} OPEN_ARG;

static int open_prepare(void *arg, size_t n)
{
    return batch_fill(&((OPEN_ARG *)arg)->batch, n);
}

/* The session: parse, direction, MAC, sequence, decrypt, one DATA event. */
static int op_session_open(void *arg)
{
    OPEN_ARG *o = arg;
    BATCH *b = &o->batch;
    P11C_EVENT ev;
    int ok;

    if (b->next >= b->n)
        return 0;
    if (p11c_session_recv(o->rx, b->rec[b->next], b->len[b->next]) != P11C_OK)
        return 0;
    b->next++;
    ok = p11c_session_next_event(o->rx, &ev) && ev.type == P11C_EV_DATA && ev.len == b->msglen;
    p11c_event_clear(&ev);
    return ok;
}

/* The same bytes through the primitives alone: HMAC and compare, EVP CFB decryption. */
static int op_prim_open(void *arg)
{
    OPEN_ARG *o = arg;
    BATCH *b = &o->batch;
    PRIM *p = o->prim;
    const uint8_t *rec;
    uint8_t mac[MACL];
    size_t len, maclen = 0;
    int n = 0;

    if (b->next >= b->n)
        return 0;
    rec = b->rec[b->next];
    len = b->len[b->next++] - HDR - IVL - MACL;
    /* Keyed differently from the session: the comparison fails, at the same cost. */
    if (!EVP_MAC_init(p->mac, NULL, 0, NULL) || !EVP_MAC_update(p->mac, rec, HDR + IVL + len) ||
        !EVP_MAC_final(p->mac, mac, &maclen, MACL))
        return 0;
    (void)CRYPTO_memcmp(mac, rec + HDR + IVL + len, MACL);
    return EVP_DecryptInit_ex2(p->dec, NULL, NULL, rec + HDR, NULL) &&
           EVP_DecryptUpdate(p->dec, p->out, &n, rec + HDR + IVL, (int)len);
}

/* ---- Sealing through the session ------------------------------------------------ */

typedef struct seal_arg {
    P11C_SESSION *tx;
    const uint8_t *msg;
    size_t len;
} SEAL_ARG;

static int op_session_seal(void *arg)
{
    SEAL_ARG *s = arg;
    uint8_t *out = NULL;
    size_t outlen = 0;

    if (p11c_session_send_data(s->tx, s->msg, s->len) != P11C_OK ||
        !p11c_session_pop_output(s->tx, &out, &outlen))
        return 0;
    OPENSSL_free(out);
    return 1;
}

/* ---- Decryption alone: EVP CFB against ECB over IV || C and XOR ------------------ */

static int op_dec_cfb(void *arg)
{
    PRIM *p = arg;
    int n = 0;

    return EVP_DecryptInit_ex2(p->dec, NULL, NULL, p->rec, NULL) &&
           EVP_DecryptUpdate(p->dec, p->out, &n, p->rec + IVL, (int)p->len);
}

static int op_dec_ecb(void *arg)
{
    PRIM *p = arg;
    size_t cap = (p->len + 15) & ~(size_t)15;
    const uint8_t *c = p->rec + IVL;
    int n = 0;

    if (!EVP_EncryptUpdate(p->ecb, p->out, &n, p->rec, (int)cap))
        return 0;
    for (size_t i = 0; i < p->len; i += 8) {
        uint64_t a, k;
        memcpy(&a, p->out + i, 8);
        memcpy(&k, c + i, 8);
        a ^= k;
        memcpy(p->out + i, &a, 8);
    }
    return 1;
}

/* ---- What a record costs besides the primitives -------------------------------------- */

static int op_rand_iv(void *arg)
{
    uint8_t iv[IVL];

    (void)arg;
    return RAND_bytes_ex(bench.libctx, iv, sizeof(iv), 0) == 1;
}

static int op_getpid(void *arg)
{
    (void)arg;
    return getpid() > 0;
}

static void extras(void)
{
    int rounds = bench.rounds;
    BENCH_CONTENDER c[2] = {
        {.name = "RAND_bytes_ex, 16 bytes", .op = op_rand_iv},
        {.name = "getpid", .op = op_getpid},
    };

    if (bench_interleave(c, 2, rounds)) {
        bench_row("records", "one fresh IV: RAND_bytes_ex(16 bytes)",
                  1e6 / bench_rate(&c[0], rounds), "us", -1, -1, NULL);
        bench_row("records", "one system call: getpid()", 1e6 / bench_rate(&c[1], rounds), "us", -1,
                  -1, NULL);
    }
    bench_contender_free(c, 2);
}

/* ---- The section ---------------------------------------------------------------- */

typedef struct pairs {
    P11C_SESSION *a, *b;   /* measured pair: a seals, b opens (the library's choice) */
    P11C_SESSION *a2, *b2; /* a2 seals records for the primitives */
    P11C_SESSION *a3, *b3; /* b3 opens with EVP's CFB decryption */
} PAIRS;

static int pairs_make(PAIRS *p)
{
    BENCH_PAIR_CFG cfg;
    P11C_TEST_HOOKS hooks;

    memset(p, 0, sizeof(*p));
    memset(&cfg, 0, sizeof(cfg));
    cfg.key_a = bench.sw_key;
    cfg.key_b = bench.sw_key;
    cfg.sk_propq = "provider=default";
    if (!bench_pair(&cfg, &p->a, &p->b) || !bench_pair(&cfg, &p->a2, &p->b2) ||
        !bench_pair(&cfg, &p->a3, &p->b3))
        return 0;
    memset(&hooks, 0, sizeof(hooks));
    hooks.open_mode = P11C_OPEN_CFB;
    p11c_session_set_test_hooks(p->b3, &hooks);
    return 1;
}

static void pairs_free(PAIRS *p)
{
    p11c_session_free(p->a);
    p11c_session_free(p->b);
    p11c_session_free(p->a2);
    p11c_session_free(p->b2);
    p11c_session_free(p->a3);
    p11c_session_free(p->b3);
}

static void size_name(char *buf, size_t cap, size_t len)
{
    if (len >= 1024)
        snprintf(buf, cap, "%zu KiB", len / 1024);
    else
        snprintf(buf, cap, "%zu B", len);
}

static void one_size(size_t len, uint8_t *msg, PRIM *prim)
{
    char sz[32], name[96], vs[64];
    PAIRS pr;
    int rounds = bench.rounds;
    double mb = (double)len / 1e6;

    if (!pairs_make(&pr)) {
        fprintf(stderr, "bench: records: handshake failed\n");
        bench_ossl_err("records");
        return;
    }
    size_name(sz, sizeof(sz), len);
    prim->msg = msg;
    prim->len = len;

    /* Seal. */
    SEAL_ARG sa = {pr.a2, msg, len}; /* a2 only feeds the primitives: its numbering is free */
    BENCH_CONTENDER seal[2] = {
        {.name = "seal: primitives", .op = op_prim_seal, .arg = prim},
        {.name = "seal: session", .op = op_session_seal, .arg = &sa},
    };
    if (bench_interleave(seal, 2, rounds)) {
        snprintf(name, sizeof(name), "seal %s: AES-256-CFB + HMAC-SHA256 (EVP)", sz);
        bench_row("records", name, bench_rate(&seal[0], rounds) * mb, "MB/s", -1, -1, NULL);
        snprintf(name, sizeof(name), "seal %s: p11c_session_send_data", sz);
        bench_row("records", name, bench_rate(&seal[1], rounds) * mb, "MB/s", -1,
                  bench_ratio(&seal[1], &seal[0], rounds), "primitives");
        if (len == 64 || len == 16384) {
            snprintf(name, sizeof(name), "records: seal %s / primitives", sz);
            bench_target(name, bench_ratio(&seal[1], &seal[0], rounds), "ratio", "ge",
                         len == 64 ? 0.75 : 0.9);
        }
    }

    /* Open: every contender opens fresh records made by a sender before its round. */
    OPEN_ARG oprim = {.batch = {.tx = pr.a2, .msg = msg, .msglen = len}, .prim = prim};
    OPEN_ARG osess = {.batch = {.tx = pr.a, .msg = msg, .msglen = len}, .rx = pr.b};
    OPEN_ARG ocfb = {.batch = {.tx = pr.a3, .msg = msg, .msglen = len}, .rx = pr.b3};
    size_t per = seal[0].per_round > 0 ? seal[0].per_round : 64;
    size_t batch = len >= 8192 ? 1 : 8192 / len; /* about 100 us */
    BENCH_CONTENDER open[3] = {
        {.name = "open: primitives",
         .op = op_prim_open,
         .arg = &oprim,
         .prepare = open_prepare,
         .per_round = per,
         .batch = batch},
        {.name = "open: session",
         .op = op_session_open,
         .arg = &osess,
         .prepare = open_prepare,
         .per_round = per,
         .batch = batch},
        {.name = "open: session, EVP CFB",
         .op = op_session_open,
         .arg = &ocfb,
         .prepare = open_prepare,
         .per_round = per,
         .batch = batch},
    };
    if (bench_interleave(open, 3, rounds)) {
        snprintf(name, sizeof(name), "open %s: HMAC-SHA256 + AES-256-CFB (EVP)", sz);
        bench_row("records", name, bench_rate(&open[0], rounds) * mb, "MB/s", -1, -1, NULL);
        snprintf(name, sizeof(name), "open %s: p11c_session_recv", sz);
        bench_row("records", name, bench_rate(&open[1], rounds) * mb, "MB/s", -1,
                  bench_ratio(&open[1], &open[0], rounds), "primitives");
        snprintf(name, sizeof(name), "open %s: p11c_session_recv, EVP CFB path", sz);
        bench_row("records", name, bench_rate(&open[2], rounds) * mb, "MB/s", -1,
                  bench_ratio(&open[2], &open[0], rounds), "primitives");
        if (len == 64 || len == 16384) {
            snprintf(name, sizeof(name), "records: open %s / primitives", sz);
            bench_target(name, bench_ratio(&open[1], &open[0], rounds), "ratio", "ge",
                         len == 64 ? 0.75 : 0.9);
        }
    }
    OPEN_ARG *oa[3] = {&oprim, &osess, &ocfb};
    for (int i = 0; i < 3; i++) {
        batch_clear(&oa[i]->batch);
        free(oa[i]->batch.rec);
        free(oa[i]->batch.len);
    }
    bench_contender_free(seal, 2);
    bench_contender_free(open, 3);

    /* CFB decryption alone, both ways, over one record's IV || C. */
    uint8_t *rec = malloc(IVL + len + 16);
    if (rec != NULL) {
        PRIM p2 = *prim;
        RAND_bytes(rec, (int)(IVL + len));
        p2.rec = rec;
        BENCH_CONTENDER dec[2] = {
            {.name = "decrypt: EVP CFB", .op = op_dec_cfb, .arg = &p2},
            {.name = "decrypt: ECB + XOR", .op = op_dec_ecb, .arg = &p2},
        };
        if (bench_interleave(dec, 2, rounds)) {
            snprintf(name, sizeof(name), "CFB decrypt %s: EVP AES-256-CFB", sz);
            bench_row("records", name, bench_rate(&dec[0], rounds) * mb, "MB/s", -1, -1, NULL);
            snprintf(name, sizeof(name), "CFB decrypt %s: EVP AES-256-ECB(IV||C) + XOR", sz);
            snprintf(vs, sizeof(vs), "EVP CFB");
            bench_row("records", name, bench_rate(&dec[1], rounds) * mb, "MB/s", -1,
                      bench_ratio(&dec[1], &dec[0], rounds), vs);
        }
        bench_contender_free(dec, 2);
        free(rec);
    }
    pairs_free(&pr);
}

void bench_records(void)
{
    static const size_t sizes[] = {64, 1024, 16384, 65536};
    uint8_t *msg = malloc(65536);
    PRIM prim;

    if (msg == NULL || !prim_init(&prim, 65536)) {
        fprintf(stderr, "bench: records: setup failed\n");
        free(msg);
        return;
    }
    RAND_bytes(msg, 65536);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        one_size(sizes[i], msg, &prim);
    extras();
    prim_cleanup(&prim);
    free(msg);
}
