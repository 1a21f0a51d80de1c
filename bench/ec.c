/*
 * EC and Ed25519 keys: ECDSA P-256 (SHA-256) and Ed25519 signatures and
 * P-256 ECDH, each through the p11chat provider (the key loaded from a
 * pkcs11: URI with OSSL_STORE) against raw pkcs11/ calls on the same token
 * object, in the same interleaved rounds; and the cost of loading an EC key.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "bench.h"
#include "p11c_pkcs11.h"

#define MSG_LEN 900 /* about a handshake's signed input */

static P11C_MODULE *mod;
static P11C_KEY *ec_key, *ed_key;
static EVP_PKEY *prov_ec, *prov_ed, *peer;
static uint8_t peer_pt[65];
static size_t peer_ptlen;
static uint8_t msg[MSG_LEN];

static int make_keys(void)
{
    P11C_TOKEN *t = NULL;
    P11C_ERR err;
    static const uint8_t id_ec[] = {0xc0}, id_ed[] = {0xc1};
    char buf[512], uri[128];
    CK_RV rv;

    memset(&err, 0, sizeof(err));
    rv = p11c_module_load(bench.module, &mod, &err);
    if (rv == CKR_OK)
        rv = p11c_module_set_pin(mod, "1234");
    snprintf(uri, sizeof(uri), "pkcs11:token=%s", BENCH_TOKEN);
    if (rv == CKR_OK)
        rv = p11c_token_find(mod, uri, &t, &err);
    if (rv == CKR_OK)
        rv = p11c_token_login(t, NULL, &err);
    if (rv == CKR_OK)
        rv = p11c_key_generate_ec(t, "P-256", "bench-ec", id_ec, 1, 1, &ec_key, &err);
    if (rv == CKR_OK)
        rv = p11c_key_generate_ec(t, "Ed25519", "bench-ed", id_ed, 1, 1, &ed_key, &err);
    /* Raw calls on the key as loaded by URI, as the provider loads it (and
     * so through the same session copy of the token object). */
    p11c_key_free(ec_key);
    p11c_key_free(ed_key);
    ec_key = ed_key = NULL;
    snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=bench-ec", BENCH_TOKEN);
    if (rv == CKR_OK)
        rv = p11c_key_load(mod, uri, P11C_WANT_PRIVATE, &ec_key, &err);
    snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=bench-ed", BENCH_TOKEN);
    if (rv == CKR_OK)
        rv = p11c_key_load(mod, uri, P11C_WANT_PRIVATE, &ed_key, &err);
    if (rv != CKR_OK) {
        fprintf(stderr, "bench: ec: %s\n", p11c_err_string(&err, buf, sizeof(buf)));
        return 0;
    }
    peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return peer != NULL && EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, peer_pt,
                                                           sizeof(peer_pt), &peer_ptlen);
}

/* ---- Operations ------------------------------------------------------------ */

static int op_raw_ecdsa(void *arg)
{
    uint8_t dgst[32], sig[64];
    size_t siglen = sizeof(sig);
    unsigned int dlen = 0;
    P11C_MECH mech = {CKM_ECDSA, 0, 0, 0, NULL, 0};

    /* The digest on the host, as the provider does. */
    return EVP_Digest(msg, sizeof(msg), dgst, &dlen, EVP_sha256(), NULL) &&
           p11c_key_sign(arg, &mech, dgst, dlen, sig, &siglen, NULL) == CKR_OK;
}

static int op_raw_eddsa(void *arg)
{
    uint8_t sig[64];
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {CKM_EDDSA, 0, 0, 0, NULL, 0};

    return p11c_key_sign(arg, &mech, msg, sizeof(msg), sig, &siglen, NULL) == CKR_OK;
}

static int evp_sign(EVP_PKEY *pkey, const char *md)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint8_t sig[80];
    size_t siglen = sizeof(sig);
    int ok = m != NULL && EVP_DigestSignInit_ex(m, NULL, md, bench.libctx, NULL, pkey, NULL) > 0 &&
             EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) > 0;

    EVP_MD_CTX_free(m);
    return ok;
}

static int op_prov_ecdsa(void *arg)
{
    return evp_sign(arg, "SHA256");
}

static int op_prov_eddsa(void *arg)
{
    return evp_sign(arg, NULL);
}

/* The same through one context made once per key and signing again each
 * time (EVP_DigestSign is one-shot for both kinds): what remains is the
 * provider's own cost, without libcrypto's per-context work. */
static EVP_MD_CTX *kept_ec, *kept_ed;

static int kept_sign(EVP_MD_CTX *m)
{
    uint8_t sig[80];
    size_t siglen = sizeof(sig);

    return m != NULL && EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) > 0;
}

static int op_kept_ecdsa(void *arg)
{
    (void)arg;
    return kept_sign(kept_ec);
}

static int op_kept_eddsa(void *arg)
{
    (void)arg;
    return kept_sign(kept_ed);
}

static EVP_MD_CTX *kept_ctx(EVP_PKEY *pkey, const char *md)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    if (m != NULL && EVP_DigestSignInit_ex(m, NULL, md, bench.libctx, NULL, pkey, NULL) <= 0) {
        EVP_MD_CTX_free(m);
        m = NULL;
    }
    return m;
}

static int op_raw_ecdh(void *arg)
{
    uint8_t s[32];
    size_t n = sizeof(s);
    int ok = p11c_key_derive(arg, peer_pt, peer_ptlen, s, &n, NULL) == CKR_OK && n == 32;

    OPENSSL_cleanse(s, sizeof(s));
    return ok;
}

/* As an application does it: a context per exchange. The peer's key is
 * not checked again by libcrypto (EVP_PKEY_derive_set_peer_ex, validate 0):
 * the raw side does not check it either, and the check (a scalar
 * multiplication on the host) would be measured as the provider's. */
static int op_prov_ecdh(void *arg)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(bench.libctx, arg, NULL);
    uint8_t s[32];
    size_t n = sizeof(s);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 &&
             EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) > 0 && EVP_PKEY_derive(ctx, s, &n) > 0 &&
             n == 32;

    OPENSSL_cleanse(s, sizeof(s));
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ---- Sections ---------------------------------------------------------------- */

static void compare(const char *section, const char *what, bench_op_fn raw, void *raw_arg,
                    bench_op_fn prov, void *prov_arg, bench_op_fn kept, const char *unit,
                    double target)
{
    int rounds = bench.quick ? 5 : 31;
    double saved = bench.round_s;
    BENCH_CONTENDER c[3] = {
        {.name = "raw", .op = raw, .arg = raw_arg},
        {.name = "provider", .op = prov, .arg = prov_arg},
        {.name = "provider, context kept", .op = kept, .arg = NULL},
    };
    size_t n = kept != NULL ? 3 : 2;
    char name[160];

    /* Short rounds, many of them, as for RSA signatures. */
    bench.round_s = bench.quick ? 0.015 : 0.02;
    if (bench_interleave(c, n, rounds)) {
        snprintf(name, sizeof(name), "raw %s, token object", what);
        bench_row(section, name, bench_rate(&c[0], rounds), unit, -1, -1, NULL);
        snprintf(name, sizeof(name), "provider %s (key from OSSL_STORE)", what);
        bench_row(section, name, bench_rate(&c[1], rounds), unit, -1,
                  bench_ratio(&c[1], &c[0], rounds), "raw");
        bench_row(section, "  the same ratio in thread CPU time", NAN, "", -1,
                  bench_cpu_ratio_best(&c[1], &c[0], &c[0], rounds), "raw");
        if (n == 3) {
            snprintf(name, sizeof(name), "provider %s, one context per key", what);
            bench_row(section, name, bench_rate(&c[2], rounds), unit, -1,
                      bench_ratio(&c[2], &c[0], rounds), "raw");
        }
        snprintf(name, sizeof(name), "provider %s / raw", what);
        bench_target(name, bench_ratio(&c[1], &c[0], rounds), "ratio", "ge", target);
    }
    bench_contender_free(c, n);
    bench.round_s = saved;
}

static int op_load(void *arg)
{
    EVP_PKEY *k = bench_store_load(bench.libctx, arg, 1);

    EVP_PKEY_free(k);
    return k != NULL;
}

static void key_load(const char *uri)
{
    int samples = bench.quick ? 11 : 41, i;
    double t[41], t0;

    for (i = 0; i < samples; i++) {
        t0 = bench_now();
        if (!op_load((void *)uri))
            break;
        t[i] = (bench_now() - t0) * 1e3;
    }
    if (i < samples) {
        bench_ossl_err("ec key load");
        return;
    }
    bench_row("key load", "OSSL_STORE load of an EC P-256 pkcs11: URI, module ready",
              bench_median(t, (size_t)i), "ms", bench_percentile(t, (size_t)i, 0.9), -1, NULL);
    bench_target("EC key load (module ready), median", bench_median(t, (size_t)i), "ms", "lt", 3.0);
}

void bench_ec(void)
{
    char ec_uri[128], ed_uri[128];

    RAND_bytes(msg, sizeof(msg));
    if (!make_keys()) {
        fprintf(stderr, "bench: ec: setup failed\n");
        bench_ossl_err("ec");
        goto end;
    }
    snprintf(ec_uri, sizeof(ec_uri), "pkcs11:token=%s;object=bench-ec;type=private", BENCH_TOKEN);
    snprintf(ed_uri, sizeof(ed_uri), "pkcs11:token=%s;object=bench-ed;type=private", BENCH_TOKEN);
    if (!bench.have_provider)
        goto end;
    prov_ec = bench_store_load(bench.libctx, ec_uri, 1);
    prov_ed = bench_store_load(bench.libctx, ed_uri, 1);
    if (prov_ec == NULL || prov_ed == NULL) {
        fprintf(stderr, "bench: the provider cannot load the EC keys\n");
        bench_ossl_err("ec");
        goto end;
    }
    if (bench_section_wanted("sign")) {
        kept_ec = kept_ctx(prov_ec, "SHA256");
        kept_ed = kept_ctx(prov_ed, NULL);
        if (kept_ec == NULL || kept_ed == NULL)
            bench_ossl_err("ec: a kept signing context");
        compare("EC signatures", "ECDSA P-256 SHA-256", op_raw_ecdsa, ec_key, op_prov_ecdsa,
                prov_ec, kept_ec != NULL ? op_kept_ecdsa : NULL, "sig/s", 0.97);
        compare("EC signatures", "Ed25519", op_raw_eddsa, ed_key, op_prov_eddsa, prov_ed,
                kept_ed != NULL ? op_kept_eddsa : NULL, "sig/s", 0.97);
    }
    if (bench_section_wanted("derive"))
        compare("ECDH", "ECDH P-256", op_raw_ecdh, ec_key, op_prov_ecdh, prov_ec, NULL, "op/s",
                0.95);
    if (bench_section_wanted("load"))
        key_load(ec_uri);
end:
    EVP_MD_CTX_free(kept_ec);
    EVP_MD_CTX_free(kept_ed);
    kept_ec = kept_ed = NULL;
    EVP_PKEY_free(prov_ec);
    EVP_PKEY_free(prov_ed);
    EVP_PKEY_free(peer);
    prov_ec = prov_ed = peer = NULL;
    p11c_key_free(ec_key);
    p11c_key_free(ed_key);
    p11c_module_free(mod);
    ec_key = ed_key = NULL;
    mod = NULL;
}
