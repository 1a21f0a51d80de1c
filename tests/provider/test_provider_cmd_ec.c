/*
 * The real openssl command with EC (P-256, P-384) and Ed25519 keys made by
 * pkcs11-tool on a private SoftHSM2 token: export, text form, ECDSA with every
 * SHA-2 and Ed25519 signatures verified by the default provider, ECDH,
 * certificates, key generation, TLS 1.3 and 1.2 with each token key kind, and
 * what a token without the mechanism says. Every run must exit 0 with nothing
 * on stderr that looks like an error or a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptu.h"

static int order; /* configuration in use: 0 default first, 1 p11chat first */

#define PTU_ALICE_EC "pkcs11:token=p11chat-test;object=carol"

#define run_p(out, cmd) ptu_run_conf((out), order, (cmd))
#define run_d           ptu_run_default
#define same_files      ptu_same_files
#define write_msg       ptu_write_msg
#define OK_P(cmd)       PTU_OK_CONF(order, cmd)
#define OK_D(cmd)       PTU_OK_DEFAULT(cmd)

/* Made by pkcs11-tool, as a user would: P-256, P-384, Ed25519. */
static const struct {
    const char *name, *uri, *type, *id;
    int ec;
} eckeys[] = {
    {"carol", "pkcs11:token=p11chat-test;object=carol", "EC:prime256v1", "03", 1},
    {"dave", "pkcs11:token=p11chat-test;object=dave", "EC:secp384r1", "04", 1},
    {"erin", "pkcs11:token=p11chat-test;object=erin", "EC:edwards25519", "05", 0},
};
#define NECKEYS (sizeof(eckeys) / sizeof(eckeys[0]))

static void test_ec_keys_made(void)
{
    for (size_t i = 0; i < NECKEYS; i++) {
        char *out = NULL;
        int rc = tu_run(&out,
                        "pkcs11-tool --module '%s' --token-label p11chat-test --login --pin 1234 "
                        "--keypairgen --key-type %s --label %s --id %s",
                        tu_softhsm_module(), eckeys[i].type, eckeys[i].name, eckeys[i].id);
        if (rc != 0)
            fprintf(stderr, "%s\n", out);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        free(out);
    }
}

/* -pubout writes what OpenSSL writes for the same public key: the named
 * curve, not explicit parameters; from the pair, the private half and the
 * public half alike. */
static void test_ec_pubout(void)
{
    char cmd[1024];

    for (size_t i = 0; i < NECKEYS; i++) {
        const char *n = eckeys[i].name;
        char *out = NULL;
        snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s' -pubout -out %s.pub.pem", eckeys[i].uri,
                 n);
        OK_P(cmd);
        snprintf(cmd, sizeof(cmd), "openssl pkey -pubin -in %s.pub.pem -pubout -out %s-ref.pem", n,
                 n);
        OK_D(cmd);
        snprintf(cmd, sizeof(cmd), "%s.pub.pem", n);
        char ref[64];
        snprintf(ref, sizeof(ref), "%s-ref.pem", n);
        CU_ASSERT_TRUE(same_files(cmd, ref));
        for (order = 0; order < 2; order++) {
            snprintf(cmd, sizeof(cmd),
                     "openssl pkey -in '%s;type=private' -pubout -out %s.pub2.pem", eckeys[i].uri,
                     n);
            OK_P(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl pkey -pubin -in '%s;type=public' -pubout -out %s.pub3.pem",
                     eckeys[i].uri, n);
            OK_P(cmd);
            snprintf(cmd, sizeof(cmd), "%s.pub2.pem", n);
            CU_ASSERT_TRUE(same_files(cmd, ref));
            snprintf(cmd, sizeof(cmd), "%s.pub3.pem", n);
            CU_ASSERT_TRUE(same_files(cmd, ref));
        }
        order = 0;
        if (eckeys[i].ec) {
            /* the SubjectPublicKeyInfo names the curve by its OID */
            snprintf(cmd, sizeof(cmd), "openssl asn1parse -in %s.pub.pem", n);
            CU_ASSERT_EQUAL(run_d(&out, cmd), 0);
            CU_ASSERT_PTR_NOT_NULL(strstr(out, i == 0 ? ":prime256v1" : ":secp384r1"));
            CU_ASSERT_PTR_NULL(strstr(out, "INTEGER"));
            free(out);
        }
    }
}

/* The text form tells the keys apart: kind, curve, the full URI. */
static void test_ec_text(void)
{
    static const char *expect[][3] = {
        {"EC private key in a PKCS#11 token", "Curve: P-256", ";id=%03;object=carol\n"},
        {"EC private key in a PKCS#11 token", "Curve: P-384", ";id=%04;object=dave\n"},
        {"ED25519 private key in a PKCS#11 token", "Curve: Ed25519", ";id=%05;object=erin\n"},
    };
    char cmd[1024];

    for (size_t i = 0; i < NECKEYS; i++) {
        char *out = NULL;
        snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s' -text -noout", eckeys[i].uri);
        CU_ASSERT_EQUAL(run_p(&out, cmd), 0);
        for (int k = 0; k < 3; k++)
            CU_ASSERT_PTR_NOT_NULL(strstr(out, expect[i][k]));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "URI: pkcs11:model=SoftHSM%20v2;"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, ";token=p11chat-test;"));
        CU_ASSERT_PTR_NULL(strstr(out, "priv:"));
        free(out);
        /* storeutl prints the same for each key it finds */
        snprintf(cmd, sizeof(cmd), "openssl storeutl -keys -text '%s'", eckeys[i].uri);
        CU_ASSERT_EQUAL(run_p(&out, cmd), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, expect[i][1]));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, expect[i][2]));
        free(out);
        /* a public key alone says so, and its URI says type=public */
        snprintf(cmd, sizeof(cmd), "openssl pkey -pubin -in '%s;type=public' -text -noout",
                 eckeys[i].uri);
        CU_ASSERT_EQUAL(run_p(&out, cmd), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "public key in a PKCS#11 token"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, ";type=public\n"));
        free(out);
    }
}

/* A URI naming every private key of the token lists the EC and Ed25519
 * ones too (their private objects show no point: it comes from the public
 * half). */
static void test_ec_storeutl_private(void)
{
    char *out = NULL;

    CU_ASSERT_EQUAL(run_p(&out, "openssl storeutl -keys -text "
                                "'pkcs11:token=p11chat-test;type=private'"),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ";id=%03;object=carol\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ";id=%04;object=dave\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ";id=%05;object=erin\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, ";id=%01;object=alice\n"));
    CU_ASSERT_EQUAL(ptu_count_in(out, "private key in a PKCS#11 token"), 5);
    free(out);
}

/* ECDSA with every SHA-2, over the message and over a precomputed digest;
 * Ed25519 over the message; each verified by the default provider. */
static void test_ec_sign(void)
{
    static const char *mds[] = {"sha224", "sha256", "sha384", "sha512"};
    char cmd[1024];

    write_msg();
    for (order = 0; order < 2; order++) {
        for (size_t i = 0; i < 2; i++) {
            const char *n = eckeys[i].name;
            for (size_t m = 0; m < sizeof(mds) / sizeof(mds[0]); m++) {
                snprintf(cmd, sizeof(cmd), "openssl dgst -%s -sign '%s' -out %s.sig msg.txt",
                         mds[m], eckeys[i].uri, n);
                OK_P(cmd);
                snprintf(cmd, sizeof(cmd),
                         "openssl dgst -%s -verify %s-ref.pem -signature %s.sig msg.txt", mds[m], n,
                         n);
                OK_D(cmd);
                snprintf(cmd, sizeof(cmd), "openssl dgst -%s -binary -out %s.dgst msg.txt", mds[m],
                         n);
                OK_D(cmd);
                snprintf(cmd, sizeof(cmd),
                         "openssl pkeyutl -sign -inkey '%s' -pkeyopt digest:%s -in %s.dgst -out "
                         "%s.dsig",
                         eckeys[i].uri, mds[m], n, n);
                OK_P(cmd);
                snprintf(cmd, sizeof(cmd),
                         "openssl pkeyutl -verify -pubin -inkey %s-ref.pem -pkeyopt digest:%s "
                         "-in %s.dgst -sigfile %s.dsig",
                         n, mds[m], n, n);
                OK_D(cmd);
            }
        }
        OK_P("openssl pkeyutl -sign -rawin -inkey 'pkcs11:token=p11chat-test;object=erin' "
             "-in msg.txt -out erin.sig");
        OK_D("openssl pkeyutl -verify -rawin -pubin -inkey erin-ref.pem -in msg.txt -sigfile "
             "erin.sig");
        /* a signature of the wrong message does not verify */
        char *out = NULL;
        CU_ASSERT_NOT_EQUAL(run_d(&out, "openssl pkeyutl -verify -rawin -pubin -inkey "
                                        "erin-ref.pem -in erin-ref.pem -sigfile erin.sig"),
                            0);
        free(out);
    }
    order = 0;
}

/* ECDH in the token against a peer made by the default provider: both
 * sides get the same secret. */
static void test_ec_derive(void)
{
    char cmd[1024];

    for (size_t i = 0; i < 2; i++) {
        const char *n = eckeys[i].name;
        snprintf(cmd, sizeof(cmd),
                 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:%s -out peer-%s.pem && "
                 "openssl pkey -in peer-%s.pem -pubout -out peer-%s.pub.pem",
                 i == 0 ? "P-256" : "P-384", n, n, n);
        OK_D(cmd);
        snprintf(cmd, sizeof(cmd),
                 "openssl pkeyutl -derive -inkey peer-%s.pem -peerkey %s-ref.pem -out %s.s2", n, n,
                 n);
        OK_D(cmd);
        for (order = 0; order < 2; order++) {
            snprintf(cmd, sizeof(cmd),
                     "openssl pkeyutl -derive -inkey '%s' -peerkey peer-%s.pub.pem -out %s.s1",
                     eckeys[i].uri, n, n);
            OK_P(cmd);
            char a[32], b[32];
            snprintf(a, sizeof(a), "%s.s1", n);
            snprintf(b, sizeof(b), "%s.s2", n);
            CU_ASSERT_TRUE(same_files(a, b));
        }
        order = 0;
    }
    /* a peer on another curve is refused with both curves named */
    char *out = NULL;
    CU_ASSERT_NOT_EQUAL(run_p(&out, "openssl pkeyutl -derive -inkey '" PTU_ALICE_EC
                                    "' -peerkey peer-dave.pub.pem -out x.bin"),
                        0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the peer key is on curve P-384, the token key on "
                                       "P-256"));
    free(out);
}

/* A self-signed certificate made with each token key verifies. */
static void test_ec_req_x509(void)
{
    char cmd[1024];

    for (size_t i = 0; i < NECKEYS; i++) {
        const char *n = eckeys[i].name;
        snprintf(cmd, sizeof(cmd),
                 "openssl req -new -x509 -key '%s' -subj /CN=%s -days 2 -out %s.crt", eckeys[i].uri,
                 n, n);
        OK_P(cmd);
        snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s.crt %s.crt", n, n);
        OK_D(cmd);
    }
}

/* s_server with the token key, s_client of the default provider only: the
 * handshake completes, the certificate verifies, data flows. */
static int tls_once(const char *uri, const char *crt, const char *version, char **out)
{
    return tu_run(
        out,
        "cd '%s' && rm -f srv.log && (OPENSSL_CONF='%s' timeout 20 openssl s_server "
        "-accept 127.0.0.1:0 -naccept 1 -rev -ign_eof -key '%s' -cert %s -%s >srv.log "
        "2>&1 </dev/null &) && for i in $(seq 100); do grep -q '^ACCEPT' srv.log && "
        "break; sleep 0.1; done && port=$(sed -n 's/^ACCEPT 127.0.0.1:\\([0-9]*\\)$/\\1/p' "
        "srv.log) && (printf 'hello token\\n'; sleep 0.5) | OPENSSL_CONF=/dev/null "
        "timeout 10 openssl s_client -connect 127.0.0.1:$port -%s -CAfile %s "
        "-verify_return_error -brief 2>&1",
        ptu_dir(), ptu_conf(0), uri, crt, version, version, crt);
}

static void test_ec_tls(void)
{
    static const char *sigtype[] = {"Signature type: ECDSA", "Signature type: ECDSA",
                                    "Signature type: ed25519"};
    static const char *versions[] = {"tls1_3", "tls1_2"};

    for (size_t i = 0; i < NECKEYS; i++) {
        char crt[32];
        snprintf(crt, sizeof(crt), "%s.crt", eckeys[i].name);
        for (size_t v = 0; v < 2; v++) {
            char *out = NULL;
            int rc = tls_once(eckeys[i].uri, crt, versions[v], &out);
            if (rc != 0 || strstr(out, "nekot olleh") == NULL)
                fprintf(stderr, "\nTLS %s with %s => %d\n%s\n", versions[v], eckeys[i].name, rc,
                        out);
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_PTR_NOT_NULL(
                strstr(out, v == 0 ? "Protocol version: TLSv1.3" : "Protocol version: TLSv1.2"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, sigtype[i]));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verification: OK"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "nekot olleh")); /* reversed by the server */
            free(out);
        }
    }
    /* and with the RSA key, whose TLS 1.2 suites here are ECDHE ones */
    OK_P("openssl req -new -x509 -key '" PTU_ALICE "' -subj /CN=alice -days 2 -out alice.crt");
    for (size_t v = 0; v < 2; v++) {
        char *out = NULL;
        int rc = tls_once(PTU_ALICE, "alice.crt", versions[v], &out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Verification: OK"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "nekot olleh"));
        free(out);
    }
}

/* Key generation in the token with genpkey, used afterwards by its URI. */
static void test_ec_genpkey(void)
{
    char *out = NULL;
    int rc;

    /* genpkey then tries to write the private key, which stays in the token */
    rc = run_p(&out, "openssl genpkey -propquery provider=p11chat -algorithm EC -pkeyopt "
                     "group:P-521 -pkeyopt uri:pkcs11:token=p11chat-test -pkeyopt label:frank "
                     "-pkeyopt id:06 -out /dev/null");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the private key stays in the token"));
    (void)rc;
    free(out);
    rc = run_p(&out, "openssl genpkey -propquery provider=p11chat -algorithm ED25519 -pkeyopt "
                     "uri:pkcs11:token=p11chat-test -pkeyopt label:grace -out /dev/null");
    free(out);
    write_msg();
    OK_P("openssl pkey -in 'pkcs11:token=p11chat-test;object=frank' -pubout -out frank.pub.pem");
    OK_P("openssl dgst -sha512 -sign 'pkcs11:token=p11chat-test;object=frank' -out frank.sig "
         "msg.txt");
    OK_D("openssl dgst -sha512 -verify frank.pub.pem -signature frank.sig msg.txt");
    OK_P("openssl pkey -in 'pkcs11:token=p11chat-test;object=grace' -pubout -out grace.pub.pem");
    OK_P("openssl pkeyutl -sign -rawin -inkey 'pkcs11:token=p11chat-test;object=grace' "
         "-in msg.txt -out grace.sig");
    OK_D("openssl pkeyutl -verify -rawin -pubin -inkey grace.pub.pem -in msg.txt -sigfile "
         "grace.sig");
    /* a curve the token key cannot be made on */
    rc = run_p(&out, "openssl genpkey -propquery provider=p11chat -algorithm EC -pkeyopt "
                     "group:secp256k1 -pkeyopt uri:pkcs11:token=p11chat-test -out /dev/null");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "curve secp256k1: keys are made on P-256, P-384 or P-521 only"));
    free(out);
}

#ifdef P11C_FAULT_SO
/* A token without CKM_ECDSA, CKM_EDDSA or CKM_ECDH1_DERIVE (the fault module
 * answers CKR_MECHANISM_INVALID to every C_GetMechanismInfo): the message
 * names the mechanism, the token and what to do. */
static void test_ec_missing_mechanism(void)
{
    static const struct {
        const char *cmd, *mech;
    } cases[] = {
        {"openssl dgst -sha256 -sign 'pkcs11:token=p11chat-test;object=carol' -out /dev/null "
         "msg.txt",
         "ECDSA signing with token 'p11chat-test', key 'carol': token 'p11chat-test' does not "
         "offer CKM_ECDSA"},
        {"openssl pkeyutl -sign -rawin -inkey 'pkcs11:token=p11chat-test;object=erin' -in msg.txt "
         "-out /dev/null",
         "token 'p11chat-test' does not offer CKM_EDDSA"},
        {"openssl pkeyutl -derive -inkey 'pkcs11:token=p11chat-test;object=carol' -peerkey "
         "peer-carol.pub.pem -out /dev/null",
         "token 'p11chat-test' does not offer CKM_ECDH1_DERIVE"},
        {"openssl genpkey -propquery provider=p11chat -algorithm EC -pkeyopt "
         "uri:pkcs11:token=p11chat-test -out /dev/null",
         "new key: the token does not offer CKM_EC_KEY_PAIR_GEN: make P-256 keys on a token that "
         "offers it"},
    };
    FILE *f = fopen(ptu_path("openssl-nomech.cnf"), "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f,
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\np11chat = p11chat_sect\n"
            "[default_sect]\nactivate = 1\n[p11chat_sect]\nmodule = %s/p11chat.so\n"
            "pkcs11-module = %s\npkcs11-pin = file:%s\nactivate = 1\n",
            tu_provider_dir(), P11C_FAULT_SO, ptu_path("pin"));
    fclose(f);
    write_msg();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc =
            tu_run(&out, "cd '%s' && P11C_FAULT=C_GetMechanismInfo:1+:0x70 OPENSSL_CONF='%s' %s",
                   ptu_dir(), ptu_path("openssl-nomech.cnf"), cases[i].cmd);
        CU_ASSERT_NOT_EQUAL(rc, 0);
        CU_ASSERT_TRUE(rc < 128);
        if (strstr(out, cases[i].mech) == NULL)
            fprintf(stderr, "\n%s\n", out);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[i].mech));
        if (i < 3)
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "use a key on a token that offers it"));
        free(out);
    }
}
#endif

int main(void)
{
    CU_pSuite s;

    ptu_setup("provider_cmd_ec", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_cmd_ec", NULL, NULL);
    CU_add_test(s, "EC and Ed25519 keys made by pkcs11-tool", test_ec_keys_made);
    CU_add_test(s, "EC, Ed25519: pkey -pubout, named curve", test_ec_pubout);
    CU_add_test(s, "EC, Ed25519: text form", test_ec_text);
    CU_add_test(s, "storeutl: every private key, of every kind", test_ec_storeutl_private);
    CU_add_test(s, "ECDSA every SHA-2, Ed25519: sign, verify", test_ec_sign);
    CU_add_test(s, "ECDH: pkeyutl -derive", test_ec_derive);
    CU_add_test(s, "EC, Ed25519: req -x509", test_ec_req_x509);
    CU_add_test(s, "TLS 1.3 and 1.2 with each token key kind", test_ec_tls);
    CU_add_test(s, "EC, Ed25519: genpkey in the token", test_ec_genpkey);
#ifdef P11C_FAULT_SO
    CU_add_test(s, "EC, Ed25519: a token lacking the mechanism", test_ec_missing_mechanism);
#endif
    return tu_main();
}
