/*
 * p11chat.so: provider entry point, configuration, teardown, and the module
 * loaded on first use.
 *
 * Exit ordering: SoftHSM2 (and other modules) use OpenSSL themselves, so
 * C_Finalize must run before OpenSSL's own cleanup, and before the module's
 * own static destructors. Our exit handler is registered again each time a
 * module is loaded (atexit runs handlers in reverse order): it then runs
 * before the destructors the module registered while loading, and before
 * OpenSSL's cleanup (registered earlier still). It finalises every module
 * and marks the contexts so that nothing calls PKCS#11 afterwards; running
 * it twice is harmless.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "prov.h"

static OSSL_FUNC_provider_teardown_fn p11c_teardown;
static OSSL_FUNC_provider_gettable_params_fn p11c_gettable_params;
static OSSL_FUNC_provider_get_params_fn p11c_get_params;
static OSSL_FUNC_provider_query_operation_fn p11c_query;
static OSSL_FUNC_provider_get_reason_strings_fn p11c_reason_strings;

/* ---- Every live provider context, for the exit handler ------------------- */

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static P11C_PROV *live_head;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void p11c_at_exit(void)
{
    pthread_mutex_lock(&live_lock);
    for (P11C_PROV *p = live_head; p != NULL; p = p->next) {
        pthread_mutex_lock(&p->lock);
        p->finalised = 1;
        p11c_module_free(p->module);
        p->module = NULL;
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&live_lock);
}

static void p11c_register_at_exit(void)
{
    atexit(p11c_at_exit);
}

int p11c_prov_alive(P11C_PROV *prov)
{
    if (!prov->finalised)
        return 1;
    P11C_RAISE(prov, P11C_R_SHUTDOWN, "the PKCS#11 module was already finalised at exit");
    return 0;
}

/* ---- Reason strings -------------------------------------------------------- */

static OSSL_ITEM *reasons;
static pthread_once_t reasons_once = PTHREAD_ONCE_INIT;

static void reasons_build(void)
{
    static const OSSL_ITEM ours[] = {
        {P11C_R_PRIVATE_EXPORT, "private key not exportable"},
        {P11C_R_BAD_PARAM, "invalid parameter"},
        {P11C_R_UNSUPPORTED, "unsupported"},
        {P11C_R_INTERNAL, "internal error"},
        {P11C_R_SHUTDOWN, "provider shut down"},
        {P11C_R_NO_KEY, "no key"},
        {P11C_R_BUFFER_SMALL, "output buffer too small"},
        {P11C_R_BAD_SIGNATURE, "bad signature"},
    };
    size_t n = 0, cap = sizeof(ours) / sizeof(ours[0]) + 0x300 + 0x20 + 2;
    OSSL_ITEM *r = calloc(cap, sizeof(*r));

    if (r == NULL)
        return;
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        r[n++] = ours[i];
    for (CK_RV rv = 0; rv <= 0x2FF; rv++) {
        const char *name = p11c_rv_name(rv);
        if (name != NULL && strncmp(name, "CKR_0x", 6) != 0)
            r[n++] = (OSSL_ITEM){(unsigned int)p11c_reason_of_rv(rv), (void *)name};
    }
    for (CK_RV i = 1; i < 0x20; i++) {
        const char *name = p11c_rv_name(P11C_CKR_BASE + i);
        if (name != NULL && strncmp(name, "CKR_0x", 6) != 0)
            r[n++] = (OSSL_ITEM){(unsigned int)p11c_reason_of_rv(P11C_CKR_BASE + i), (void *)name};
    }
    r[n++] = (OSSL_ITEM){(unsigned int)p11c_reason_of_rv(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED"};
    r[n] = (OSSL_ITEM){0, NULL};
    reasons = r;
}

static const OSSL_ITEM *p11c_reason_strings(void *provctx)
{
    (void)provctx;
    pthread_once(&reasons_once, reasons_build);
    return reasons;
}

/* ---- Lazily made pieces ---------------------------------------------------- */

/* The PIN of pkcs11-pin: the value itself, or "file:PATH" read by the same
 * reader as a URI's pin-source (one trailing newline dropped). NULL, with
 * the reason in err, when the file cannot be read. */
static char *pin_resolve(const char *spec, P11C_ERR *err)
{
    char *read = NULL, *pin;

    if (strncmp(spec, "file:", 5) != 0)
        return OPENSSL_strdup(spec);
    if (p11c_pin_from_source(spec, &read, err) != CKR_OK)
        return NULL;
    pin = OPENSSL_strdup(read);
    p11c_pin_free(read);
    return pin;
}

P11C_MODULE *p11c_prov_module(P11C_PROV *prov, const char *what)
{
    P11C_MODULE *m = NULL;
    P11C_ERR err, pin_err;
    CK_RV rv = CKR_OK;
    char *pin = NULL;
    int pin_failed = 0;

    memset(&err, 0, sizeof(err));
    memset(&pin_err, 0, sizeof(pin_err));
    pthread_mutex_lock(&prov->lock);
    if (prov->finalised) {
        pthread_mutex_unlock(&prov->lock);
        p11c_prov_alive(prov);
        return NULL;
    }
    if (prov->module == NULL) {
        ERR_set_mark(); /* drop what the module's own OpenSSL queued */
        rv = p11c_module_load_args(prov->module_spec, prov->init_args, &prov->module, &err);
        ERR_pop_to_mark();
        if (rv == CKR_OK && prov->pin != NULL) {
            pin = pin_resolve(prov->pin, &pin_err);
            if (pin == NULL)
                pin_failed = 1;
            else
                rv = p11c_module_set_pin(prov->module, pin);
        }
        if (rv == CKR_OK) {
            p11c_module_set_key_copies(prov->module, prov->copy_keys);
            p11c_conf_tokens_apply(prov, prov->module);
        }
        if (rv != CKR_OK || pin_failed) {
            p11c_module_free(prov->module);
            prov->module = NULL;
        } else {
            atexit(p11c_at_exit);
        }
    }
    m = prov->module;
    pthread_mutex_unlock(&prov->lock);
    if (pin != NULL)
        OPENSSL_clear_free(pin, strlen(pin));
    if (pin_failed)
        P11C_RAISE(prov, p11c_reason_of_rv(P11C_CKR_PIN_SOURCE),
                   "cannot read the PIN file given by " P11CHAT_CONF_PIN " (%s)",
                   pin_err.what[0] != '\0' ? pin_err.what : "out of memory");
    else if (m == NULL)
        P11C_RAISE(prov, p11c_reason_of_rv(rv), "%s: loading PKCS#11 module '%s': %s: %s",
                   what != NULL ? what : "p11chat",
                   prov->module_spec ? prov->module_spec : "p11-kit-proxy",
                   err.func != NULL ? err.func : "p11c_module_load", p11c_rv_name(rv));
    return m;
}

OSSL_LIB_CTX *p11c_prov_sw(P11C_PROV *prov)
{
    OSSL_LIB_CTX *sw;

    pthread_mutex_lock(&prov->lock);
    if (prov->sw == NULL) {
        prov->sw = OSSL_LIB_CTX_new();
        if (prov->sw != NULL) {
            prov->sw_default = OSSL_PROVIDER_load(prov->sw, "default");
            if (prov->sw_default == NULL) {
                OSSL_LIB_CTX_free(prov->sw);
                prov->sw = NULL;
            }
        }
    }
    sw = prov->sw;
    pthread_mutex_unlock(&prov->lock);
    if (sw == NULL)
        P11C_RAISE(prov, P11C_R_INTERNAL, "cannot load OpenSSL's default provider for hashing");
    return sw;
}

/* ---- Provider functions ---------------------------------------------------- */

static const OSSL_PARAM gettable[] = {
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
    OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *p11c_gettable_params(void *provctx)
{
    (void)provctx;
    return gettable;
}

static int p11c_get_params(void *provctx, OSSL_PARAM params[])
{
    P11C_PROV *prov = provctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "p11chat PKCS#11 provider"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, P11CHAT_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, P11CHAT_BUILDINFO))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, !prov->finalised))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM keymgmt_algs[] = {
    {P11C_NAMES_RSA, P11C_PROPS, p11c_rsa_keymgmt_functions, "RSA keys in a PKCS#11 token"},
    {P11C_NAMES_RSA_PSS, P11C_PROPS, p11c_rsa_pss_keymgmt_functions,
     "RSA keys in a PKCS#11 token, for PSS"},
    {P11C_NAMES_EC, P11C_PROPS, p11c_ec_keymgmt_functions, "EC keys in a PKCS#11 token"},
    {P11C_NAMES_ED25519, P11C_PROPS, p11c_ed25519_keymgmt_functions,
     "Ed25519 keys in a PKCS#11 token"},
    {P11C_NAMES_ED448, P11C_PROPS, p11c_ed448_keymgmt_functions, "Ed448 keys in a PKCS#11 token"},
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM signature_algs[] = {
    {P11C_NAMES_RSA, P11C_PROPS, p11c_rsa_signature_functions, "RSA signatures in a token"},
    {P11C_NAMES_ECDSA, P11C_PROPS, p11c_ecdsa_signature_functions, "ECDSA signatures in a token"},
    {P11C_NAMES_ED25519, P11C_PROPS, p11c_ed25519_signature_functions,
     "Ed25519 signatures in a token"},
    {P11C_NAMES_ED448, P11C_PROPS, p11c_ed448_signature_functions, "Ed448 signatures in a token"},
    {P11C_OP_RSA, P11C_PROPS, p11c_rsa_signature_functions, "RSA signatures in a token"},
    {P11C_OP_ECDSA, P11C_PROPS, p11c_ecdsa_signature_functions, "ECDSA signatures in a token"},
    {P11C_OP_ED25519, P11C_PROPS, p11c_ed25519_signature_functions,
     "Ed25519 signatures in a token"},
    {P11C_OP_ED448, P11C_PROPS, p11c_ed448_signature_functions, "Ed448 signatures in a token"},
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM keyexch_algs[] = {
    {P11C_NAMES_ECDH, P11C_PROPS, p11c_ecdh_keyexch_functions, "ECDH in a token"},
    {P11C_OP_ECDH, P11C_PROPS, p11c_ecdh_keyexch_functions, "ECDH in a token"},
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM asym_cipher_algs[] = {
    {P11C_NAMES_RSA, P11C_PROPS, p11c_rsa_asym_cipher_functions, "RSA decryption in a token"},
    {P11C_OP_RSA, P11C_PROPS, p11c_rsa_asym_cipher_functions, "RSA decryption in a token"},
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM store_algs[] = {
    {"pkcs11", P11C_PROPS, p11c_store_functions, "pkcs11: URIs (RFC 7512)"},
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM encoder_algs[] = {
    {P11C_NAMES_RSA, P11C_PROPS ",output=der,structure=SubjectPublicKeyInfo",
     p11c_spki_der_encoder_functions, "public key as SubjectPublicKeyInfo, DER"},
    {P11C_NAMES_RSA, P11C_PROPS ",output=pem,structure=SubjectPublicKeyInfo",
     p11c_spki_pem_encoder_functions, "public key as SubjectPublicKeyInfo, PEM"},
    {P11C_NAMES_RSA, P11C_PROPS ",output=der,structure=type-specific",
     p11c_pkcs1_der_encoder_functions, "public key as PKCS#1 RSAPublicKey, DER"},
    {P11C_NAMES_RSA, P11C_PROPS ",output=pem,structure=type-specific",
     p11c_pkcs1_pem_encoder_functions, "public key as PKCS#1 RSAPublicKey, PEM"},
#define P11C_SPKI_ENCODERS(names)                                                                  \
    {names, P11C_PROPS ",output=der,structure=SubjectPublicKeyInfo",                               \
     p11c_spki_der_encoder_functions, "public key as SubjectPublicKeyInfo, DER"},                  \
    {                                                                                              \
        names, P11C_PROPS ",output=pem,structure=SubjectPublicKeyInfo",                            \
            p11c_spki_pem_encoder_functions, "public key as SubjectPublicKeyInfo, PEM"             \
    }
    P11C_SPKI_ENCODERS(P11C_NAMES_EC),
    P11C_SPKI_ENCODERS(P11C_NAMES_ED25519),
    P11C_SPKI_ENCODERS(P11C_NAMES_ED448),
    {P11C_NAMES_RSA, P11C_PROPS ",output=text", p11c_text_encoder_functions,
     "kind, size and pkcs11: URI of a token key"},
    {P11C_NAMES_EC, P11C_PROPS ",output=text", p11c_text_encoder_functions,
     "kind, curve and pkcs11: URI of a token key"},
    {P11C_NAMES_ED25519, P11C_PROPS ",output=text", p11c_text_encoder_functions,
     "kind and pkcs11: URI of a token key"},
    {P11C_NAMES_ED448, P11C_PROPS ",output=text", p11c_text_encoder_functions,
     "kind and pkcs11: URI of a token key"},
#define P11C_URI_ENCODER(names)                                                                    \
    {                                                                                              \
        names, P11C_PROPS ",output=pem,structure=" P11C_URI_STRUCTURE,                             \
            p11c_uri_pem_encoder_functions, "a key file naming the token key"                      \
    }
    P11C_URI_ENCODER(P11C_NAMES_RSA),
    P11C_URI_ENCODER(P11C_NAMES_EC),
    P11C_URI_ENCODER(P11C_NAMES_ED25519),
    P11C_URI_ENCODER(P11C_NAMES_ED448),
    {NULL, NULL, NULL, NULL},
};
static const OSSL_ALGORITHM decoder_algs[] = {
    {"DER", P11C_PROPS ",input=pem", p11c_uri_pem_decoder_functions,
     "key files naming a token key: PEM to DER"},
    {P11C_NAMES_RSA, P11C_PROPS ",input=der,structure=" P11C_URI_STRUCTURE,
     p11c_uri_rsa_decoder_functions, "key files naming a token key: the RSA key"},
    {P11C_NAMES_EC, P11C_PROPS ",input=der,structure=" P11C_URI_STRUCTURE,
     p11c_uri_ec_decoder_functions, "key files naming a token key: the EC key"},
    {P11C_NAMES_ED25519, P11C_PROPS ",input=der,structure=" P11C_URI_STRUCTURE,
     p11c_uri_ed25519_decoder_functions, "key files naming a token key: the Ed25519 key"},
    {P11C_NAMES_ED448, P11C_PROPS ",input=der,structure=" P11C_URI_STRUCTURE,
     p11c_uri_ed448_decoder_functions, "key files naming a token key: the Ed448 key"},
    {NULL, NULL, NULL, NULL},
};

/* No digest, cipher, MAC, KDF or RAND: the token's own OpenSSL must never
 * find one of ours and re-enter the provider from inside a PKCS#11 call. */
static const OSSL_ALGORITHM *p11c_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return signature_algs;
    case OSSL_OP_KEYEXCH:
        return keyexch_algs;
    case OSSL_OP_ASYM_CIPHER:
        return asym_cipher_algs;
    case OSSL_OP_STORE:
        return store_algs;
    case OSSL_OP_ENCODER:
        return encoder_algs;
    case OSSL_OP_DECODER:
        return decoder_algs;
    default:
        return NULL;
    }
}

static void p11c_teardown(void *provctx)
{
    P11C_PROV *prov = provctx;

    if (prov == NULL)
        return;
    pthread_mutex_lock(&live_lock);
    for (P11C_PROV **pp = &live_head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == prov) {
            *pp = prov->next;
            break;
        }
    }
    pthread_mutex_unlock(&live_lock);
    if (!prov->finalised)
        p11c_module_free(prov->module);
    for (size_t i = 0; i < sizeof(prov->md) / sizeof(prov->md[0]); i++)
        EVP_MD_free(prov->md[i]);
    OSSL_PROVIDER_unload(prov->sw_default);
    OSSL_LIB_CTX_free(prov->sw);
    OPENSSL_free(prov->module_spec);
    if (prov->pin != NULL)
        OPENSSL_clear_free(prov->pin, strlen(prov->pin));
    OPENSSL_free(prov->token_uri);
    p11c_conf_tokens_free(prov);
    pthread_mutex_destroy(&prov->lock);
    OPENSSL_free(prov);
}

static const OSSL_DISPATCH provider_functions[] = {
    P11C_DISPATCH(PROVIDER, provider, TEARDOWN, teardown, p11c_teardown),
    P11C_DISPATCH(PROVIDER, provider, GETTABLE_PARAMS, gettable_params, p11c_gettable_params),
    P11C_DISPATCH(PROVIDER, provider, GET_PARAMS, get_params, p11c_get_params),
    P11C_DISPATCH(PROVIDER, provider, QUERY_OPERATION, query_operation, p11c_query),
    P11C_DISPATCH(PROVIDER, provider, GET_REASON_STRINGS, get_reason_strings, p11c_reason_strings),
    P11C_DISPATCH_END,
};

int p11c_parse_bool(const char *s)
{
    static const char *yes[] = {"1", "yes", "true", "on"};
    static const char *no[] = {"0", "no", "false", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* The configuration value of `key`, else the environment variable. */
static const char *conf_value(const OSSL_PARAM *got, const char *env)
{
    const char *v = NULL;

    if (got->return_size != 0 && OSSL_PARAM_get_utf8_ptr(got, &v) && v != NULL && *v != '\0')
        return v;
    v = getenv(env);
    return (v != NULL && *v != '\0') ? v : NULL;
}

const char *p11c_conf_value(const OSSL_PARAM *got, const char *env)
{
    return conf_value(got, env);
}

/*
 * A configuration that keeps the provider from starting is raised and also
 * written to stderr: OpenSSL drops errors of providers loaded from a
 * configuration file, and a program would otherwise only say later that
 * "pkcs11" is an unregistered scheme.
 */
static void not_started(P11C_PROV *prov, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void not_started(P11C_PROV *prov, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    P11C_RAISE(prov, P11C_R_BAD_PARAM, "%s", msg);
    fprintf(stderr,
            "p11chat: the provider did not start: %s. pkcs11: URIs will not work until the "
            "configuration is fixed (OpenSSL reports them as an \"unregistered scheme\").\n",
            msg);
}

/* The one exported symbol (everything else is hidden). */
__attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                                                              const OSSL_DISPATCH *in,
                                                              const OSSL_DISPATCH **out,
                                                              void **provctx);

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *c_get_params = NULL;
    P11C_PROV *prov = NULL;
    const char *module = NULL, *pin = NULL, *token = NULL, *fallback = NULL, *copies = NULL;
    OSSL_PARAM conf[6];
    int ret = 0;

    prov = OPENSSL_zalloc(sizeof(*prov));
    if (prov == NULL)
        goto end;
    pthread_mutex_init(&prov->lock, NULL);
    prov->handle = handle;
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            prov->c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            prov->c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            prov->c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_BIO_WRITE_EX:
            prov->c_bio_write_ex = OSSL_FUNC_BIO_write_ex(in);
            break;
        case OSSL_FUNC_BIO_READ_EX:
            prov->c_bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
            break;
        default:
            break;
        }
    }
    if (c_get_params == NULL || prov->c_new_error == NULL || prov->c_set_error_debug == NULL ||
        prov->c_vset_error == NULL || prov->c_bio_write_ex == NULL)
        goto end;

    conf[0] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_MODULE, (char **)&module, 0);
    conf[1] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_PIN, (char **)&pin, 0);
    conf[2] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_TOKEN, (char **)&token, 0);
    conf[3] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_OAEP_FALLBACK, (char **)&fallback, 0);
    conf[4] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_COPY_KEYS, (char **)&copies, 0);
    conf[5] = OSSL_PARAM_construct_end();
    if (!c_get_params(handle, conf))
        goto end;

    module = conf_value(&conf[0], "P11CHAT_PKCS11_MODULE");
    pin = conf_value(&conf[1], "P11CHAT_PKCS11_PIN");
    token = conf_value(&conf[2], "P11CHAT_PKCS11_TOKEN");
    fallback = conf_value(&conf[3], "P11CHAT_OAEP_FALLBACK");
    copies = conf_value(&conf[4], "P11CHAT_PKCS11_COPY_KEYS");
    if ((module != NULL && (prov->module_spec = OPENSSL_strdup(module)) == NULL) ||
        (pin != NULL && (prov->pin = OPENSSL_strdup(pin)) == NULL) ||
        (token != NULL && (prov->token_uri = OPENSSL_strdup(token)) == NULL))
        goto end;
    prov->oaep_fallback = 0;
    if (fallback != NULL) {
        prov->oaep_fallback = p11c_parse_bool(fallback);
        if (prov->oaep_fallback < 0) {
            not_started(prov, P11CHAT_CONF_OAEP_FALLBACK " = %s is not yes or no", fallback);
            goto end;
        }
    }

    prov->copy_keys = copies == NULL ? 1 : p11c_parse_bool(copies);
    if (prov->copy_keys < 0) {
        not_started(prov, P11CHAT_CONF_COPY_KEYS " = %s is not yes or no", copies);
        goto end;
    }
    /* The module is loaded on first use; a path that is not there is said now,
     * once, rather than at the first key a server opens. */
    if (module != NULL && strchr(module, '/') != NULL && access(module, R_OK) != 0)
        fprintf(stderr,
                "p11chat: warning: " P11CHAT_CONF_MODULE " = %s: no such readable file; keys in "
                "a token will not open (P11C_MODULE_LOAD) until the module is installed or its "
                "path is fixed.\n",
                module);

    if (!p11c_conf_tokens(prov, c_get_params, handle))
        goto end;

    pthread_once(&atexit_once, p11c_register_at_exit);
    pthread_once(&reasons_once, reasons_build);
    pthread_mutex_lock(&live_lock);
    prov->next = live_head;
    live_head = prov;
    pthread_mutex_unlock(&live_lock);

    *out = provider_functions;
    *provctx = prov;
    prov = NULL;
    ret = 1;
end:
    if (prov != NULL) {
        prov->finalised = 1;
        p11c_teardown(prov);
    }
    return ret;
}
