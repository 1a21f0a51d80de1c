/*
 * Internal interface of the p11chat provider: the provider context, the key
 * object shared by every operation, hash descriptions and error raising.
 */
#ifndef P11C_PROV_H
#define P11C_PROV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "p11c_pkcs11.h"
#include "p11chat_provider.h"

/* A dispatch entry whose function type the compiler checks. */
#define P11C_DISPATCH(OP, op, NAME, name, fn)                                                      \
    {                                                                                              \
        OSSL_FUNC_##OP##_##NAME, _Generic(&(fn), OSSL_FUNC_##op##_##name##_fn *                    \
                                          : (void (*)(void))(fn))                                  \
    }
#define P11C_DISPATCH_END                                                                          \
    {                                                                                              \
        0, NULL                                                                                    \
    }

/* One name list per key type (style: one header of algorithm names). */
#define P11C_NAMES_RSA     "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define P11C_NAMES_RSA_PSS "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10"
#define P11C_NAMES_EC      "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define P11C_NAMES_ECDSA   "ECDSA"
#define P11C_NAMES_ECDH    "ECDH"
#define P11C_NAMES_ED25519 "ED25519:1.3.101.112"
#define P11C_NAMES_ED448   "ED448:1.3.101.113"
#define P11C_PROPS         "provider=p11chat"

/* The names our key managers give libcrypto for an operation on our keys
 * (query_operation_name). Only this provider implements them, so the first
 * fetch in EVP_DigestSignInit, EVP_PKEY_sign_init, ..._derive_init and
 * ..._decrypt_init finds our implementation at once. With the standard name
 * ("ECDSA") the default provider's comes first, libcrypto asks our key
 * manager to export the key into it, is refused (the private half stays in
 * the token), and fetches again from us: a fifth of ECDSA's cost on the
 * host, per signature. The same implementations stay registered under the
 * standard names too, for applications that fetch those. */
#define P11C_OP_RSA     "P11CHAT-RSA"
#define P11C_OP_ECDSA   "P11CHAT-ECDSA"
#define P11C_OP_ECDH    "P11CHAT-ECDH"
#define P11C_OP_ED25519 "P11CHAT-ED25519"
#define P11C_OP_ED448   "P11CHAT-ED448"

/* Reasons of our own; PKCS#11 reasons are derived from the CK_RV. */
enum {
    P11C_R_PRIVATE_EXPORT = 1, /* "private key not exportable" */
    P11C_R_BAD_PARAM,          /* "invalid parameter" */
    P11C_R_UNSUPPORTED,        /* "unsupported" */
    P11C_R_INTERNAL,           /* "internal error" */
    P11C_R_SHUTDOWN,           /* "provider shut down" */
    P11C_R_NO_KEY,             /* "no key" */
    P11C_R_BUFFER_SMALL,       /* "output buffer too small" */
    P11C_R_BAD_SIGNATURE,      /* "bad signature" */
};

typedef struct p11c_prov P11C_PROV;

struct p11c_prov {
    const OSSL_CORE_HANDLE *handle;
    OSSL_FUNC_core_new_error_fn *c_new_error;
    OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *c_vset_error;
    OSSL_FUNC_BIO_write_ex_fn *c_bio_write_ex;
    OSSL_FUNC_BIO_read_ex_fn *c_bio_read_ex;

    /* Configuration, from the provider's section or the environment. */
    char *module_spec; /* NULL: p11-kit's proxy */
    char *pin;         /* a value, or "file:PATH"; never logged */
    char *token_uri;   /* default token for key generation */
    int oaep_fallback;
    int copy_keys; /* private keys through session copies (default yes) */
    /* Tokens as they are (conf_tokens.c). */
    char *init_args;      /* C_Initialize's pReserved; NULL: none */
    int pin_cache;        /* keep a PIN once known, per token (default yes) */
    int pin_final_try;    /* log in even on the last PIN try (default no) */
    int pss_on_host;      /* PSS encoded on the host for tokens without it (default yes) */
    int pss_on_host_told; /* said once, on stderr */

    pthread_mutex_t lock;
    P11C_MODULE *module; /* loaded on first use */
    OSSL_LIB_CTX *sw;    /* private library context holding the default provider */
    OSSL_PROVIDER *sw_default;
    EVP_MD *md[5];          /* fetched from sw on first use, by hash index */
    P11C_TOKEN *last_token; /* token of the last key loaded (default for keygen) */
    /* Read by every thread without the lock: atomics. */
    atomic_int finalised;         /* the module was finalised at exit: no more PKCS#11 */
    atomic_int oaep_native[5][5]; /* per (hash, mgf1): 0 unknown, 1 token, -1 host decoding */
    struct p11c_prov *next;
};

/* ---- Hashes --------------------------------------------------------------- */

typedef struct p11c_hash {
    int index;                  /* into P11C_PROV.md */
    const char *name;           /* OpenSSL's canonical name */
    size_t len;                 /* output bytes */
    CK_MECHANISM_TYPE ckm;      /* CKM_SHA256 ... */
    CK_RSA_PKCS_MGF_TYPE mgf;   /* CKG_MGF1_SHA256 ... */
    CK_MECHANISM_TYPE rsa_pkcs; /* hash-and-sign: CKM_SHA256_RSA_PKCS ... */
    CK_MECHANISM_TYPE rsa_pss;  /* hash-and-sign: CKM_SHA256_RSA_PKCS_PSS ... */
    const uint8_t *oid;         /* DER of the OID (tag and length included) */
    size_t oidlen;
    const uint8_t *rsa_oid; /* sha*WithRSAEncryption */
    const uint8_t *diginfo; /* PKCS#1 v1.5 DigestInfo prefix */
    size_t diginfolen;
} P11C_HASH;

/* By any OpenSSL name ("SHA256", "SHA2-256", "sha-256", OID); NULL if unknown. */
const P11C_HASH *p11c_hash_by_name(const char *name);
const P11C_HASH *p11c_hash_by_len(size_t len);
/* The hash a utf8 parameter names; NULL with an error raised when unknown
 * ("digest X is not supported" followed by `what`). */
const P11C_HASH *p11c_hash_from_param(P11C_PROV *prov, const OSSL_PARAM *p, const char *what);
/* The digest fetched from the private context (never from this provider). */
const EVP_MD *p11c_prov_md(P11C_PROV *prov, const P11C_HASH *h);

/* ---- Provider ------------------------------------------------------------- */

/* The module, loaded on first use; NULL with an error raised. */
P11C_MODULE *p11c_prov_module(P11C_PROV *prov, const char *what);
/* The private library context with OpenSSL's default provider. */
OSSL_LIB_CTX *p11c_prov_sw(P11C_PROV *prov);
/* 1 while PKCS#11 may still be called; else raises and returns 0. */
int p11c_prov_alive(P11C_PROV *prov);
/* "yes"/"no", "true"/"false", "on"/"off", "1"/"0" (any case): 1 or 0; else -1. */
int p11c_parse_bool(const char *s);
/* The configuration value read into `got`, else the environment variable. */
const char *p11c_conf_value(const OSSL_PARAM *got, const char *env);
/* Reads the keys of conf_tokens.c into prov; 0 with an error raised on a bad value. */
int p11c_conf_tokens(P11C_PROV *prov, OSSL_FUNC_core_get_params_fn *get,
                     const OSSL_CORE_HANDLE *handle);
/* Applies them to a freshly loaded module. */
void p11c_conf_tokens_apply(P11C_PROV *prov, P11C_MODULE *m);
void p11c_conf_tokens_free(P11C_PROV *prov);

/* Raises one error into OpenSSL's queue: the CKR name as reason, the whole
 * context as text. */
void p11c_raise_rv(P11C_PROV *prov, const char *file, int line, const char *func,
                   const P11C_ERR *err);
void p11c_raise(P11C_PROV *prov, const char *file, int line, const char *func, int reason,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define P11C_RAISE_RV(prov, err) p11c_raise_rv((prov), __FILE__, __LINE__, __func__, (err))
#define P11C_RAISE(prov, reason, ...)                                                              \
    p11c_raise((prov), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)
int p11c_reason_of_rv(CK_RV rv);

/* ---- Keys ----------------------------------------------------------------- */

#define P11C_PKEY_MAGIC 0x70313163u

/* Key kinds (P11C_PKEY.kind); P11C_PKIND_, as protocol/ has its own P11C_KIND_. */
enum { P11C_PKIND_RSA = 0, P11C_PKIND_EC, P11C_PKIND_ED25519, P11C_PKIND_ED448 };

typedef struct p11c_pkey {
    uint32_t magic;
    int refs;
    P11C_PROV *prov;
    int kind;        /* P11C_PKIND_* */
    P11C_KEY *key;   /* token key; NULL for a public key held on the host only */
    EVP_PKEY *pub;   /* the public half, in prov->sw, for verify/encrypt/encode */
    int public_only; /* the URI or the import named the public half only */
    int priv;        /* private half: -1 not asked yet, 0 absent, 1 present */
    unsigned int bits;
    int mechs; /* P11C_MECHS_*: what the token signs digests with, once asked */
    /* Other mechanisms asked about once (bit n: the n-th of p11c_sig's
     * list), and those the token offers. */
    int asked, offered;
    /* EC keys held on the host (an ECDH peer): set when imported, so that
     * each exchange with the same peer asks OpenSSL nothing. */
    const char *curve; /* NIST name, NULL when explicit parameters or unknown */
    /* An EC or Edwards key pair given through OpenSSL (EVP_PKEY_fromdata
     * with a private key): held in `pub`, used with the default provider.
     * A PKCS#11 module that is itself an OpenSSL application (SoftHSM2's
     * EdDSA) makes such keys, and finds ours when p11chat is the first
     * provider of its library context. */
    int host_private;
    uint8_t point[133]; /* uncompressed */
    size_t pointlen;
    atomic_int oaep_label; /* the token checks OAEP labels: 0 not asked, 1 yes, -1 no */
} P11C_PKEY;

#define P11C_MECHS_KNOWN 1
#define P11C_MECHS_PSS   2 /* CKM_RSA_PKCS_PSS */
#define P11C_MECHS_PKCS  4 /* CKM_RSA_PKCS */

P11C_PKEY *p11c_pkey_new(P11C_PROV *prov);
/* Wraps a token key (takes the reference); public_only for type=public. */
P11C_PKEY *p11c_pkey_from_key(P11C_PROV *prov, P11C_KEY *key, int public_only);
/* Sets the public half from big-endian n and e (host only). */
int p11c_pkey_set_public(P11C_PKEY *pk, const uint8_t *n, size_t nlen, const uint8_t *e,
                         size_t elen);
/* Sets the public half of an EC ("P-256", ...) or Edwards ("Ed25519",
 * "Ed448") key from its raw point. */
int p11c_pkey_set_ec_public(P11C_PKEY *pk, const char *curve, const uint8_t *pt, size_t ptlen);
/* Sets the public half from another provider's parameters (import), with
 * OpenSSL's key type name ("EC", "ED25519", ...); a key pair is held on the
 * host (host_private). */
int p11c_pkey_import_public(P11C_PKEY *pk, const char *type, int kind, int selection,
                            const OSSL_PARAM params[]);
/* Hands the public half's parameters to cb (export). */
int p11c_pkey_export_public(P11C_PKEY *pk, OSSL_CALLBACK *cb, void *cbarg);
/* The key's pkcs11: URI (token, object, id, type), OPENSSL_free'd; NULL for
 * a key held on the host. */
char *p11c_pkey_uri(const P11C_PKEY *pk);
P11C_PKEY *p11c_pkey_up_ref(P11C_PKEY *pk);
void p11c_pkey_free(P11C_PKEY *pk);
/* 1 when a private half exists (may log in once when a PIN is known), in the
 * token or (host_private) on the host. */
int p11c_pkey_has_private(P11C_PKEY *pk);
/* Modulus bytes (RSA), the largest DER signature (ECDSA), or the signature
 * bytes (EdDSA). */
size_t p11c_pkey_size(const P11C_PKEY *pk);
/* 1 when the key's token offers mech with flags (asked once per key, in
 * signature.c); else raises what is missing, on which token, for what, and
 * what to do. 1 for keys held on the host. */
int p11c_pkey_token_offers(P11C_PKEY *pk, CK_MECHANISM_TYPE mech, CK_FLAGS flags, const char *what);
/* A short "token 'x', key 'y'" description for errors. */
const char *p11c_pkey_describe(const P11C_PKEY *pk, char *buf, size_t len);

/* ---- Key management: what every kind shares (keymgmt.c) ------------------- */

OSSL_FUNC_keymgmt_new_fn p11c_km_new;
OSSL_FUNC_keymgmt_free_fn p11c_km_free;
OSSL_FUNC_keymgmt_has_fn p11c_km_has;
OSSL_FUNC_keymgmt_match_fn p11c_km_match;
OSSL_FUNC_keymgmt_load_fn p11c_km_load;
OSSL_FUNC_keymgmt_dup_fn p11c_km_dup;
/* 1 when the public half may be exported under selection; raises when the
 * private half is asked for (it stays in the token). */
int p11c_km_export_check(P11C_PKEY *pk, int selection);
#define P11C_KM_SHARED                                                                             \
    P11C_DISPATCH(KEYMGMT, keymgmt, NEW, new, p11c_km_new),                                        \
        P11C_DISPATCH(KEYMGMT, keymgmt, FREE, free, p11c_km_free),                                 \
        P11C_DISPATCH(KEYMGMT, keymgmt, HAS, has, p11c_km_has),                                    \
        P11C_DISPATCH(KEYMGMT, keymgmt, MATCH, match, p11c_km_match),                              \
        P11C_DISPATCH(KEYMGMT, keymgmt, LOAD, load, p11c_km_load),                                 \
        P11C_DISPATCH(KEYMGMT, keymgmt, DUP, dup, p11c_km_dup)

/* Kinds whose public half OpenSSL describes: get_params asks it, export
 * hands over its public parameters. */
OSSL_FUNC_keymgmt_get_params_fn p11c_km_host_get_params;
OSSL_FUNC_keymgmt_export_fn p11c_km_host_export;

/* Key generation in a token: the parameters every kind takes. */
typedef struct p11c_gen {
    P11C_PROV *prov;
    unsigned int bits; /* RSA */
    const char *curve; /* EC and Edwards: "P-256", "Ed25519", ... */
    char *uri;
    char *label;
    uint8_t id[64];
    size_t idlen;
    int has_id;
    int persistent; /* -1: by default, persistent when a label or an id is given */
    int per_use;    /* CKA_ALWAYS_AUTHENTICATE on the private key */
    int usage;      /* P11C_GEN_SIGN_ONLY, P11C_GEN_DECRYPT_ONLY or 0 (both) */
} P11C_GEN;

/* NULL unless selection asks for a key pair. */
P11C_GEN *p11c_gen_new(void *provctx, int selection);
/* uri, label, id, persistent, per-use-pin, usage. */
int p11c_gen_set_common(P11C_GEN *g, const OSSL_PARAM params[]);
#define P11C_GEN_SETTABLE_COMMON                                                                   \
    OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_URI, NULL, 0),                                       \
        OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_LABEL, NULL, 0),                                 \
        OSSL_PARAM_octet_string(P11CHAT_PKEY_PARAM_ID, NULL, 0),                                   \
        OSSL_PARAM_int(P11CHAT_PKEY_PARAM_PERSISTENT, NULL),                                       \
        OSSL_PARAM_int(P11CHAT_PKEY_PARAM_PER_USE_PIN, NULL),                                      \
        OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_USAGE, NULL, 0)
typedef CK_RV p11c_gen_make_fn(P11C_TOKEN *t, const P11C_GEN *g, int persistent, P11C_KEY **out,
                               P11C_ERR *err);
/* Finds the token (URI, configuration, or the last one used), logs in with a
 * PIN the URI gives, and has `make` create the key there. */
P11C_PKEY *p11c_gen_run(P11C_GEN *g, p11c_gen_make_fn *make);
OSSL_FUNC_keymgmt_gen_cleanup_fn p11c_gen_free;
/* ---- PINs the OpenSSL way (pin.c) ----------------------------------------- */

typedef struct p11c_pin_scope {
    OSSL_PASSPHRASE_CALLBACK *cb;
    void *arg;
} P11C_PIN_SCOPE;

/* Makes cb the PIN source of this thread's logins until the matching end
 * (an OpenSSL call's passphrase callback lives as long as the call). */
void p11c_pin_scope_begin(P11C_PIN_SCOPE *saved, OSSL_PASSPHRASE_CALLBACK *cb, void *arg);
void p11c_pin_scope_end(const P11C_PIN_SCOPE *saved);
/* Lets the module ask the callback in scope, else the terminal. */
void p11c_pin_ask_install(P11C_PROV *prov, P11C_MODULE *m);
/* Logs in to the key's token now, while a callback is in scope, so that the
 * PIN is kept for later operations. 1 also when no PIN was given at all;
 * 0 with an error raised when the login failed. */
int p11c_pin_login_now(P11C_PROV *prov, P11C_KEY *key);

/* ---- PSS on the host, raw RSA in the token (pss_host.c) ------------------- */

/* For a PSS signature with digest md on pk's token: 0 when the token makes
 * PSS itself, 1 when it has raw RSA only (PSS encoded on the host; said once
 * on stderr), -1 with an error raised when PSS is impossible or forbidden. */
int p11c_pss_host_wanted(P11C_PROV *prov, P11C_PKEY *pk, const P11C_HASH *md);
/* EMSA-PSS of dgst on the host, then CKM_RSA_X_509 in the token. */
int p11c_pss_host_sign(P11C_PROV *prov, P11C_PKEY *pk, const P11C_HASH *md, const P11C_HASH *mgf1,
                       size_t salt, const uint8_t *dgst, uint8_t *sig, size_t *siglen,
                       size_t sigsize);

/* The dispatch tables. */
extern const OSSL_DISPATCH p11c_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH p11c_rsa_pss_keymgmt_functions[];
extern const OSSL_DISPATCH p11c_rsa_signature_functions[];
extern const OSSL_DISPATCH p11c_ec_keymgmt_functions[];
extern const OSSL_DISPATCH p11c_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH p11c_ed448_keymgmt_functions[];
extern const OSSL_DISPATCH p11c_ecdsa_signature_functions[];
extern const OSSL_DISPATCH p11c_ed25519_signature_functions[];
extern const OSSL_DISPATCH p11c_ed448_signature_functions[];
extern const OSSL_DISPATCH p11c_ecdh_keyexch_functions[];
extern const OSSL_DISPATCH p11c_text_encoder_functions[];
extern const OSSL_DISPATCH p11c_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH p11c_store_functions[];
extern const OSSL_DISPATCH p11c_spki_der_encoder_functions[];
extern const OSSL_DISPATCH p11c_spki_pem_encoder_functions[];
extern const OSSL_DISPATCH p11c_pkcs1_der_encoder_functions[];
extern const OSSL_DISPATCH p11c_pkcs1_pem_encoder_functions[];

extern const OSSL_DISPATCH p11c_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH p11c_uri_pem_decoder_functions[];
extern const OSSL_DISPATCH p11c_uri_rsa_decoder_functions[];
extern const OSSL_DISPATCH p11c_uri_ec_decoder_functions[];
extern const OSSL_DISPATCH p11c_uri_ed25519_decoder_functions[];
extern const OSSL_DISPATCH p11c_uri_ed448_decoder_functions[];

/* The first key `uri` names, through the store, handed to object_cb as the
 * store hands it to OpenSSL (store.c). -1 when the URI cannot be opened (an
 * error raised), 1 when it names no key, else object_cb's result. */
int p11c_store_fetch(P11C_PROV *prov, const char *uri, int expect, OSSL_CALLBACK *object_cb,
                     void *object_cbarg);

/* Key files naming a token key (uri_file.c), pkcs11-provider's format. */
#define P11C_URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define P11C_URI_STRUCTURE "pk11-uri"
/* DER of the file's SEQUENCE for `uri`; its length, or -1. */
int p11c_uri_file_der(const char *uri, unsigned char **der);
/* The URI a DER SEQUENCE holds (OPENSSL_free), or NULL when it is not one. */
char *p11c_uri_file_parse(const unsigned char *der, long len);

/* Constant-time OAEP decoding of an RSA_X_509 result (oaep.c). Returns 1 and
 * the message length, or 0 for every kind of failure alike. */
int p11c_oaep_decode(P11C_PROV *prov, uint8_t *out, size_t outsize, size_t *outlen,
                     const uint8_t *em, size_t k, const P11C_HASH *md, const P11C_HASH *mgf1,
                     const uint8_t *label, size_t label_len);

#endif
