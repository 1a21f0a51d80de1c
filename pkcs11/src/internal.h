/* Private to pkcs11/: the structures behind the opaque handles, and the one
 * wrapper every PKCS#11 call goes through. */
#ifndef P11C_PKCS11_INTERNAL_H
#define P11C_PKCS11_INTERNAL_H

#include "p11c_pkcs11.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include <p11-kit/uri.h>

/* ---- Errors ------------------------------------------------------------- */

CK_RV p11c_err_set(P11C_ERR *err, CK_RV rv, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets rv and func, keeps err->what. */
CK_RV p11c_err_rv(P11C_ERR *err, CK_RV rv, const char *func);
/* Sets err->what only. */
void p11c_err_what(P11C_ERR *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Modules ------------------------------------------------------------ */

struct p11c_module {
    CK_FUNCTION_LIST *fl;        /* the module in use */
    CK_FUNCTION_LIST **list;     /* when loaded by name: every registered module */
    char *name;                  /* for messages */
    char *init_args;             /* C_Initialize's pReserved, or NULL */
    int proxy;                   /* p11-kit's proxy, from libp11-kit itself */
    _Atomic int refs;            /* the caller's, plus one per key */
    pthread_mutex_t lock;        /* tokens, pin, (re)initialisation */
    _Atomic pid_t pid;           /* process that initialised the module; 0 when not */
    _Atomic unsigned long epoch; /* bumped by each (re)initialisation */
    atomic_ulong calls;
    atomic_ulong logouts;  /* CKR_USER_NOT_LOGGED_IN answers seen */
    _Atomic int no_copies; /* p11c_module_set_key_copies(m, 0) */
    char *pin;
    struct p11c_token *tokens;
    _Atomic int pin_cache;       /* keep a PIN that worked, per token (login.c) */
    _Atomic int pin_final_try;   /* log in even on the last PIN try */
    p11c_pin_ask_fn *ask;        /* under lock */
    atomic_ulong context_logins; /* CKU_CONTEXT_SPECIFIC logins made */
    atomic_ulong recoveries;     /* re-openings (recover.c) */
    uid_t uid;                   /* user that loaded the module */
    _Atomic int forked;          /* re-initialised in a child of fork() */
    void *ask_arg;
};

/*
 * The single wrapper of every C_* call: refuses a missing function, counts the
 * call, and records a failing rv with the function's name in `err`.
 */
CK_RV p11c_call_done(P11C_MODULE *m, P11C_ERR *err, const char *func, CK_RV rv);
CK_RV p11c_call_missing(P11C_ERR *err, const char *func);
#define P11C_CALL(m, err, fn, ...)                                                                 \
    ((m)->fl->fn == NULL ? p11c_call_missing((err), #fn)                                           \
                         : p11c_call_done((m), (err), #fn, (m)->fl->fn(__VA_ARGS__)))

/* Entry check of every public function: after fork(), re-initialises the
 * module in the child (once) and forgets the parent's sessions. */
CK_RV p11c_module_enter(P11C_MODULE *m, P11C_ERR *err);
/* C_Initialize with the module's arguments (module.c). */
CK_RV p11c_module_initialize(P11C_MODULE *m, P11C_ERR *err);
/* 1 when rv says the module or its token went away underneath (a remote
 * token's server gone, a reader unplugged): the module is re-opened. */
int p11c_module_lost(CK_RV rv);
/* Re-opens a module that answered p11c_module_lost, unless another thread
 * did since `seen` (the epoch the failing call ran in): C_Finalize,
 * C_Initialize, sessions and logins forgotten, tokens found again. Keys
 * find their objects again on next use. */
CK_RV p11c_module_recover(P11C_MODULE *m, unsigned long seen, P11C_ERR *err);
/* Runs op's recovery loop around one try (recover.c): tries is the number of
 * recoveries made so far; returns 1 when the caller should try again. */
int p11c_recover_again(P11C_MODULE *m, P11C_TOKEN *t, unsigned long seen, CK_RV *rv, int *tries,
                       P11C_ERR *err);
void p11c_module_ref(P11C_MODULE *m);
void p11c_module_unref(P11C_MODULE *m);
/* A copy of the module PIN (NULL when none), to be freed with p11c_pin_free. */
char *p11c_module_pin_copy(P11C_MODULE *m);
char *p11c_pin_dup(const char *pin);

/* ---- Tokens and the session pool ---------------------------------------- */

typedef struct p11c_mech_entry {
    CK_MECHANISM_TYPE type;
    int known; /* info fetched */
    CK_RV rv;  /* of C_GetMechanismInfo */
    CK_MECHANISM_INFO info;
} P11C_MECH_ENTRY;

struct p11c_token {
    P11C_MODULE *m;
    struct p11c_token *next;
    CK_SLOT_ID slot;
    CK_SLOT_INFO slot_info;
    CK_TOKEN_INFO info;
    char label[33]; /* trimmed */
    int present;    /* 0 when a re-initialised module no longer shows it */

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* a session came back */
    CK_SESSION_HANDLE *idle;
    size_t nidle, idle_cap;
    CK_ULONG open; /* sessions open, idle or in use */
    CK_ULONG max;  /* the pool bound */
    CK_ULONG max_override;
    unsigned int wait_ms;
    int read_only;
    unsigned long login_epoch;   /* module epoch of the last login; 0 = none */
    unsigned long login_logouts; /* m->logouts when it happened */

    pthread_mutex_t login_lock; /* serialises C_Login */
    char *pin;                  /* kept after a login with it worked (login.c); under lock */

    P11C_MECH_ENTRY *mechs;
    CK_ULONG nmechs;
    int mechs_loaded;

    /* The keeper: one pool session held until the module is freed, owning
     * the session copies of private keys (see key.c). Under `lock`. */
    CK_SESSION_HANDLE keeper;
    unsigned long keeper_epoch;  /* module epoch it was opened in; 0 = none */
    pthread_mutex_t keeper_lock; /* serialises the calls made on it */
};

/* A pooled session: get, use, put (discard when its state is unknown). */
CK_RV p11c_session_get(P11C_TOKEN *t, CK_SESSION_HANDLE *s, P11C_ERR *err);
void p11c_session_put(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_RV last_rv);
/* Closes s for good (C_CloseSession, errors ignored). */
void p11c_session_discard(P11C_TOKEN *t, CK_SESSION_HANDLE s);
/* 1 when the session may go back to the pool after last_rv. */
int p11c_session_reusable(CK_RV last_rv);
/* 1 when rv says the session itself is gone: retry on a fresh one. */
int p11c_session_lost(CK_RV rv);

/* The keeper session (opened on first use), its lock held on success: call
 * p11c_keeper_release when done. */
CK_RV p11c_keeper_acquire(P11C_TOKEN *t, CK_SESSION_HANDLE *s, P11C_ERR *err);
/* Releases the keeper; last_rv saying the session is gone closes it (its
 * copies die with it) so that the next acquire opens a new one. */
void p11c_keeper_release(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_RV last_rv);

int p11c_token_logged_in(P11C_TOKEN *t);
/* 1 when a PIN is known without asking: kept for the token, or the module's. */
int p11c_token_pin_known(P11C_TOKEN *t);
/* Wipes the PIN kept for t. */
void p11c_token_pin_forget(P11C_TOKEN *t);
/* C_Login(CKU_CONTEXT_SPECIFIC) on s, right after an operation's Init on a
 * key with CKA_ALWAYS_AUTHENTICATE: pin, else the kept, module or asked
 * PIN; NULL for a protected authentication path. */
CK_RV p11c_login_context(P11C_TOKEN *t, CK_SESSION_HANDLE s, const char *pin, P11C_ERR *err);
/* Logs in with pin (or the module PIN when NULL). force: even when the
 * token is believed logged in (after CKR_USER_NOT_LOGGED_IN). */
CK_RV p11c_token_login_int(P11C_TOKEN *t, const char *pin, int force, P11C_ERR *err);
/* The "no such token" error for desc, listing the tokens present and, for a
 * slot-id under p11-kit's proxy, why it names nothing (names.c). */
CK_RV p11c_no_token(P11C_MODULE *m, P11KitUri *u, const char *desc, const char *func,
                    P11C_ERR *err);
/* Every initialised token matching the slot/token attributes of u. */
CK_RV p11c_tokens_match(P11C_MODULE *m, P11KitUri *u, P11C_TOKEN ***out, size_t *n, P11C_ERR *err);
/* In a child after fork, m->lock held: fresh locks, the parent's sessions
 * forgotten (never closed: they are the parent's), logged out. */
void p11c_tokens_after_fork(P11C_MODULE *m);
/* After the module was re-opened (recover.c), m->lock held: every token's
 * sessions and login forgotten. */
void p11c_tokens_reset(P11C_MODULE *m);
/* After re-initialisation: each token's slot found again by its identity. */
void p11c_tokens_refind(P11C_MODULE *m);
void p11c_tokens_free(P11C_MODULE *m, int close_sessions);

/* ---- URIs --------------------------------------------------------------- */

typedef struct p11c_uri {
    P11KitUri *u;
    CK_OBJECT_CLASS cls; /* (CK_OBJECT_CLASS)-1 when no type= */
    int has_cls;
    const char *label; /* object=, NUL-terminated copy or NULL */
    char *label_buf;
    const uint8_t *id;
    size_t idlen;
    int has_id;
    char *pin;      /* from pin-value or pin-source; NULL when none */
    char desc[200]; /* "token 'x', object 'alice', id 01, type private" */
} P11C_URI;

/* NULL or "" is "pkcs11:", matching everything. Never copies the URI text
 * into err (it may hold a PIN). */
CK_RV p11c_uri_parse(const char *uri, P11C_URI *out, P11C_ERR *err);
/* Fills u->pin from pin-value, else pin-source; leaves it NULL when neither. */
CK_RV p11c_uri_pin(P11C_URI *u, P11C_ERR *err);
void p11c_uri_clear(P11C_URI *u);

/* ---- Objects: finding and pairing (object.c) ------------------------------- */

/* Bounds on what a token may make us allocate. */
#define P11C_MAX_OBJECTS 4096
#define P11C_MAX_ATTR    65536
/* The largest modulus read back on its own (16384 bits). */
#define P11C_MAX_MODULUS 2048

/* One key object as read from the token. */
typedef struct p11c_found {
    CK_OBJECT_HANDLE h;
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    CK_BBOOL token; /* CKA_TOKEN; true when the token does not say */
    uint8_t *id, *label, *n, *e;
    size_t idlen, labellen, nlen, elen;
    uint8_t *params, *point; /* EC: CKA_EC_PARAMS, CKA_EC_POINT as the token gives them */
    size_t paramslen, pointlen;
    size_t group;
} P11C_FOUND;

void p11c_found_clear(P11C_FOUND *f);
void p11c_found_free(P11C_FOUND *f, size_t n);
/* Finds objects matching tmpl (C_FindObjects loop); *out malloc'd. */
CK_RV p11c_find_objects(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
                        CK_OBJECT_HANDLE **out, CK_ULONG *n, P11C_ERR *err);
/* Reads one variable-length attribute (malloc'd; *len 0 and NULL when absent). */
CK_RV p11c_get_attr(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                    CK_ATTRIBUTE_TYPE type, uint8_t **val, size_t *len, P11C_ERR *err);
/* Objects of class cls matching extra (class added here), read; keys of the
 * kinds we use only (RSA, EC, EC Edwards). *nonrsa (when not NULL) counts
 * the other key objects that matched. */
CK_RV p11c_objects_search(P11C_TOKEN *t, CK_OBJECT_CLASS cls, const CK_ATTRIBUTE *extra,
                          CK_ULONG nextra, P11C_FOUND **out, size_t *nout, size_t *nonrsa,
                          P11C_ERR *err);
/* The two halves of one pair, or two copies of one key. */
int p11c_same_key(const P11C_FOUND *a, const P11C_FOUND *b);
/* Sets f[i].group so that objects of one key share it; returns the count. */
size_t p11c_objects_group(P11C_FOUND *f, size_t n);
int p11c_bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* A copy with a NUL after it (labels); NULL when out of memory. */
uint8_t *p11c_dup_bytes(const uint8_t *p, size_t len);

/* ---- Keys --------------------------------------------------------------- */

struct p11c_key {
    _Atomic int refs;
    P11C_TOKEN *t;
    char *label;
    uint8_t *id;
    size_t idlen;
    CK_KEY_TYPE kt; /* CKK_RSA, CKK_EC or CKK_EC_EDWARDS */
    uint8_t *n, *e; /* RSA */
    size_t nlen, elen;
    const struct p11c_curve *curve; /* EC and Edwards */
    uint8_t *point;                 /* the raw point: 04||X||Y, or the Edwards bytes */
    size_t pointlen;
    unsigned int bits;
    int ephemeral;   /* session objects held by `hold` */
    int public_only; /* loaded with type=public */
    char *pin;       /* from the URI, kept for logins after fork; wiped on free */

    pthread_mutex_t lock; /* the handles below */
    CK_OBJECT_HANDLE pub, priv;
    unsigned long epoch; /* module epoch the handles belong to */
    int priv_absent;     /* searched while logged in, not found (this epoch) */
    int destroyed;
    CK_SESSION_HANDLE hold; /* ephemeral: the session owning the objects */
    unsigned long hold_epoch;
    int copy;        /* P11C_COPY_*: what priv is */
    int always_auth; /* CKA_ALWAYS_AUTHENTICATE: -1 not read yet (peruse.c) */
};

/* P11C_KEY.copy */
#define P11C_COPY_NONE   0 /* priv is used as found: a session object, or copying failed */
#define P11C_COPY_WANTED 1 /* priv is a token object, not copied yet */
#define P11C_COPY_BUSY   2 /* another thread is copying it */
#define P11C_COPY_MADE   3 /* priv is our session copy of the token object */

P11C_KEY *p11c_key_new(P11C_TOKEN *t);
/* Copies n and e (leading zeros dropped) into k and sets its size. */
CK_RV p11c_key_set_public(P11C_KEY *k, const uint8_t *n, size_t nlen, const uint8_t *e,
                          size_t elen);
/* Reads CKA_MODULUS and CKA_PUBLIC_EXPONENT of obj into k. */
CK_RV p11c_key_read_public(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, P11C_ERR *err);
/* ---- EC and Edwards curves (ec.c) ----------------------------------------- */

typedef struct p11c_curve {
    const char *name;   /* "P-256", "Ed25519", ... (p11c_key_curve) */
    CK_KEY_TYPE kt;     /* CKK_EC or CKK_EC_EDWARDS */
    const uint8_t *oid; /* DER OID: the CKA_EC_PARAMS we write */
    size_t oidlen;
    const char *printable; /* Edwards: the PrintableString form some tokens use */
    size_t flen;           /* bytes of a coordinate (EC) or of the key (Edwards) */
    unsigned int bits;
} P11C_CURVE;

/* The curve CKA_EC_PARAMS names (OID, or PrintableString for Edwards);
 * NULL when we do not know it. */
const P11C_CURVE *p11c_curve_by_params(const uint8_t *p, size_t len);
const P11C_CURVE *p11c_curve_by_name(const char *name);
/* The raw point from CKA_EC_POINT, DER OCTET STRING wrapped or not (both
 * are seen); 0 when it is neither for this curve. Points into `in`. */
int p11c_point_unwrap(const P11C_CURVE *c, const uint8_t *in, size_t len, const uint8_t **pt,
                      size_t *ptlen);
/* Reads CKA_EC_PARAMS and CKA_EC_POINT of obj into k. */
CK_RV p11c_key_read_ec_public(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                              P11C_ERR *err);
/* Sets the EC or Edwards public half (copied) of k from token attributes. */
CK_RV p11c_key_set_ec_public(P11C_KEY *k, const uint8_t *params, size_t paramslen,
                             const uint8_t *point, size_t pointlen);

/* ---- Generation and import (keygen.c) -------------------------------------- */

#define P11C_RANDOM_ID_LEN 16

/* Checks, login, id (rid gets a random one when none is given), the
 * P11C_CKR_KEY_EXISTS test for persistent keys, a session in *s. */
CK_RV p11c_keygen_prepare(P11C_TOKEN *t, const char *label, const uint8_t **id, size_t *idlen,
                          uint8_t *rid, int persistent, CK_SESSION_HANDLE *s, P11C_ERR *err);
/* The key object for freshly made objects of kind kt; takes over session s. */
CK_RV p11c_keygen_finish(P11C_TOKEN *t, CK_SESSION_HANDLE s, CK_KEY_TYPE kt, CK_OBJECT_HANDLE pub,
                         CK_OBJECT_HANDLE priv, const char *label, const uint8_t *id, size_t idlen,
                         int persistent, P11C_KEY **out, P11C_ERR *err);
/* Asked when the token refuses the templates of a generation with rv: 1
 * when it changed them (pub, priv, their counts) and the call is to be
 * made again, 0 when rv stands. */
typedef int P11C_KEYGEN_RETRY(CK_RV rv, CK_ATTRIBUTE *pub, CK_ULONG *npub, CK_ATTRIBUTE *priv,
                              CK_ULONG *npriv, void *arg);
/* C_GenerateKeyPair on session *s, asked again after retry changed the
 * templates, after logging in again once and with a new session once (*s
 * is then the new one). On failure the session is given back. */
CK_RV p11c_keygen_run(P11C_TOKEN *t, CK_SESSION_HANDLE *s, CK_MECHANISM *mech, CK_ATTRIBUTE *pub,
                      CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv, P11C_KEYGEN_RETRY *retry,
                      void *arg, CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv, P11C_ERR *err);
/* "token 'x', new key 'y'" into err. */
void p11c_keygen_what(P11C_TOKEN *t, const char *label, P11C_ERR *err);

/* One C_DeriveKey (CKM_ECDH1_DERIVE) on s with private key h: the secret read
 * into out and its object destroyed (ec.c). */
CK_RV p11c_ecdh_run(P11C_KEY *k, CK_SESSION_HANDLE s, const CK_MECHANISM *ck, CK_OBJECT_HANDLE h,
                    uint8_t *out, CK_ULONG *outlen, P11C_ERR *err);

/* "token 'x', key 'alice'" for k. */
void p11c_key_what(const P11C_KEY *k, P11C_ERR *err);
/* Appends ": detail" to err->what. */
void p11c_what_detail(P11C_ERR *err, const char *detail);
/* Handles of the objects of class cls that belong to k (at most max), token
 * objects first; tok[i] (when tok is not NULL) says which are. */
CK_RV p11c_key_objects(P11C_KEY *k, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *hs, CK_BBOOL *tok,
                       size_t max, size_t *nh, P11C_ERR *err);
/* The private half's handle: cached, else found once (after login); a token
 * object is used through its session copy. */
CK_RV p11c_key_private(P11C_KEY *k, CK_OBJECT_HANDLE *h, P11C_ERR *err);
#define P11C_OP_SIGN    0
#define P11C_OP_DECRYPT 1
#define P11C_OP_DERIVE  2 /* ck is CKM_ECDH1_DERIVE; in is unused */
/* One private-key operation (P11C_OP_*) with the
 * recoveries the token allows: a lost session replaced, a logged-out token
 * logged in again, a stale handle found again; each once. */
CK_RV p11c_key_op(P11C_KEY *k, int op, const CK_MECHANISM *ck, const uint8_t *in, size_t inlen,
                  uint8_t *out, size_t *outlen, P11C_ERR *err);
/* 1 when a login with pin (or the module's) can be tried, or none is needed. */
int p11c_pin_known(P11C_TOKEN *t, const char *pin);

/* ---- Session copies (copy.c) ---------------------------------------------- */

/* Destroys k's session copy, if it made one in this process and module
 * epoch. The caller holds k->lock or is the key's last user. */
void p11c_key_drop_copy(P11C_KEY *k);
/* Right after C_SignInit/C_DecryptInit of h on s: the context-specific login
 * a key with CKA_ALWAYS_AUTHENTICATE needs (peruse.c); CKR_OK for others. */
CK_RV p11c_key_use_login(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, P11C_ERR *err);
/* Makes the session copy of token object h (k->copy is BUSY, set by the
 * caller) and returns the handle to use: the copy, or h when the token
 * refuses to copy. */
CK_OBJECT_HANDLE p11c_key_copy(P11C_KEY *k, CK_OBJECT_HANDLE h, unsigned long epoch);

#endif
