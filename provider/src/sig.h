/*
 * The shared core of the signature files (rsa_sig.c, and one file per key
 * kind beside it): the key, the digest of digest-sign and digest-verify, the
 * message kept for tokens that hash themselves, and a small DER writer for
 * AlgorithmIdentifiers. Each kind's context starts with a P11C_SIG.
 */
#ifndef P11C_SIG_H
#define P11C_SIG_H

#include "prov.h"

typedef struct p11c_sig {
    P11C_PROV *prov;
    P11C_PKEY *pk;
    const P11C_HASH *md; /* NULL: not set */
    EVP_MD_CTX *mdctx;   /* digest_sign / digest_verify */
    int md_locked;       /* the digest of digest_sign cannot change any more */
    int buffering;       /* keep the message too */
    uint8_t *msg;
    size_t msglen, msgcap;
} P11C_SIG;

void p11c_sig_init(P11C_SIG *s, P11C_PROV *prov);
/* Frees what s holds (not s itself). */
void p11c_sig_cleanup(P11C_SIG *s);
/* dst is a byte copy of src: gives it its own digest state, message and key
 * reference. 0 (dst then holds nothing to free) when out of memory. */
int p11c_sig_dup(P11C_SIG *dst, const P11C_SIG *src);
/* The key of sign_init / verify_init (NULL: keep the one given before);
 * kind names it in errors ("RSA"). Signing needs the private half. */
int p11c_sig_set_key(P11C_SIG *s, void *provkey, int sign, const char *kind);
/* Starts hashing with mdname (NULL or "": the digest set before, else
 * dflt). Locks the digest and drops any kept message. */
int p11c_sig_digest_start(P11C_SIG *s, const char *mdname, const char *dflt);
/* Hashes data, and keeps it when buffering. */
int p11c_sig_update(P11C_SIG *s, const unsigned char *data, size_t datalen);
/* The digest of what was hashed; unlocks the digest. */
int p11c_sig_digest_final(P11C_SIG *s, unsigned char *dgst, unsigned int *dlen);
/* Wipes the kept message. */
void p11c_sig_forget_message(P11C_SIG *s);

/* The dispatch functions every kind shares; its context (vctx) starts with
 * a P11C_SIG and is size bytes long. */
void p11c_sig_freectx(void *vctx);
void *p11c_sig_dupctx(const void *vctx, size_t size);
/* digest_sign_update and digest_verify_update: p11c_sig_update. */
int p11c_sig_digest_update(void *vctx, const unsigned char *data, size_t datalen);
/* digest_verify_final: verify (the kind's verify function) on the digest
 * of what was hashed. */
int p11c_sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen,
                                 OSSL_FUNC_signature_verify_fn *verify);
/* Sets the digest from OSSL_SIGNATURE_PARAM_DIGEST in params, if there;
 * refuses a change while hashing. */
int p11c_sig_set_digest_param(P11C_SIG *s, const OSSL_PARAM params[]);

/* 1 when the key's token offers mech with flags (asked once per key);
 * else raises what is missing, on which token, for what, and what to do. */
int p11c_sig_token_offers(P11C_SIG *s, CK_MECHANISM_TYPE mech, CK_FLAGS flags, const char *what);
/* Sets p to the DER AlgorithmIdentifier of sig_nid, without parameters. */
int p11c_sig_algorithm_id(OSSL_PARAM *p, int sig_nid);

/* Signs with a key pair held on the host (host_private), with the default
 * provider: a digest (digest 1: EVP_PKEY_sign) or, for EdDSA, the message
 * (EVP_DigestSign). */
int p11c_sig_host_sign(P11C_SIG *s, int digest, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen);

/* The dispatch entries of a kind whose functions are named pfx_newctx,
 * pfx_sign_init, ...; the shared ones come from this core. A table ends
 * with P11C_DISPATCH_END after any entries of the kind's own. */
#define P11C_SIG_DISPATCH(pfx)                                                                     \
    P11C_DISPATCH(SIGNATURE, signature, NEWCTX, newctx, pfx##_newctx),                             \
        P11C_DISPATCH(SIGNATURE, signature, FREECTX, freectx, p11c_sig_freectx),                   \
        P11C_DISPATCH(SIGNATURE, signature, DUPCTX, dupctx, pfx##_dupctx),                         \
        P11C_DISPATCH(SIGNATURE, signature, SIGN_INIT, sign_init, pfx##_sign_init),                \
        P11C_DISPATCH(SIGNATURE, signature, SIGN, sign, pfx##_sign),                               \
        P11C_DISPATCH(SIGNATURE, signature, VERIFY_INIT, verify_init, pfx##_verify_init),          \
        P11C_DISPATCH(SIGNATURE, signature, VERIFY, verify, pfx##_verify),                         \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN_INIT, digest_sign_init,                    \
                      pfx##_digest_sign_init),                                                     \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN_UPDATE, digest_sign_update,                \
                      p11c_sig_digest_update),                                                     \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_SIGN_FINAL, digest_sign_final,                  \
                      pfx##_digest_sign_final),                                                    \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_VERIFY_INIT, digest_verify_init,                \
                      pfx##_digest_verify_init),                                                   \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_VERIFY_UPDATE, digest_verify_update,            \
                      p11c_sig_digest_update),                                                     \
        P11C_DISPATCH(SIGNATURE, signature, DIGEST_VERIFY_FINAL, digest_verify_final,              \
                      pfx##_digest_verify_final),                                                  \
        P11C_DISPATCH(SIGNATURE, signature, GET_CTX_PARAMS, get_ctx_params, pfx##_get_ctx_params), \
        P11C_DISPATCH(SIGNATURE, signature, GETTABLE_CTX_PARAMS, gettable_ctx_params,              \
                      pfx##_gettable_ctx_params),                                                  \
        P11C_DISPATCH(SIGNATURE, signature, SET_CTX_PARAMS, set_ctx_params, pfx##_set_ctx_params), \
        P11C_DISPATCH(SIGNATURE, signature, SETTABLE_CTX_PARAMS, settable_ctx_params,              \
                      pfx##_settable_ctx_params)

/* A tiny DER writer over a bounded buffer; bad is set on overflow. */
typedef struct p11c_der {
    uint8_t *p;
    size_t len, cap;
    int bad;
} P11C_DER;

void p11c_der_put(P11C_DER *d, const uint8_t *b, size_t n);
/* Wraps bytes [start, len) into tag + short length (contents < 128 bytes). */
void p11c_der_wrap(P11C_DER *d, size_t start, uint8_t tag);

#endif
