/*
 * Items 1 and 2: RSA-2048 PSS-SHA256 signatures and OAEP decryption of a
 * 64-byte secret, on one key held four ways: a token object and a session
 * object in SoftHSM (both imported from the same software key, signed raw
 * through pkcs11/), the token object through the p11chat provider (loaded
 * from a pkcs11: URI with OSSL_STORE), and the software key itself in the
 * default provider. Also the cost of loading a key through OSSL_STORE.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "bench.h"
#include "p11c_pkcs11.h"

#define MSG_LEN 900 /* about a handshake's signed input */

static P11C_MODULE *mod;
static P11C_KEY *tok_key, *ses_key;
static EVP_PKEY *prov_key;
static char load_uri[256];

/* ---- Setup: one software key, imported twice ----------------------------------- */

static int bn_param(EVP_PKEY *pk, const char *name, uint8_t **out, size_t *len)
{
    BIGNUM *bn = NULL;
    int n;

    if (!EVP_PKEY_get_bn_param(pk, name, &bn))
        return 0;
    n = BN_num_bytes(bn);
    *out = OPENSSL_malloc((size_t)n);
    if (*out != NULL)
        *len = (size_t)BN_bn2bin(bn, *out);
    BN_clear_free(bn);
    return *out != NULL;
}

static int import_keys(void)
{
    P11C_RSA_PARTS parts;
    P11C_TOKEN *t = NULL;
    P11C_ERR err;
    uint8_t *b[8] = {0};
    size_t l[8] = {0};
    static const char *names[8] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                   OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                   OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                   OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    static const uint8_t id_tok[] = {0xb0}, id_ses[] = {0xb1};
    char buf[512], uri[128];
    CK_RV rv;
    int ok = 0;

    memset(&err, 0, sizeof(err));
    rv = p11c_module_load(bench.module, &mod, &err);
    if (rv == CKR_OK)
        rv = p11c_module_set_pin(mod, "1234");
    snprintf(uri, sizeof(uri), "pkcs11:token=%s", BENCH_TOKEN);
    if (rv == CKR_OK)
        rv = p11c_token_find(mod, uri, &t, &err);
    if (rv == CKR_OK)
        rv = p11c_token_login(t, NULL, &err);
    if (rv != CKR_OK)
        goto end;
    for (int i = 0; i < 8; i++)
        if (!bn_param(bench.sw_key, names[i], &b[i], &l[i]))
            goto end;
    parts = (P11C_RSA_PARTS){b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                             l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]};
    rv = p11c_key_import(t, &parts, "bench", id_tok, 1, 1, &tok_key, &err);
    if (rv == CKR_OK)
        rv = p11c_key_import(t, &parts, "bench-session", id_ses, 1, 0, &ses_key, &err);
    if (rv != CKR_OK)
        goto end;
    ok = 1;
end:
    if (!ok && rv != CKR_OK)
        fprintf(stderr, "bench: pkcs11: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
    for (int i = 0; i < 8; i++)
        OPENSSL_clear_free(b[i], l[i]);
    return ok;
}

/* ---- Operations ------------------------------------------------------------------ */

typedef struct op_arg {
    P11C_KEY *raw;        /* raw PKCS#11 ... */
    EVP_PKEY *pkey;       /* ... or EVP */
    int oaep_sha256;      /* decrypt: the SHA-256 ciphertext (X_509 for raw) */
    OSSL_LIB_CTX *libctx; /* pkey's, when not bench.libctx */
} OP_ARG;

static uint8_t msg[MSG_LEN];
/* The provider with pkcs11-copy-keys = no, for comparison. */
static OSSL_LIB_CTX *nocopy_ctx;
static EVP_PKEY *nocopy_key;
static OSSL_LIB_CTX *ctx_with(const char *conf);
static uint8_t ct_sha1[256], ct_sha256[256];
static size_t ct_sha1_len, ct_sha256_len;

static int op_raw_sign(void *arg)
{
    OP_ARG *a = arg;
    uint8_t dgst[32], sig[256];
    size_t siglen = sizeof(sig);
    unsigned int dlen = 0;
    P11C_MECH mech = {CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32, NULL, 0};

    /* The digest on the host, as the provider does. */
    return EVP_Digest(msg, sizeof(msg), dgst, &dlen, EVP_sha256(), NULL) &&
           p11c_key_sign(a->raw, &mech, dgst, dlen, sig, &siglen, NULL) == CKR_OK;
}

static int pss_sign(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t sig[256];
    size_t siglen = sizeof(sig);
    int ok = md != NULL &&
             EVP_DigestSignInit_ex(md, &pctx, "SHA256", libctx, NULL, pkey, NULL) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) > 0 &&
             EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) > 0;

    EVP_MD_CTX_free(md);
    return ok;
}

static int op_evp_sign(void *arg)
{
    OP_ARG *a = arg;

    return pss_sign(a->libctx != NULL ? a->libctx : bench.libctx, a->pkey);
}

static int op_raw_decrypt(void *arg)
{
    OP_ARG *a = arg;
    uint8_t out[256];
    size_t outlen = sizeof(out);
    P11C_MECH oaep = {CKM_RSA_PKCS_OAEP, CKM_SHA_1, CKG_MGF1_SHA1, 0, NULL, 0};
    P11C_MECH x509 = {CKM_RSA_X_509, 0, 0, 0, NULL, 0};
    CK_RV rv;

    if (a->oaep_sha256)
        rv = p11c_key_decrypt(a->raw, &x509, ct_sha256, ct_sha256_len, out, &outlen, NULL);
    else
        rv = p11c_key_decrypt(a->raw, &oaep, ct_sha1, ct_sha1_len, out, &outlen, NULL);
    OPENSSL_cleanse(out, sizeof(out));
    return rv == CKR_OK && (a->oaep_sha256 ? outlen == 256 : outlen == 64);
}

static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *pkey, int sha256, int enc)
{
    const char *md = sha256 ? "SHA256" : "SHA1";
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(bench.libctx, pkey, NULL);

    if (ctx == NULL)
        return NULL;
    if ((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int op_evp_decrypt(void *arg)
{
    OP_ARG *a = arg;
    EVP_PKEY_CTX *ctx = oaep_ctx(a->pkey, a->oaep_sha256, 0);
    uint8_t out[256];
    size_t outlen = sizeof(out);
    int ok = ctx != NULL &&
             EVP_PKEY_decrypt(ctx, out, &outlen, a->oaep_sha256 ? ct_sha256 : ct_sha1,
                              a->oaep_sha256 ? ct_sha256_len : ct_sha1_len) > 0 &&
             outlen == 64;

    OPENSSL_cleanse(out, sizeof(out));
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int make_ciphertexts(void)
{
    uint8_t sec[64];
    EVP_PKEY_CTX *c1 = oaep_ctx(bench.sw_key, 0, 1), *c2 = oaep_ctx(bench.sw_key, 1, 1);
    int ok;

    ct_sha1_len = ct_sha256_len = 256;
    ok = c1 != NULL && c2 != NULL && RAND_bytes(sec, sizeof(sec)) == 1 &&
         EVP_PKEY_encrypt(c1, ct_sha1, &ct_sha1_len, sec, sizeof(sec)) > 0 &&
         EVP_PKEY_encrypt(c2, ct_sha256, &ct_sha256_len, sec, sizeof(sec)) > 0;
    EVP_PKEY_CTX_free(c1);
    EVP_PKEY_CTX_free(c2);
    return ok;
}

/* ---- Signatures -------------------------------------------------------------------- */

static int op_engine_sign(void *arg)
{
    return bench_engine_sign(arg, msg, sizeof(msg));
}

static void signatures(void)
{
    /* Short rounds, many of them: a subject and its reference are measured
     * a few milliseconds apart, so the machine's load hits both alike. */
    int rounds = bench.quick ? 5 : 31;
    double saved = bench.round_s;
    OP_ARG tok = {tok_key, NULL, 0, NULL}, ses = {ses_key, NULL, 0, NULL};
    OP_ARG prov = {NULL, prov_key, 0, NULL}, sw = {NULL, bench.sw_key, 0, NULL};
    OP_ARG nocopy = {NULL, nocopy_key, 0, nocopy_ctx};
    enum { TOK1, SES1, PROV1, SW1, ENG1, NOCOPY1, N1 };
    enum { PROV_1, PROV_2, SES_1, SES_2, TOK_1, TOK_2, SW_1, SW_2, N2 };
    BENCH_CONTENDER all[N1] = {
        [TOK1] = {.name = "raw C_Sign, token object", .op = op_raw_sign, .arg = &tok},
        [SES1] = {.name = "raw C_Sign, session object", .op = op_raw_sign, .arg = &ses},
        [PROV1] = {.name = "provider", .op = op_evp_sign, .arg = &prov},
        [SW1] = {.name = "software", .op = op_evp_sign, .arg = &sw},
        [ENG1] = {.name = "libp11 engine", .op = op_engine_sign},
        [NOCOPY1] = {.name = "provider, no copy", .op = op_evp_sign, .arg = &nocopy},
    };
    BENCH_CONTENDER th[N2] = {
        [PROV_1] = {.name = "provider", .op = op_evp_sign, .arg = &prov},
        [PROV_2] = {.name = "provider, 2 threads", .op = op_evp_sign, .arg = &prov, .threads = 2},
        [SES_1] = {.name = "raw session", .op = op_raw_sign, .arg = &ses},
        [SES_2] = {.name = "raw session, 2 threads", .op = op_raw_sign, .arg = &ses, .threads = 2},
        [TOK_1] = {.name = "raw token", .op = op_raw_sign, .arg = &tok},
        [TOK_2] = {.name = "raw token, 2 threads", .op = op_raw_sign, .arg = &tok, .threads = 2},
        [SW_1] = {.name = "software", .op = op_evp_sign, .arg = &sw},
        [SW_2] = {.name = "software, 2 threads", .op = op_evp_sign, .arg = &sw, .threads = 2},
    };
    BENCH_CONTENDER c[N1];
    int at[N1];
    size_t n = 0, nth = prov_key != NULL ? N2 : 0;
    void *eng = bench_engine_key(load_uri);

    bench.round_s = bench.quick ? 0.015 : 0.02;
    all[ENG1].arg = eng;
    for (int i = 0; i < N1; i++) {
        at[i] = -1;
        if ((i == PROV1 && prov_key == NULL) || (i == ENG1 && eng == NULL) ||
            (i == NOCOPY1 && nocopy_key == NULL))
            continue;
        at[i] = (int)n;
        c[n++] = all[i];
    }
#define C(i) (&c[at[i]])
    if (bench_interleave(c, n, rounds)) {
        bench_row("signatures", "raw C_Sign, token object", bench_rate(C(TOK1), rounds), "sig/s",
                  -1, -1, NULL);
        bench_row("signatures", "raw C_Sign, session object", bench_rate(C(SES1), rounds), "sig/s",
                  -1, bench_ratio(C(SES1), C(TOK1), rounds), "token object");
        if (at[PROV1] >= 0) {
            bench_row("signatures", "provider, EVP_DigestSign (key from OSSL_STORE)",
                      bench_rate(C(PROV1), rounds), "sig/s", -1,
                      bench_ratio_best(C(PROV1), C(TOK1), C(SES1), rounds), "best raw");
            bench_row("signatures", "  the same ratio in thread CPU time", NAN, "", -1,
                      bench_cpu_ratio_best(C(PROV1), C(TOK1), C(SES1), rounds), "best raw");
            bench_row("signatures", "  against raw on the same token object", NAN, "", -1,
                      bench_ratio(C(PROV1), C(TOK1), rounds), "raw token object");
            bench_target("provider signing / best raw C_Sign",
                         bench_ratio_best(C(PROV1), C(TOK1), C(SES1), rounds), "ratio", "ge", 0.95);
        }
        if (at[NOCOPY1] >= 0) {
            bench_row("signatures", "provider, pkcs11-copy-keys = no (the token object)",
                      bench_rate(C(NOCOPY1), rounds), "sig/s", -1,
                      bench_ratio(C(NOCOPY1), C(TOK1), rounds), "raw token object");
        }
        bench_row("signatures", "software, default provider", bench_rate(C(SW1), rounds), "sig/s",
                  -1, bench_ratio_best(C(SW1), C(TOK1), C(SES1), rounds), "best raw");
        if (at[ENG1] >= 0) {
            bench_row("signatures", "libp11 ENGINE (libengine-pkcs11-openssl)",
                      bench_rate(C(ENG1), rounds), "sig/s", -1,
                      bench_ratio_best(C(ENG1), C(TOK1), C(SES1), rounds), "best raw");
            bench_row("signatures", "  the same ratio in thread CPU time", NAN, "", -1,
                      bench_cpu_ratio_best(C(ENG1), C(TOK1), C(SES1), rounds), "best raw");
        }
    }
#undef C
    bench_contender_free(c, n);

    /* Two threads against one, each pair side by side. */
    if (nth > 0 && bench_interleave(th, nth, rounds)) {
        bench_row("signatures", "provider, 2 threads", bench_rate(&th[PROV_2], rounds), "sig/s", -1,
                  bench_ratio(&th[PROV_2], &th[PROV_1], rounds), "1 thread");
        bench_row("signatures", "raw C_Sign, session object, 2 threads",
                  bench_rate(&th[SES_2], rounds), "sig/s", -1,
                  bench_ratio(&th[SES_2], &th[SES_1], rounds), "1 thread");
        bench_row("signatures", "raw C_Sign, token object, 2 threads",
                  bench_rate(&th[TOK_2], rounds), "sig/s", -1,
                  bench_ratio(&th[TOK_2], &th[TOK_1], rounds), "1 thread");
        bench_row("signatures", "software, 2 threads", bench_rate(&th[SW_2], rounds), "sig/s", -1,
                  bench_ratio(&th[SW_2], &th[SW_1], rounds), "1 thread");
        /* What two threads of software signing gain shows what the machine allows. */
        bench_row("signatures", "  provider's gain / software's gain (2 threads)", NAN, "", -1,
                  bench_ratio(&th[PROV_2], &th[PROV_1], rounds) /
                      bench_ratio(&th[SW_2], &th[SW_1], rounds),
                  "software");
        bench_target("provider signing, 2 threads / 1 thread",
                     bench_ratio(&th[PROV_2], &th[PROV_1], rounds), "ratio", "ge", 1.7);
    }
    bench_contender_free(th, nth);
    bench.round_s = saved;
}

/* ---- OAEP decryption ----------------------------------------------------------------- */

static void decryption(void)
{
    int rounds = bench.rounds;
    OP_ARG tok1 = {tok_key, NULL, 0, NULL}, ses1 = {ses_key, NULL, 0, NULL};
    OP_ARG tokx = {tok_key, NULL, 1, NULL}, sesx = {ses_key, NULL, 1, NULL};
    OP_ARG prov1 = {NULL, prov_key, 0, NULL}, prov256 = {NULL, prov_key, 1, NULL};
    OP_ARG sw1 = {NULL, bench.sw_key, 0, NULL}, sw256 = {NULL, bench.sw_key, 1, NULL};
    enum { TOK1, SES1, TOKX, SESX, SW1, SW256, PROV1, PROV256, N };
    BENCH_CONTENDER c[N] = {
        [TOK1] = {.name = "raw OAEP-SHA1, token", .op = op_raw_decrypt, .arg = &tok1},
        [SES1] = {.name = "raw OAEP-SHA1, session", .op = op_raw_decrypt, .arg = &ses1},
        [TOKX] = {.name = "raw X_509, token", .op = op_raw_decrypt, .arg = &tokx},
        [SESX] = {.name = "raw X_509, session", .op = op_raw_decrypt, .arg = &sesx},
        [SW1] = {.name = "software OAEP-SHA1", .op = op_evp_decrypt, .arg = &sw1},
        [SW256] = {.name = "software OAEP-SHA256", .op = op_evp_decrypt, .arg = &sw256},
        [PROV1] = {.name = "provider OAEP-SHA1", .op = op_evp_decrypt, .arg = &prov1},
        [PROV256] = {.name = "provider OAEP-SHA256", .op = op_evp_decrypt, .arg = &prov256},
    };
    size_t n = prov_key != NULL ? N : PROV1;

    if (!bench_interleave(c, n, rounds)) {
        bench_contender_free(c, n);
        return;
    }
    bench_row("decryption", "raw C_Decrypt OAEP-SHA1, token object", bench_rate(&c[TOK1], rounds),
              "op/s", -1, -1, NULL);
    bench_row("decryption", "raw C_Decrypt OAEP-SHA1, session object", bench_rate(&c[SES1], rounds),
              "op/s", -1, bench_ratio(&c[SES1], &c[TOK1], rounds), "token object");
    bench_row("decryption", "raw C_Decrypt X_509 (no padding), token object",
              bench_rate(&c[TOKX], rounds), "op/s", -1, -1, NULL);
    bench_row("decryption", "raw C_Decrypt X_509 (no padding), session object",
              bench_rate(&c[SESX], rounds), "op/s", -1, bench_ratio(&c[SESX], &c[TOKX], rounds),
              "token object");
    if (prov_key != NULL) {
        bench_row("decryption", "provider OAEP-SHA1 (native CKM_RSA_PKCS_OAEP)",
                  bench_rate(&c[PROV1], rounds), "op/s", -1,
                  bench_ratio_best(&c[PROV1], &c[TOK1], &c[SES1], rounds), "best raw OAEP");
        bench_row("decryption", "  the same ratio in thread CPU time", NAN, "", -1,
                  bench_cpu_ratio_best(&c[PROV1], &c[TOK1], &c[SES1], rounds), "best raw OAEP");
        bench_row("decryption", "provider OAEP-SHA256 (X_509 + host unpadding)",
                  bench_rate(&c[PROV256], rounds), "op/s", -1,
                  bench_ratio_best(&c[PROV256], &c[TOKX], &c[SESX], rounds), "best raw X_509");
        bench_row("decryption", "  the same ratio in thread CPU time", NAN, "", -1,
                  bench_cpu_ratio_best(&c[PROV256], &c[TOKX], &c[SESX], rounds), "best raw X_509");
    }
    bench_row("decryption", "software OAEP-SHA1", bench_rate(&c[SW1], rounds), "op/s", -1, -1,
              NULL);
    bench_row("decryption", "software OAEP-SHA256", bench_rate(&c[SW256], rounds), "op/s", -1, -1,
              NULL);
    bench_contender_free(c, n);
}

/* ---- Key load through OSSL_STORE --------------------------------------------------------- */

static int op_load(void *arg)
{
    EVP_PKEY *k = bench_store_load(arg, load_uri, 1);

    EVP_PKEY_free(k);
    return k != NULL;
}

/* A library context with the provider configured by `conf`. */
static OSSL_LIB_CTX *ctx_with(const char *conf)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx != NULL && !OSSL_LIB_CTX_load_config(ctx, conf)) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void key_load(void)
{
    int samples = bench.quick ? 11 : 41;
    double *t = calloc((size_t)samples, sizeof(double)), t0, cold;
    OSSL_LIB_CTX *ctx;
    int i = 0;

    if (t == NULL)
        return;
    /* The first load in a fresh context: module load, C_Initialize, login. */
    ctx = ctx_with(bench.conf);
    t0 = bench_now();
    if (ctx == NULL || !op_load(ctx)) {
        bench_ossl_err("key load");
        goto end;
    }
    cold = (bench_now() - t0) * 1e3;
    for (i = 0; i < samples; i++) {
        t0 = bench_now();
        if (!op_load(ctx))
            break;
        t[i] = (bench_now() - t0) * 1e3;
    }
    if (i < samples)
        goto end;
    bench_row("key load", "OSSL_STORE load of a pkcs11: URI, first in a process", cold, "ms", -1,
              -1, NULL);
    bench_row("key load", "OSSL_STORE load of a pkcs11: URI, module ready",
              bench_median(t, (size_t)i), "ms", bench_percentile(t, (size_t)i, 0.9), -1, NULL);
    bench_target("key load (module ready), median", bench_median(t, (size_t)i), "ms", "lt", 3.0);

    /* PKCS#11 calls: the same load through the counting module. */
    if (bench.fault_so != NULL) {
        OSSL_LIB_CTX *cc = ctx_with(bench.conf_count);
        void *h = NULL;
        unsigned long (*calls)(void) = NULL;
        unsigned long c0, c1, c2;
        if (cc != NULL && op_load(cc) && (h = dlopen(bench.fault_so, RTLD_NOW | RTLD_NOLOAD)) &&
            (calls = (unsigned long (*)(void))dlsym(h, "p11c_fault_calls")) != NULL) {
            c0 = calls();
            op_load(cc);
            c1 = calls();
            op_load(cc);
            c2 = calls();
            bench_row("key load", "PKCS#11 calls per load (module ready)", (double)(c1 - c0),
                      "calls", -1, -1, NULL);
            const char *(*name)(unsigned long) =
                (const char *(*)(unsigned long))dlsym(h, "p11c_fault_call_name");
            char list[1024] = "";
            for (unsigned long j = c0; name != NULL && j < c1; j++) {
                const char *nm = name(j);
                size_t used = strlen(list);
                snprintf(list + used, sizeof(list) - used, "%s%s", j > c0 ? ", " : "",
                         nm != NULL ? nm : "?");
            }
            if (list[0] != '\0')
                bench_note("key load: the PKCS#11 calls of one load: %s", list);
            if (c2 - c1 != c1 - c0)
                bench_note("key load: successive loads made %lu then %lu PKCS#11 calls", c1 - c0,
                           c2 - c1);
        } else {
            bench_note("key load: the counting module could not be used");
            bench_ossl_err("key load count");
        }
        if (h != NULL)
            dlclose(h);
        OSSL_LIB_CTX_free(cc);
    }
end:
    OSSL_LIB_CTX_free(ctx);
    free(t);
}

/* Calls made by pkcs11/ itself for one p11c_key_load (the provider's store does one). */
static void raw_load_calls(void)
{
    double t[11];
    unsigned long calls = 0;
    int n;

    for (n = 0; n < 11; n++) {
        P11C_KEY *k = NULL;
        unsigned long c0 = p11c_module_call_count(mod);
        double t0 = bench_now();
        if (p11c_key_load(mod, load_uri, P11C_WANT_PRIVATE, &k, NULL) != CKR_OK)
            break;
        t[n] = (bench_now() - t0) * 1e3;
        calls = p11c_module_call_count(mod) - c0;
        p11c_key_free(k);
    }
    if (n == 0)
        return;
    bench_row("key load", "p11c_key_load alone (pkcs11/, logged in)", bench_median(t, (size_t)n),
              "ms", bench_percentile(t, (size_t)n, 0.9), -1, NULL);
    bench_row("key load", "PKCS#11 calls of p11c_key_load alone", (double)calls, "calls", -1, -1,
              NULL);
}

void bench_rsa(void)
{
    RAND_bytes(msg, sizeof(msg));
    if (!import_keys() || !make_ciphertexts()) {
        fprintf(stderr, "bench: rsa: setup failed\n");
        bench_ossl_err("rsa");
        goto end;
    }
    snprintf(load_uri, sizeof(load_uri), "pkcs11:token=%s;object=bench;type=private", BENCH_TOKEN);
    if (bench.have_provider) {
        prov_key = bench_store_load(bench.libctx, load_uri, 1);
        if (prov_key == NULL) {
            fprintf(stderr, "bench: the provider cannot load %s\n", load_uri);
            bench_ossl_err("rsa");
        }
        /* A second provider instance that signs with the token object: the
         * configuration does not set the switch, so the environment does. */
        setenv("P11CHAT_PKCS11_COPY_KEYS", "no", 1);
        nocopy_ctx = ctx_with(bench.conf);
        unsetenv("P11CHAT_PKCS11_COPY_KEYS");
        if (nocopy_ctx != NULL)
            nocopy_key = bench_store_load(nocopy_ctx, load_uri, 1);
        if (nocopy_key == NULL) {
            fprintf(stderr, "bench: the provider without session copies cannot load %s\n",
                    load_uri);
            bench_ossl_err("rsa");
        }
    }
    if (bench_section_wanted("sign"))
        signatures();
    if (bench_section_wanted("decrypt"))
        decryption();
    if (bench_section_wanted("load")) {
        if (prov_key != NULL)
            key_load();
        raw_load_calls();
    }
end:
    EVP_PKEY_free(prov_key);
    EVP_PKEY_free(nocopy_key);
    OSSL_LIB_CTX_free(nocopy_ctx);
    prov_key = nocopy_key = NULL;
    nocopy_ctx = NULL;
    p11c_key_free(tok_key);
    p11c_key_free(ses_key);
    p11c_module_free(mod);
    tok_key = ses_key = NULL;
    mod = NULL;
}
