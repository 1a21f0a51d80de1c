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

/* The helpers of ptu.h, in this file's words: `order` picks the
 * configuration of run_p and OK_P. */
#define run_p(out, cmd) ptu_run_conf((out), order, (cmd))
#define run_d           ptu_run_default
#define clean           ptu_clean
#define count_in        ptu_count_in
#define same_files      ptu_same_files
#define write_msg       ptu_write_msg
#define OK_P(cmd)       PTU_OK_CONF(order, cmd)
#define OK_D(cmd)       PTU_OK_DEFAULT(cmd)

/* -pubout writes the SubjectPublicKeyInfo the default provider writes, for
 * every URI type; the reference is the public key read by pkcs11-tool. */
static void test_pubout(void)
{
    char cmd[2048];

    /* The reference: read by pkcs11-tool from SoftHSM2; written by openssl
     * when it made the key imported into NSS (pkcs11-tool cannot give NSS
     * its initialisation arguments). */
    if (tu_token_is_nss())
        snprintf(cmd, sizeof(cmd), "cp alice.pub.der alice-ref.der");
    else
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
    if (tu_token_is_nss()) {
        /* An NSS database is not a module registered with p11-kit. */
        fprintf(stderr, "skipped on NSS: p11-kit's proxy does not know the test database\n");
        CU_PASS("skipped on NSS");
        return;
    }
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
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "P11CHAT-ECDSA @ p11chat"));
    /* RSA, ECDSA, ED25519, ED448 signatures; RSA decryption; RSA, RSA-PSS,
     * EC, ED25519, ED448 keys; the store; ECDH; and the six operations again
     * under the names our key managers give libcrypto (P11CHAT-RSA for
     * signatures and for decryption) */
    CU_ASSERT_EQUAL(count_in(out, "@ p11chat"), 18);
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

/* OAEP-SHA256 with the host fallback off: NSS decrypts it in the token,
 * SoftHSM2 2.6.1 (SHA-1 OAEP only) refuses it (CKR_ARGUMENTS_BAD). */
static void test_oaep_sha256_native(void)
{
    char *out = NULL;
    write_msg();
    OK_D("openssl pkeyutl -encrypt -pubin -inkey alice-ref.pem -pkeyopt rsa_padding_mode:oaep "
         "-pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in msg.txt -out msg.oaep256");
    int rc = tu_run(&out,
                    "cd '%s' && OPENSSL_CONF='%s' openssl pkeyutl -decrypt -inkey '" PTU_ALICE
                    "' -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt "
                    "rsa_mgf1_md:sha256 -in msg.oaep256 -out msg.back",
                    ptu_dir(), ptu_conf(3));
    if (tu_token_is_nss()) {
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_TRUE(same_files("msg.txt", "msg.back"));
    } else {
        CU_ASSERT_NOT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "C_DecryptInit on token"));
    }
    if ((rc == 0) != tu_token_is_nss())
        fprintf(stderr, "%s\n", out);
    free(out);
}

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
    CU_add_test(s, "OAEP-SHA256, fallback off", test_oaep_sha256_native);
    return tu_main();
}
