/* Shared by the pkcs11/ suites: modules on the test token, OpenSSL checks. */
#ifndef P11C_PKCS11_TESTHELP_H
#define P11C_PKCS11_TESTHELP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "p11c_pkcs11.h"
#include "testutil.h"

#define TH_TOKEN_URI "pkcs11:token=" TU_TOKEN_LABEL

/* SoftHSM2 by path, with the user PIN set as the module PIN when with_pin. */
P11C_MODULE *th_module(int with_pin);
/* The test token. */
P11C_TOKEN *th_token(P11C_MODULE *m);
/* An OpenSSL RSA public key made from the key's public components. */
EVP_PKEY *th_pkey(const P11C_KEY *k);
/* 1 when sig is a valid signature: pss (salt_len, md) over digest, or
 * PKCS#1 v1.5 when salt_len < 0. */
int th_verify(const P11C_KEY *k, const EVP_MD *md, int pss, int salt_len, const uint8_t *tbs,
              size_t tbslen, const uint8_t *sig, size_t siglen);
/* Encrypts with OpenSSL: pad RSA_PKCS1_OAEP_PADDING (md, label),
 * RSA_PKCS1_PADDING or RSA_NO_PADDING. *outlen in: size, out: length. */
int th_encrypt(const P11C_KEY *k, int pad, const EVP_MD *md, const uint8_t *label, size_t label_len,
               const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen);
/* Runs a shell command with the test token's environment; exit status. */
int th_sh(char **out, const char *cmd);
/* Signs SHA-256 of "msg" with PSS (SHA-256, salt 32) and verifies it: 1 on success. */
int th_sign_ok(P11C_KEY *k, P11C_ERR *err);

/* The same SoftHSM2 instance seen directly, unmanaged by p11-kit, once the
 * module under test has initialised it (session objects are the
 * application's, visible to all its sessions); the test token's slot in
 * *slot. Released with p11_kit_module_release. NULL when not found. */
CK_FUNCTION_LIST *th_raw(CK_SLOT_ID *slot);

#endif
