/*
 * Public names of the p11chat OpenSSL provider (p11chat.so): the parameters
 * an application can pass to it. Only OpenSSL headers are needed to use them.
 */
#ifndef P11CHAT_PROVIDER_H
#define P11CHAT_PROVIDER_H

/* The provider's name and the property query selecting its algorithms. */
#define P11CHAT_PROVIDER_NAME  "p11chat"
#define P11CHAT_PROVIDER_PROPQ "provider=p11chat"

/*
 * Configuration keys, in the provider's section of an OpenSSL configuration
 * file. Each has an environment variable giving its value when the section
 * does not (OpenSSL 3.0 has no way to pass parameters to OSSL_PROVIDER_load).
 */
#define P11CHAT_CONF_MODULE        "pkcs11-module"    /* env P11CHAT_PKCS11_MODULE */
#define P11CHAT_CONF_PIN           "pkcs11-pin"       /* env P11CHAT_PKCS11_PIN ("file:PATH") */
#define P11CHAT_CONF_TOKEN         "pkcs11-token"     /* env P11CHAT_PKCS11_TOKEN */
#define P11CHAT_CONF_OAEP_FALLBACK "oaep-fallback"    /* env P11CHAT_OAEP_FALLBACK */
#define P11CHAT_CONF_COPY_KEYS     "pkcs11-copy-keys" /* env P11CHAT_PKCS11_COPY_KEYS */
/* Tokens as they are (docs/provider.md: smartcards, PIN sources, NSS). */
#define P11CHAT_CONF_INIT_ARGS                                                                     \
    "pkcs11-module-init-args" /* env P11CHAT_PKCS11_MODULE_INIT_ARGS: C_Initialize's pReserved */
#define P11CHAT_CONF_PIN_CACHE "pkcs11-pin-cache" /* env P11CHAT_PKCS11_PIN_CACHE: yes/no */
#define P11CHAT_CONF_PIN_FINAL_TRY                                                                 \
    "pkcs11-pin-final-try"                            /* env P11CHAT_PKCS11_PIN_FINAL_TRY: yes/no */
#define P11CHAT_CONF_PSS_ON_HOST "pkcs11-pss-on-host" /* env P11CHAT_PKCS11_PSS_ON_HOST: yes/no */

/*
 * Key generation parameters (EVP_PKEY_CTX_set_params on a context made with
 * EVP_PKEY_CTX_new_from_name(libctx, "RSA", "provider=p11chat")), besides
 * OpenSSL's own "bits" (2048, 3072 or 4096) and "e" (65537 only).
 */
#define P11CHAT_PKEY_PARAM_URI   "uri"   /* utf8: pkcs11: URI of the token (and object/id) */
#define P11CHAT_PKEY_PARAM_LABEL "label" /* utf8: CKA_LABEL */
#define P11CHAT_PKEY_PARAM_ID    "id"    /* octet string, or utf8 hex: CKA_ID */
#define P11CHAT_PKEY_PARAM_PERSISTENT                                                              \
    "persistent" /* int or utf8 yes/no: token object or session object */
#define P11CHAT_PKEY_PARAM_PER_USE_PIN                                                             \
    "per-use-pin" /* int or utf8 yes/no: CKA_ALWAYS_AUTHENTICATE, the PIN for every use */
/* utf8 "sign": a key that only signs (a P11C long-term key); "decrypt": one
 * that only decrypts (a P11C session key); "any" (the default): both. */
#define P11CHAT_PKEY_PARAM_USAGE "usage"

#endif
