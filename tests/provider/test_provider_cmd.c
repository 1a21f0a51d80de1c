/*
 * The real openssl command with the provider on a private SoftHSM2 token:
 * signing through the token and verifying with the default provider,
 * encrypting with the default provider and decrypting through the token,
 * each with both provider orders in the configuration. Every run must exit 0
 * with nothing on stderr that looks like an error or a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptu.h"

static int order; /* configuration in use: 0 default first, 1 p11chat first */

#define PTU_ALICE_EC "pkcs11:token=p11chat-test;object=carol"

/* Runs `cmd` with the provider configuration; its output in *out. */
static int run_p(char **out, const char *cmd)
{
    return tu_run(out, "cd '%s' && OPENSSL_CONF='%s' %s", ptu_dir(), ptu_conf(order), cmd);
}

/* Runs with the plain default provider only (no p11chat anywhere). */
static int run_d(char **out, const char *cmd)
{
    return tu_run(out, "cd '%s' && OPENSSL_CONF=/dev/null %s", ptu_dir(), cmd);
}

static int clean(const char *out)
{
    return strstr(out, "rror") == NULL && strstr(out, "egmentation") == NULL &&
           strstr(out, "bort") == NULL && strstr(out, "ore dumped") == NULL;
}

/* Runs with the provider and asserts a clean success. */
#define OK_P(cmd)                                                                                  \
    do {                                                                                           \
        char *o_ = NULL;                                                                           \
        int rc_ = run_p(&o_, cmd);                                                                 \
        if (rc_ != 0 || !clean(o_))                                                                \
            fprintf(stderr, "\n[order %d] %s\n=> %d\n%s\n", order, cmd, rc_, o_);                  \
        CU_ASSERT_EQUAL(rc_, 0);                                                                   \
        CU_ASSERT_TRUE(clean(o_));                                                                 \
        free(o_);                                                                                  \
    } while (0)
#define OK_D(cmd)                                                                                  \
    do {                                                                                           \
        char *o_ = NULL;                                                                           \
        int rc_ = run_d(&o_, cmd);                                                                 \
        if (rc_ != 0 || !clean(o_))                                                                \
            fprintf(stderr, "\n[default] %s\n=> %d\n%s\n", cmd, rc_, o_);                          \
        CU_ASSERT_EQUAL(rc_, 0);                                                                   \
        CU_ASSERT_TRUE(clean(o_));                                                                 \
        free(o_);                                                                                  \
    } while (0)

static int count_in(const char *out, const char *what)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static int same_files(const char *a, const char *b)
{
    return tu_run(NULL, "cmp '%s' '%s'", ptu_path(a), ptu_path(b)) == 0;
}

static void write_msg(void)
{
    FILE *f = fopen(ptu_path("msg.txt"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("The quick brown fox jumps over the lazy dog.\n", f);
    fclose(f);
}

/* -pubout writes the SubjectPublicKeyInfo the default provider writes, for
 * every URI type; the reference is the public key read by pkcs11-tool. */
static void test_pubout(void)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module '%s' --token-label p11chat-test --read-object --type pubkey "
             "--label alice -o alice-ref.der >/dev/null",
             tu_softhsm_module());
    CU_ASSERT_EQUAL_FATAL(tu_run(NULL, "cd '%s' && %s", ptu_dir(), cmd), 0);
    OK_D("openssl pkey -pubin -inform DER -in alice-ref.der -pubout -out alice-ref.pem");
    for (order = 0; order < 2; order++) {
        OK_P("openssl pkey -in '" PTU_ALICE "' -pubout -out alice.pub.pem");
        CU_ASSERT_TRUE(same_files("alice.pub.pem", "alice-ref.pem"));
        OK_P("openssl pkey -in '" PTU_ALICE ";type=private' -pubout -out alice.pub2.pem");
        CU_ASSERT_TRUE(same_files("alice.pub2.pem", "alice-ref.pem"));
        OK_P("openssl pkey -pubin -in '" PTU_ALICE ";type=public' -pubout -out alice.pub3.pem");
        CU_ASSERT_TRUE(same_files("alice.pub3.pem", "alice-ref.pem"));
        OK_P("openssl pkey -in '" PTU_ALICE "' -pubout -outform DER -out alice.pub.der");
        CU_ASSERT_TRUE(same_files("alice.pub.der", "alice-ref.der"));
        /* PKCS#1 RSAPublicKey, as the default provider writes it */
        OK_P("openssl rsa -in '" PTU_ALICE "' -RSAPublicKey_out -out alice.rsapub.pem");
        OK_D("openssl rsa -pubin -in alice-ref.pem -RSAPublicKey_out -out alice-ref.rsapub.pem");
        CU_ASSERT_TRUE(same_files("alice.rsapub.pem", "alice-ref.rsapub.pem"));
    }
    order = 0;
}

/* A public key needs no PIN: a configuration without one still reads it. */
static void test_pubout_without_pin(void)
{
    char *out = NULL;
    int rc = tu_run(&out,
                    "cd '%s' && OPENSSL_CONF='%s' openssl pkey -pubin -in '" PTU_ALICE
                    ";type=public' -pubout -out alice.nopin.pem",
                    ptu_dir(), ptu_conf(2));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(clean(out));
    free(out);
    CU_ASSERT_TRUE(same_files("alice.nopin.pem", "alice-ref.pem"));
    /* the pair's URI too, asked as a public key or not */
    for (int pubin = 0; pubin < 2; pubin++) {
        rc = tu_run(&out,
                    "cd '%s' && OPENSSL_CONF='%s' openssl pkey %s -in '" PTU_ALICE
                    "' -pubout -out alice.nopin2.pem",
                    ptu_dir(), ptu_conf(2), pubin ? "-pubin" : "");
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_TRUE(clean(out));
        free(out);
        CU_ASSERT_TRUE(same_files("alice.nopin2.pem", "alice-ref.pem"));
    }
}

static void test_storeutl(void)
{
    for (order = 0; order < 2; order++) {
        char *out = NULL;
        int rc = run_p(&out, "openssl storeutl -keys 'pkcs11:token=p11chat-test'");
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Total found: 2"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "0: Pkey"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "1: Pkey"));
        CU_ASSERT_TRUE(clean(out));
        if (rc != 0 || strstr(out, "Total found: 2") == NULL)
            fprintf(stderr, "%s\n", out);
        free(out);
    }
    order = 0;
}

static void test_req_x509_verify(void)
{
    for (order = 0; order < 2; order++) {
        char *out = NULL;
        OK_P("openssl req -new -x509 -key '" PTU_ALICE "' -subj /CN=alice -days 2 -sha256 "
             "-out ca.pem");
        OK_D("openssl verify -CAfile ca.pem ca.pem > verify.out");
        CU_ASSERT_EQUAL(tu_run(&out, "cat '%s'", ptu_path("verify.out")), 0);
        CU_ASSERT_STRING_EQUAL(out, "ca.pem: OK\n");
        free(out);
        /* The same with PSS */
        OK_P("openssl req -new -x509 -key '" PTU_ALICE "' -subj /CN=alice-pss -days 2 -sha256 "
             "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -out ca-pss.pem");
        OK_D("openssl verify -CAfile ca-pss.pem ca-pss.pem");
        CU_ASSERT_EQUAL(run_d(&out, "openssl x509 -in ca-pss.pem -noout -text"), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Signature Algorithm: rsassaPss"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Salt Length: 0x20"));
        free(out);
    }
    order = 0;
}

/* A CSR signed by bob's token key, a certificate for it issued by alice's. */
static void test_x509_signing(void)
{
    for (order = 0; order < 2; order++) {
        OK_P("openssl req -new -x509 -key '" PTU_ALICE "' -subj /CN=alice -days 2 -out ca.pem");
        OK_P("openssl req -new -key '" PTU_BOB "' -subj /CN=bob -out bob.csr");
        OK_D("openssl req -verify -in bob.csr -noout");
        OK_P("openssl x509 -req -in bob.csr -CA ca.pem -CAkey '" PTU_ALICE
             "' -set_serial 7 -days 2 -out bob.pem");
        OK_D("openssl verify -CAfile ca.pem bob.pem");
        OK_P("openssl x509 -req -in bob.csr -signkey '" PTU_BOB "' -days 2 -out bob-self.pem");
        OK_D("openssl verify -CAfile bob-self.pem bob-self.pem");
        OK_P("openssl x509 -new -key '" PTU_BOB "' -subj /CN=bob-new -days 2 -out bob-new.pem");
        OK_D("openssl verify -CAfile bob-new.pem bob-new.pem");
    }
    order = 0;
}

static void test_dgst(void)
{
    static const char *mds[] = {"sha1", "sha224", "sha256", "sha384", "sha512"};
    char cmd[1024];

    write_msg();
    OK_P("openssl pkey -in '" PTU_ALICE "' -pubout -out alice.pub.pem");
    for (order = 0; order < 2; order++) {
        for (size_t i = 0; i < 5; i++) {
            snprintf(cmd, sizeof(cmd),
                     "openssl dgst -%s -sign '" PTU_ALICE "' -out sig.bin msg.txt", mds[i]);
            OK_P(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl dgst -%s -verify alice.pub.pem -signature sig.bin msg.txt", mds[i]);
            OK_D(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl dgst -%s -sign '" PTU_ALICE "' -sigopt rsa_padding_mode:pss "
                     "-sigopt rsa_pss_saltlen:32 -out sig.pss msg.txt",
                     mds[i]);
            OK_P(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl dgst -%s -verify alice.pub.pem -sigopt rsa_padding_mode:pss "
                     "-sigopt rsa_pss_saltlen:32 -signature sig.pss msg.txt",
                     mds[i]);
            OK_D(cmd);
        }
        /* salt lengths max and auto (verification discovers them) */
        OK_P("openssl dgst -sha256 -sign '" PTU_ALICE "' -sigopt rsa_padding_mode:pss "
             "-sigopt rsa_pss_saltlen:max -out sig.max msg.txt");
        OK_D("openssl dgst -sha256 -verify alice.pub.pem -sigopt rsa_padding_mode:pss "
             "-sigopt rsa_pss_saltlen:auto -signature sig.max msg.txt");
        /* verification through the provider with the token key, too */
        OK_P("openssl dgst -sha256 -prverify '" PTU_ALICE "' -sigopt rsa_padding_mode:pss "
             "-sigopt rsa_pss_saltlen:auto -signature sig.max msg.txt");
    }
    order = 0;
}

static void test_cms(void)
{
    char *out = NULL;

    write_msg();
    for (order = 0; order < 2; order++) {
        OK_P("openssl req -new -x509 -key '" PTU_ALICE "' -subj /CN=alice -days 2 -out ca.pem");
        OK_P("openssl cms -sign -binary -in msg.txt -signer ca.pem -inkey '" PTU_ALICE
             "' -nodetach -outform PEM -out msg.cms");
        OK_D("openssl cms -verify -in msg.cms -inform PEM -CAfile ca.pem -out msg.out");
        CU_ASSERT_TRUE(same_files("msg.txt", "msg.out"));
        OK_P("openssl cms -sign -binary -in msg.txt -signer ca.pem -inkey '" PTU_ALICE
             "' -keyopt rsa_padding_mode:pss -nodetach -outform PEM -out msg-pss.cms");
        OK_D("openssl cms -verify -in msg-pss.cms -inform PEM -CAfile ca.pem -out msg.out");
        CU_ASSERT_TRUE(same_files("msg.txt", "msg.out"));
    }
    (void)out;
    order = 0;
}

static void test_pkeyutl(void)
{
    static const char *opts[] = {
        "-pkeyopt rsa_padding_mode:oaep",
        "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256",
        "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha512 -pkeyopt rsa_mgf1_md:sha1",
        "-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_label:0102030405",
        "-pkeyopt rsa_padding_mode:pkcs1",
        "",
    };
    char cmd[1024];

    write_msg();
    OK_P("openssl pkey -in '" PTU_ALICE "' -pubout -out alice.pub.pem");
    for (order = 0; order < 2; order++) {
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
            tu_run(NULL, "rm -f '%s' '%s'", ptu_path("ct.bin"), ptu_path("pt.txt"));
            snprintf(cmd, sizeof(cmd),
                     "openssl pkeyutl -encrypt -pubin -inkey alice.pub.pem %s -in msg.txt "
                     "-out ct.bin",
                     opts[i]);
            OK_D(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl pkeyutl -decrypt -inkey '" PTU_ALICE "' %s -in ct.bin -out pt.txt",
                     opts[i]);
            OK_P(cmd);
            CU_ASSERT_TRUE(same_files("msg.txt", "pt.txt"));
            /* encryption with the token key's public half, through the provider */
            snprintf(cmd, sizeof(cmd),
                     "openssl pkeyutl -encrypt -inkey '" PTU_ALICE "' %s -in msg.txt -out ct2.bin",
                     opts[i]);
            OK_P(cmd);
            snprintf(cmd, sizeof(cmd),
                     "openssl pkeyutl -decrypt -inkey '" PTU_ALICE "' %s -in ct2.bin -out pt2.txt",
                     opts[i]);
            OK_P(cmd);
            CU_ASSERT_TRUE(same_files("msg.txt", "pt2.txt"));
        }
        /* signing a precomputed digest (EVP_PKEY_sign), PKCS#1 and PSS */
        OK_D("openssl dgst -sha256 -binary -out msg.dgst msg.txt");
        OK_P("openssl pkeyutl -sign -inkey '" PTU_ALICE "' -pkeyopt digest:sha256 -in msg.dgst "
             "-out dg.sig");
        OK_D("openssl pkeyutl -verify -pubin -inkey alice.pub.pem -pkeyopt digest:sha256 "
             "-in msg.dgst -sigfile dg.sig");
        OK_P("openssl pkeyutl -sign -inkey '" PTU_ALICE "' -pkeyopt digest:sha256 "
             "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -in msg.dgst "
             "-out dg.pss");
        OK_D("openssl pkeyutl -verify -pubin -inkey alice.pub.pem -pkeyopt digest:sha256 "
             "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -in msg.dgst "
             "-sigfile dg.pss");
        /* signing and verifying a message with pkeyutl */
        OK_P("openssl pkeyutl -sign -inkey '" PTU_ALICE "' -in msg.txt -rawin -digest sha256 "
             "-out pk.sig");
        OK_D("openssl pkeyutl -verify -pubin -inkey alice.pub.pem -in msg.txt -rawin -digest "
             "sha256 -sigfile pk.sig");
    }
    order = 0;
}

/* The private key never leaves: asking for it fails cleanly. */
static void test_private_refused(void)
{
    for (order = 0; order < 2; order++) {
        char *out = NULL;
        int rc = run_p(&out, "openssl pkey -in '" PTU_ALICE "' -out priv.pem");
        CU_ASSERT_NOT_EQUAL(rc, 0);
        CU_ASSERT_TRUE(rc < 128);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "private key not exportable"));
        CU_ASSERT_PTR_NULL(strstr(out, "egmentation"));
        CU_ASSERT_PTR_NULL(strstr(out, "BEGIN"));
        free(out);
        /* the text form names the key and prints nothing private */
        rc = run_p(&out, "openssl pkey -in '" PTU_ALICE "' -text -noout");
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "RSA private key in a PKCS#11 token"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "Size: 2048 bits"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "token=p11chat-test;id=%01;object=alice\n"));
        CU_ASSERT_PTR_NULL(strstr(out, "privateExponent"));
        CU_ASSERT_PTR_NULL(strstr(out, "prime1"));
        free(out);
        /* the public half prints */
        OK_P("openssl pkey -in '" PTU_ALICE "' -text_pub -noout");
    }
    order = 0;
}

/* Zero configuration beyond loading the provider: p11-kit's proxy finds
 * SoftHSM2's registered module (SOFTHSM2_CONF points at our token). */
static void test_zero_config(void)
{
    char *out = NULL;
    int rc = tu_run(&out,
                    "cd '%s' && OPENSSL_CONF=/dev/null openssl pkey -provider-path '%s' -provider "
                    "p11chat -provider default -in '" PTU_ALICE ";type=public' -pubin -pubout "
                    "-out alice.proxy.pem",
                    ptu_dir(), tu_provider_dir());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(clean(out));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    CU_ASSERT_TRUE(same_files("alice.proxy.pem", "alice-ref.pem"));
    /* and signing, PIN from the URI's pin-source */
    write_msg();
    rc = tu_run(&out,
                "cd '%s' && OPENSSL_CONF=/dev/null openssl dgst -sha256 -provider-path '%s' "
                "-provider default -provider p11chat -sign '" PTU_ALICE
                "?pin-source=file:%s/pin' -out sig0.bin msg.txt",
                ptu_dir(), tu_provider_dir(), ptu_dir());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(clean(out));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    free(out);
    OK_D("openssl dgst -sha256 -verify alice-ref.pem -signature sig0.bin msg.txt");
    /* listing the provider is cheap and loads no PKCS#11 module */
    rc = tu_run(&out,
                "OPENSSL_CONF=/dev/null P11CHAT_PKCS11_MODULE=/nonexistent/module.so openssl list "
                "-providers -provider-path '%s' -provider p11chat",
                tu_provider_dir());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "p11chat"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "status: active"));
    free(out);
    /* nothing the token's own OpenSSL could pick up: no digest, cipher, MAC,
     * KDF or random generator comes from this provider */
    rc = tu_run(&out,
                "OPENSSL_CONF=/dev/null openssl list -provider-path '%s' -provider p11chat "
                "-provider default -digest-algorithms -cipher-algorithms -mac-algorithms "
                "-kdf-algorithms -random-generators -kem-algorithms",
                tu_provider_dir());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SHA2-256"));
    CU_ASSERT_PTR_NULL(strstr(out, "p11chat"));
    free(out);
    rc = tu_run(&out,
                "OPENSSL_CONF=/dev/null openssl list -provider-path '%s' -provider p11chat "
                "-signature-algorithms -asymcipher-algorithms -key-managers -store-loaders "
                "-key-exchange-algorithms",
                tu_provider_dir());
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "pkcs11 @ p11chat"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ECDH @ p11chat"));
    /* RSA, ECDSA, ED25519, ED448 signatures; RSA decryption; RSA, RSA-PSS,
     * EC, ED25519, ED448 keys; the store; ECDH */
    CU_ASSERT_EQUAL(count_in(out, "@ p11chat"), 12);
    free(out);
}

/* Errors reach the user with the PKCS#11 reason. */
static void test_errors(void)
{
    char *out = NULL;
    int rc = run_p(&out, "openssl pkey -in 'pkcs11:token=p11chat-test;object=nobody' -pubout");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(rc < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_NO_KEY"));
    free(out);
    rc = run_p(&out, "openssl pkey -in 'pkcs11:token=no-such-token;object=alice' -pubout");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(rc < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11C_NO_TOKEN"));
    free(out);
    write_msg();
    rc = run_p(&out, "openssl dgst -sha256 -sign '" PTU_ALICE "?pin-value=9999' msg.txt");
    CU_ASSERT_NOT_EQUAL(rc, 0);
    CU_ASSERT_TRUE(rc < 128);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CKR_PIN_INCORRECT"));
    free(out);
}

/* ---- EC and Ed25519 keys ----------------------------------------------------- */

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

    ptu_setup("provider_cmd", 1);
    CU_initialize_registry();
    s = CU_add_suite("provider_cmd", NULL, NULL);
    CU_add_test(s, "pkey -pubout, every URI type, exact bytes", test_pubout);
    CU_add_test(s, "public key without a PIN", test_pubout_without_pin);
    CU_add_test(s, "storeutl -keys", test_storeutl);
    CU_add_test(s, "req -new -x509 and verify", test_req_x509_verify);
    CU_add_test(s, "x509 signing flows", test_x509_signing);
    CU_add_test(s, "dgst -sign PKCS#1 and PSS", test_dgst);
    CU_add_test(s, "cms -sign and -verify", test_cms);
    CU_add_test(s, "pkeyutl encrypt and decrypt", test_pkeyutl);
    CU_add_test(s, "private key refused", test_private_refused);
    CU_add_test(s, "zero configuration via p11-kit proxy", test_zero_config);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "EC and Ed25519 keys made by pkcs11-tool", test_ec_keys_made);
    CU_add_test(s, "EC, Ed25519: pkey -pubout, named curve", test_ec_pubout);
    CU_add_test(s, "EC, Ed25519: text form", test_ec_text);
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
