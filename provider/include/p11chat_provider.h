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
/* utf8 "decrypt": a session object that only decrypts (a P11C session key);
 * "any" (the default): a session object that signs and decrypts. Token
 * objects (persistent) always only sign. */
#define P11CHAT_PKEY_PARAM_USAGE "usage"

#endif
