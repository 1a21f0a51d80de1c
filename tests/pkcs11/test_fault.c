/* pkcs11/ under injected token faults: every PKCS#11 call made by a key load,
 * a sign (RSA, ECDSA), an ECDH, a decrypt, an import, a destroy and a random
 * draw fails in turn with each fault. Each run ends in success (where
 * recovery is possible) or in the injected error, never a crash or leak; and
 * the next run without a fault succeeds. The faults come from tests/fault's
 * module, steered by a file. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/rsa.h>

static char spec_path[4200];
static char errbuf[512];
static EVP_PKEY *imported;
static P11C_RSA_PARTS parts;
static uint8_t part_bufs[8][512];

static const char *const faults[] = {
    "CKR_DEVICE_ERROR",      "CKR_DEVICE_REMOVED",
    "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID",
    "CKR_SESSION_CLOSED",    "CKR_USER_NOT_LOGGED_IN",
    "CKR_PIN_EXPIRED",       "CKR_HOST_MEMORY",
};
static const CK_RV fault_rv[] = {
    CKR_DEVICE_ERROR,   CKR_DEVICE_REMOVED,     CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN, CKR_PIN_EXPIRED,       CKR_HOST_MEMORY,
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static void set_fault(const char *spec)
{
    FILE *f = fopen(spec_path, "w");
    if (f == NULL) {
        perror(spec_path);
        exit(2);
    }
    fputs(spec, f);
    fclose(f);
}

static P11C_MODULE *fault_module(void)
{
    P11C_MODULE *m = NULL;
    P11C_ERR err = {0};
    CK_RV rv = p11c_module_load(P11C_FAULT_SO, &m, &err);
    if (rv != CKR_OK)
        return NULL;
    p11c_module_set_pin(m, TU_USER_PIN);
    return m;
}

/* Shared state of the warm operations. */
static P11C_MODULE *warm_m;
static P11C_KEY *warm_k, *warm_ec; /* RSA alice; a P-256 token key, loaded by URI */
static uint8_t peer_pt[65];
static size_t peer_ptlen;

/* ---- The operations swept --------------------------------------------------- */

static CK_RV op_load_sign(P11C_ERR *err)
{
    P11C_MODULE *m = NULL;
    P11C_KEY *k = NULL;
    CK_RV rv = p11c_module_load(P11C_FAULT_SO, &m, err);
    if (rv == CKR_OK)
        rv = p11c_key_load(m, TH_TOKEN_URI ";object=alice?pin-value=1234", P11C_WANT_ANY, &k, err);
    if (rv == CKR_OK && !th_sign_ok(k, err))
        rv = err->rv != CKR_OK ? err->rv : CKR_GENERAL_ERROR;
    p11c_key_free(k);
    p11c_module_free(m);
    return rv;
}

static CK_RV op_sign(P11C_ERR *err)
{
    if (th_sign_ok(warm_k, err))
        return CKR_OK;
    return err->rv != CKR_OK ? err->rv : CKR_GENERAL_ERROR;
}

static CK_RV op_decrypt(P11C_ERR *err)
{
    uint8_t ct[256], pt[256];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    P11C_MECH oaep = {.type = CKM_RSA_PKCS_OAEP, .hash = CKM_SHA_1};
    if (!th_encrypt(warm_k, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), NULL, 0, (const uint8_t *)"fault",
                    5, ct, &ctlen))
        return CKR_GENERAL_ERROR;
    CK_RV rv = p11c_key_decrypt(warm_k, &oaep, ct, ctlen, pt, &ptlen, err);
    if (rv == CKR_OK && (ptlen != 5 || memcmp(pt, "fault", 5) != 0))
        rv = CKR_GENERAL_ERROR;
    return rv;
}

static CK_RV op_ec_sign(P11C_ERR *err)
{
    uint8_t dgst[32] = {1}, sig[64];
    size_t siglen = sizeof(sig);
    P11C_MECH mech = {.type = CKM_ECDSA};
    return p11c_key_sign(warm_ec, &mech, dgst, sizeof(dgst), sig, &siglen, err);
}

/* ECDH: the secret's object is read and destroyed within the call, whatever
 * fails. */
static CK_RV op_ec_derive(P11C_ERR *err)
{
    uint8_t s[32];
    size_t n = sizeof(s);
    CK_RV rv = p11c_key_derive(warm_ec, peer_pt, peer_ptlen, s, &n, err);
    if (rv == CKR_OK && n != 32)
        rv = CKR_GENERAL_ERROR;
    return rv;
}

static CK_RV op_import_sign(P11C_ERR *err)
{
    P11C_TOKEN *t = p11c_key_token(warm_k);
    P11C_KEY *k = NULL;
    CK_RV rv = p11c_key_import(t, &parts, "swept", NULL, 0, 0, &k, err);
    if (rv == CKR_OK && !th_sign_ok(k, err))
        rv = err->rv != CKR_OK ? err->rv : CKR_GENERAL_ERROR;
    p11c_key_free(k);
    return rv;
}

/* SoftHSM2 takes 0.1-0.3 s to store a token object: the persistent variant
 * runs only with P11C_SWEEP_FULL set. */
static int persistent_sweep;

static CK_RV op_import_destroy(P11C_ERR *err)
{
    P11C_TOKEN *t = p11c_key_token(warm_k);
    P11C_KEY *k = NULL;
    CK_RV rv = p11c_key_import(t, &parts, "sweep", NULL, 0, persistent_sweep, &k, err);
    if (rv == CKR_OK)
        rv = p11c_key_destroy(k, err);
    p11c_key_free(k);
    return rv;
}

static void destroy_cb(P11C_KEY *k, void *arg)
{
    P11C_ERR err = {0};
    (void)arg;
    if (p11c_key_destroy(k, &err) != CKR_OK)
        fprintf(stderr, "cleanup: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
}

/* Keys left behind by a run whose destroy failed: gone, so that the next
 * import finds its label free and the token stays small. */
static void cleanup_sweep_keys(void)
{
    P11C_ERR err = {0};
    CK_RV rv = p11c_key_enum(warm_m, TH_TOKEN_URI ";object=sweep", destroy_cb, NULL, &err);
    if (rv != CKR_OK)
        fprintf(stderr, "cleanup: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
}

static CK_RV op_random_mech(P11C_ERR *err)
{
    P11C_MODULE *m = NULL;
    P11C_TOKEN *t = NULL;
    uint8_t buf[16];
    CK_RV rv = p11c_module_load(P11C_FAULT_SO, &m, err);
    if (rv == CKR_OK)
        rv = p11c_token_find(m, TH_TOKEN_URI, &t, err);
    if (rv == CKR_OK)
        rv = p11c_token_random(t, buf, sizeof(buf), err);
    if (rv == CKR_OK)
        rv = p11c_token_mechanism(t, CKM_RSA_PKCS_PSS, CKF_SIGN, NULL, err);
    if (rv == CKR_OK)
        rv = p11c_token_login(t, TU_USER_PIN, err);
    p11c_module_free(m);
    return rv;
}

/* ---- The sweep -------------------------------------------------------------- */

struct op {
    const char *name;
    CK_RV (*run)(P11C_ERR *err);
    P11C_MODULE **counted; /* whose call count measures the op; NULL: the op's own */
    int recovers;          /* lost sessions and logins are recovered: the op succeeds */
    void (*cleanup)(void); /* after each run, no fault set */
};

/* Errors a fault may legitimately turn into (the token vanished from the slot
 * list: no such token). */
static int acceptable(CK_RV rv, CK_RV injected)
{
    if (rv == CKR_OK || rv == injected)
        return 1;
    if ((injected == CKR_TOKEN_NOT_PRESENT || injected == CKR_DEVICE_REMOVED) &&
        rv == P11C_CKR_NO_TOKEN)
        return 1;
    /* session objects die with a closed session or a logout, and with the
     * module's instance when a device error has it re-opened */
    if ((injected == CKR_SESSION_CLOSED || injected == CKR_SESSION_HANDLE_INVALID ||
         injected == CKR_USER_NOT_LOGGED_IN || injected == CKR_DEVICE_ERROR ||
         injected == CKR_TOKEN_NOT_PRESENT) &&
        rv == P11C_CKR_NO_KEY)
        return 1;
    return 0;
}

static void sweep(const struct op *op, unsigned long calls)
{
    unsigned long runs = 0, failed = 0, recovered = 0;
    for (unsigned long n = 1; n <= calls; n++) {
        for (size_t f = 0; f < NFAULTS; f++) {
            char spec[96];
            P11C_ERR err = {0};
            snprintf(spec, sizeof(spec), "*:%lu:%s", n, faults[f]);
            set_fault(spec);
            CK_RV rv = op->run(&err);
            set_fault("");
            if (op->cleanup != NULL)
                op->cleanup();
            runs++;
            if (!acceptable(rv, fault_rv[f])) {
                fprintf(stderr, "\n%s, %s: %s (%s)\n", op->name, spec, p11c_rv_name(rv),
                        p11c_err_string(&err, errbuf, sizeof(errbuf)));
                CU_FAIL("unexpected outcome");
            }
            if (rv != CKR_OK) {
                failed++;
                /* a clear error: the call and the cause named */
                CU_ASSERT_PTR_NOT_NULL(err.func);
                CU_ASSERT_EQUAL(err.rv, rv);
                if (err.rv != rv)
                    fprintf(stderr, "\n%s, %s: returned %s, recorded %s\n", op->name, spec,
                            p11c_rv_name(rv), p11c_err_string(&err, errbuf, sizeof(errbuf)));
            } else {
                recovered++;
            }
            int lost = fault_rv[f] == CKR_SESSION_HANDLE_INVALID ||
                       fault_rv[f] == CKR_SESSION_CLOSED || fault_rv[f] == CKR_USER_NOT_LOGGED_IN;
            if (op->recovers && lost && rv != CKR_OK) {
                fprintf(stderr, "\n%s, %s: not recovered: %s\n", op->name, spec,
                        p11c_err_string(&err, errbuf, sizeof(errbuf)));
                CU_FAIL("a lost session or login was not recovered");
            }
            /* the fault cleared, the next run succeeds */
            memset(&err, 0, sizeof(err));
            rv = op->run(&err);
            if (op->cleanup != NULL)
                op->cleanup();
            if (rv != CKR_OK) {
                fprintf(stderr, "\n%s after %s: %s\n", op->name, spec,
                        p11c_err_string(&err, errbuf, sizeof(errbuf)));
                CU_FAIL("the run after the fault failed");
            }
        }
    }
    fprintf(stderr, "[%s: %lu calls x %zu faults: %lu runs, %lu failed cleanly, %lu succeeded] ",
            op->name, calls, NFAULTS, runs, failed, recovered);
}

static unsigned long measure(const struct op *op)
{
    P11C_ERR err = {0};
    unsigned long before = op->counted != NULL ? p11c_module_call_count(*op->counted) : 0;
    CK_RV rv = op->run(&err);
    CU_ASSERT_EQUAL_FATAL(rv, CKR_OK);
    if (op->counted != NULL)
        return p11c_module_call_count(*op->counted) - before;
    /* an op with a module of its own: count with a module that stays */
    return 0;
}

static void run_sweep(const char *name, CK_RV (*run)(P11C_ERR *), P11C_MODULE **counted,
                      int recovers, unsigned long own_calls, void (*cleanup)(void))
{
    struct op op = {name, run, counted, recovers, cleanup};
    unsigned long calls = own_calls != 0 ? own_calls : measure(&op);
    CU_ASSERT(calls > 0);
    /* a little beyond the calls measured: recovery makes more */
    sweep(&op, calls + 3);
}

static void test_sweep_warm(void)
{
    run_sweep("sign", op_sign, &warm_m, 1, 0, NULL);
    run_sweep("decrypt", op_decrypt, &warm_m, 1, 0, NULL);
    run_sweep("ECDSA sign", op_ec_sign, &warm_m, 1, 0, NULL);
    run_sweep("ECDH derive", op_ec_derive, &warm_m, 1, 0, NULL);
    run_sweep("import+sign", op_import_sign, &warm_m, 0, 0, NULL);
    run_sweep("import+destroy (session)", op_import_destroy, &warm_m, 0, 0, NULL);
    if (getenv("P11C_SWEEP_FULL") != NULL) {
        persistent_sweep = 1;
        run_sweep("import+destroy (token)", op_import_destroy, &warm_m, 0, 0, cleanup_sweep_keys);
        persistent_sweep = 0;
    }
}

static void test_sweep_cold(void)
{
    /* the calls of a whole load+sign and of token work on a fresh module,
     * counted through a module that stays */
    P11C_ERR err = {0};
    P11C_MODULE *m = fault_module();
    P11C_KEY *k = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    unsigned long before = p11c_module_call_count(m);
    CU_ASSERT_EQUAL(
        p11c_key_load(m, TH_TOKEN_URI ";object=alice?pin-value=1234", P11C_WANT_ANY, &k, &err),
        CKR_OK);
    CU_ASSERT(th_sign_ok(k, &err));
    unsigned long load_calls = p11c_module_call_count(m) - before + 4; /* init, finalize */
    p11c_key_free(k);
    p11c_module_free(m);
    run_sweep("load+sign", op_load_sign, NULL, 0, load_calls, NULL);
    run_sweep("random+mechanism+login", op_random_mech, NULL, 0, 16, NULL);
}

int main(void)
{
    const char *dir = tu_token_make("pkcs11_fault", 1);
    snprintf(spec_path, sizeof(spec_path), "%s/fault.spec", dir);
    set_fault("");
    setenv("P11C_FAULT_FILE", spec_path, 1);
    setenv("P11C_FAULT_MODULE", tu_softhsm_module(), 1);

    imported = EVP_RSA_gen(2048);
    const char *names[8] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                            OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                            OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                            OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    const uint8_t **ptrs[8] = {&parts.n, &parts.e,  &parts.d,  &parts.p,
                               &parts.q, &parts.dp, &parts.dq, &parts.qinv};
    size_t *lens[8] = {&parts.nlen, &parts.elen,  &parts.dlen,  &parts.plen,
                       &parts.qlen, &parts.dplen, &parts.dqlen, &parts.qinvlen};
    for (int i = 0; imported != NULL && i < 8; i++) {
        BIGNUM *bn = NULL;
        if (EVP_PKEY_get_bn_param(imported, names[i], &bn) != 1)
            return 2;
        *lens[i] = (size_t)BN_bn2bin(bn, part_bufs[i]);
        *ptrs[i] = part_bufs[i];
        BN_clear_free(bn);
    }
    warm_m = fault_module();
    P11C_ERR err = {0};
    if (warm_m == NULL || imported == NULL ||
        p11c_key_load(warm_m, TH_TOKEN_URI ";object=alice", P11C_WANT_PRIVATE, &warm_k, &err) !=
            CKR_OK) {
        fprintf(stderr, "setup: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
        return 2;
    }
    /* the EC key: made once in the token, then used as loaded by URI */
    P11C_KEY *made = NULL;
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (peer == NULL ||
        EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, peer_pt, sizeof(peer_pt),
                                        &peer_ptlen) != 1 ||
        p11c_key_generate_ec(p11c_key_token(warm_k), "P-256", "ec-warm", NULL, 0, 1, &made, &err) !=
            CKR_OK ||
        p11c_key_load(warm_m, TH_TOKEN_URI ";object=ec-warm", P11C_WANT_PRIVATE, &warm_ec, &err) !=
            CKR_OK) {
        fprintf(stderr, "setup: %s\n", p11c_err_string(&err, errbuf, sizeof(errbuf)));
        return 2;
    }
    p11c_key_free(made);
    EVP_PKEY_free(peer);

    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pkcs11_fault", NULL, NULL);
    CU_add_test(s, "sweep: warm key", test_sweep_warm);
    CU_add_test(s, "sweep: fresh module", test_sweep_cold);
    int rc = tu_main();
    p11c_key_free(warm_k);
    p11c_key_free(warm_ec);
    p11c_module_free(warm_m);
    EVP_PKEY_free(imported);
    OPENSSL_cleanse(part_bufs, sizeof(part_bufs));
    return rc;
}
