/*
 * Keys: a library context of our own with the default provider, the p11chat
 * provider loaded into it only when a pkcs11: URI is used, keys from URIs
 * (OSSL_STORE) or PEM files (OSSL_DECODER), and the keygen and fingerprint
 * commands. The token is reached only through OpenSSL and the provider.
 */
/* realpath() */
#define _XOPEN_SOURCE 700

#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include "p11chat_provider.h"

/* ---- Context and provider ------------------------------------------------- */

int app_ossl_init(APP_OSSL *o)
{
    memset(o, 0, sizeof(*o));
    o->libctx = OSSL_LIB_CTX_new();
    if (o->libctx == NULL) {
        app_ossl_msg("cannot make an OpenSSL library context");
        return -1;
    }
    /* A configuration the user points at explicitly is honoured: it may
     * describe the p11chat provider's section (module, PIN, token). */
    const char *conf = getenv("OPENSSL_CONF");
    if (conf != NULL && *conf != '\0' && !OSSL_LIB_CTX_load_config(o->libctx, conf)) {
        app_ossl_msg("cannot load the OpenSSL configuration '%s' (OPENSSL_CONF)", conf);
        goto fail;
    }
    if (!OSSL_PROVIDER_available(o->libctx, "default") &&
        OSSL_PROVIDER_load(o->libctx, "default") == NULL) {
        app_ossl_msg("cannot load OpenSSL's default provider");
        goto fail;
    }
    return 0;
fail:
    OSSL_LIB_CTX_free(o->libctx);
    o->libctx = NULL;
    return -1;
}

void app_ossl_free(APP_OSSL *o)
{
    /* Freeing the context unloads the providers loaded into it. */
    OSSL_LIB_CTX_free(o->libctx);
    o->libctx = NULL;
}

const char *app_provider_dir(void)
{
    static char dir[PATH_MAX];
    char exe[PATH_MAX], exedir[PATH_MAX], built[PATH_MAX];

    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            /* Run from the build tree: the provider built beside us. */
            if (realpath(exe, exedir) != NULL && realpath(P11C_BUILD_APPS_DIR, built) != NULL &&
                strcmp(exedir, built) == 0) {
                snprintf(dir, sizeof(dir), "%s", P11C_BUILD_PROVIDER_DIR);
                return dir;
            }
        }
    }
    snprintf(dir, sizeof(dir), "%s", P11C_INSTALL_MODULES_DIR);
    return dir;
}

int app_ossl_need_provider(APP_OSSL *o)
{
    if (o->provider_loaded)
        return 0;
    /* --pin-source is also the provider's PIN for what has no URI of its own
     * (session keys made in the token), unless the user set one already. */
    if (o->pin_source != NULL && getenv("P11CHAT_PKCS11_PIN") == NULL) {
        char abs[PATH_MAX], spec[PATH_MAX + 8];
        if (realpath(o->pin_source, abs) == NULL) {
            app_msg("cannot read the PIN file '%s': %s", o->pin_source, strerror(errno));
            return -1;
        }
        snprintf(spec, sizeof(spec), "file:%s", abs);
        setenv("P11CHAT_PKCS11_PIN", spec, 1);
    }
    if (!OSSL_PROVIDER_available(o->libctx, P11CHAT_PROVIDER_NAME)) {
        const char *dir = app_provider_dir();
        if (!OSSL_PROVIDER_set_default_search_path(o->libctx, dir) ||
            OSSL_PROVIDER_load(o->libctx, P11CHAT_PROVIDER_NAME) == NULL) {
            app_ossl_msg("cannot load the p11chat provider from %s", dir);
            return -1;
        }
    }
    o->provider_loaded = 1;
    return 0;
}

/* ---- pkcs11: URIs, as strings ----------------------------------------------- */

int app_is_uri(const char *spec)
{
    return spec != NULL && strncasecmp(spec, "pkcs11:", 7) == 0;
}

static int hexval(int c)
{
    return OPENSSL_hexchar2int((unsigned char)c);
}

/* Percent-decodes s[0..n) into a fresh NUL-terminated buffer. */
static char *pct_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* The path part (after "pkcs11:", before '?') and the query part. */
static void uri_split(const char *uri, const char **path, size_t *pathlen, const char **query)
{
    const char *p = uri + 7;
    const char *q = strchr(p, '?');
    *path = p;
    *pathlen = q != NULL ? (size_t)(q - p) : strlen(p);
    *query = q != NULL ? q + 1 : NULL;
}

/* Finds attribute `name` in a list of attributes separated by `sep`. */
static const char *attr_find(const char *list, size_t len, char sep, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *e = memchr(p, sep, (size_t)(end - p));
        if (e == NULL)
            e = end;
        if ((size_t)(e - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *vlen = (size_t)(e - p) - nlen - 1;
            return p + nlen + 1;
        }
        p = e + 1;
    }
    return NULL;
}

char *app_uri_attr(const char *uri, const char *name, size_t *len)
{
    const char *path, *query;
    size_t pathlen, vlen;
    *len = 0;
    uri_split(uri, &path, &pathlen, &query);
    const char *v = attr_find(path, pathlen, ';', name, &vlen);
    if (v == NULL)
        return NULL;
    char *out = pct_decode(v, vlen, len);
    if (out == NULL)
        *len = (size_t)-1;
    return out;
}

static int query_has(const char *uri, const char *name)
{
    const char *path, *query;
    size_t pathlen, vlen;
    uri_split(uri, &path, &pathlen, &query);
    return query != NULL && attr_find(query, strlen(query), '&', name, &vlen) != NULL;
}

/* Appends s[0..n) percent-encoded (RFC 3986 unreserved and '/' kept). */
static size_t pct_encode(char *out, const uint8_t *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

char *app_uri_with_pin(const char *uri, const char *pin_source)
{
    if (pin_source == NULL)
        return strdup(uri);
    if (query_has(uri, "pin-value") || query_has(uri, "pin-source")) {
        app_msg("--pin-source given, but the URI already has a PIN attribute "
                "(pin-value or pin-source): give only one");
        return NULL;
    }
    char abs[PATH_MAX];
    if (realpath(pin_source, abs) == NULL || access(abs, R_OK) != 0) {
        app_msg("cannot read the PIN file '%s': %s", pin_source, strerror(errno));
        return NULL;
    }
    app_warn_shared("the PIN file", pin_source);
    size_t n = strlen(uri), alen = strlen(abs);
    char *out = malloc(n + 13 + 3 * alen + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, uri, n);
    memcpy(out + n, strchr(uri, '?') != NULL ? "&pin-source=" : "?pin-source=", 12);
    pct_encode(out + n + 12, (const uint8_t *)abs, alen, 1);
    return out;
}

/* The URI without the path attributes named in `drop` (NULL-terminated). */
static char *uri_without(const char *uri, const char *const *drop)
{
    const char *path, *query;
    size_t pathlen;
    uri_split(uri, &path, &pathlen, &query);
    char *out = malloc(strlen(uri) + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    memcpy(out, "pkcs11:", 7);
    o = 7;
    const char *p = path, *end = path + pathlen;
    while (p < end) {
        const char *e = memchr(p, ';', (size_t)(end - p));
        if (e == NULL)
            e = end;
        int skip = (e == p);
        for (size_t i = 0; !skip && drop[i] != NULL; i++) {
            size_t n = strlen(drop[i]);
            if ((size_t)(e - p) > n && strncasecmp(p, drop[i], n) == 0 && p[n] == '=')
                skip = 1;
        }
        if (!skip) {
            if (o > 7)
                out[o++] = ';';
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        p = e + 1;
    }
    if (query != NULL) {
        out[o++] = '?';
        memcpy(out + o, query, strlen(query));
        o += strlen(query);
    }
    out[o] = '\0';
    return out;
}

char *app_uri_token(const char *uri)
{
    static const char *const drop[] = {"object", "id", "type", NULL};
    return uri_without(uri, drop);
}

/* ---- Loading keys --------------------------------------------------------- */

static EVP_PKEY *load_uri(APP_OSSL *o, const char *spec, int need_private)
{
    EVP_PKEY *pkey = NULL, *pub = NULL;
    OSSL_STORE_CTX *sc = NULL;
    char *uri = NULL;

    uri = app_uri_with_pin(spec, o->pin_source);
    if (uri == NULL || app_ossl_need_provider(o) != 0)
        goto end;
    sc = OSSL_STORE_open_ex(uri, o->libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    if (sc == NULL) {
        app_ossl_msg("cannot open the key URI");
        goto end;
    }
    while (pkey == NULL && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
        if (info == NULL) {
            if (OSSL_STORE_error(sc))
                break;
            continue;
        }
        int type = OSSL_STORE_INFO_get_type(info);
        if (type == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        else if (type == OSSL_STORE_INFO_PUBKEY && pub == NULL)
            pub = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    if (pkey == NULL && pub != NULL && !need_private) {
        pkey = pub;
        pub = NULL;
    }
    if (pkey == NULL) {
        if (ERR_peek_error() != 0)
            app_ossl_msg("no usable key at the URI");
        else if (pub != NULL)
            app_msg("the URI names only a public key; this needs the private key "
                    "(drop type=public, and give the PIN)");
        else
            app_msg("no %skey matches the URI", need_private ? "private " : "");
    }
end:
    OSSL_STORE_close(sc);
    EVP_PKEY_free(pub);
    free(uri);
    ERR_clear_error();
    return pkey;
}

/* Encrypted PEM files are not supported: never prompt for a passphrase. */
static int no_passphrase(char *pass, size_t size, size_t *len, const OSSL_PARAM params[], void *arg)
{
    (void)pass;
    (void)size;
    (void)params;
    (void)arg;
    *len = 0;
    return 0;
}

static EVP_PKEY *load_file(APP_OSSL *o, const char *path, int need_private)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    BIO *bio = BIO_new_file(path, "rb");
    if (bio == NULL) {
        app_msg("cannot open the key file '%s': %s", path, strerror(errno));
        goto end;
    }
    dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, NULL, NULL, "RSA", need_private ? EVP_PKEY_KEYPAIR : 0,
                                      o->libctx, "?provider=default");
    if (dctx == NULL || !OSSL_DECODER_CTX_set_passphrase_cb(dctx, no_passphrase, NULL)) {
        app_ossl_msg("cannot set up a key decoder");
        goto end;
    }
    if (!OSSL_DECODER_from_bio(dctx, bio) || pkey == NULL) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        app_msg("'%s' holds no %sRSA key OpenSSL can read (PEM or DER; not encrypted)", path,
                need_private ? "private " : "");
    }
end:
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(bio);
    ERR_clear_error();
    return pkey;
}

EVP_PKEY *app_key_load(APP_OSSL *o, const char *spec, int need_private)
{
    if (app_is_uri(spec))
        return load_uri(o, spec, need_private);
    return load_file(o, spec, need_private);
}

int app_key_check(APP_OSSL *o, EVP_PKEY *key, const char *spec)
{
    static const unsigned char probe[] = "p11chat: the key can sign";
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    int ret = -1;

    if (!app_is_uri(spec))
        return 0; /* a key file: nothing to log in to */
    /* A token logs in on the first private-key operation: make it now, so
     * that a wrong PIN shows before anyone is waiting on the other side. */
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit_ex(md, &pctx, "SHA256", o->libctx, NULL, key, NULL) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, probe, sizeof(probe) - 1) != 1 ||
        (sig = OPENSSL_malloc(siglen)) == NULL ||
        EVP_DigestSign(md, sig, &siglen, probe, sizeof(probe) - 1) != 1) {
        app_ossl_msg("the token key cannot sign (check the PIN, --pin-source, and that the "
                     "URI names the private key)");
        goto end;
    }
    ret = 0;
end:
    OPENSSL_free(sig);
    EVP_MD_CTX_free(md);
    return ret;
}

/* ---- fingerprint -------------------------------------------------------- */

static const char fingerprint_usage[] =
    "usage: p11chat fingerprint --key KEY [--pin-source FILE]\n"
    "\n"
    "Prints the short fingerprint (the form people compare) and the full one\n"
    "(the SHA-256 of the public key, which the trust store keeps).\n"
    "KEY is a pkcs11: URI or a PEM file (a public key is enough).\n";

static int print_fingerprint(APP_OSSL *o, EVP_PKEY *key)
{
    uint8_t fp[P11C_FP_LEN];
    char s[P11C_SHORT_FP_LEN + 1], hex[2 * P11C_FP_LEN + 1];
    p11c_err e = p11c_fingerprint(o->libctx, NULL, key, fp);
    if (e != P11C_OK) {
        app_ossl_msg("cannot compute the fingerprint: %s", p11c_strerror(e));
        return APP_FAIL;
    }
    p11c_fingerprint_short(fp, s);
    p11c_fingerprint_hex(fp, hex);
    printf("short: %s\nfull:  %s\n", s, hex);
    return fflush(stdout) == 0 ? APP_OK : APP_FAIL;
}

int cmd_fingerprint(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"pin-source", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *pin = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'p':
            pin = optarg;
            break;
        case 'h':
            fputs(fingerprint_usage, stdout);
            return APP_OK;
        case ':':
            return app_usage("fingerprint", "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage("fingerprint", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return app_usage("fingerprint", "unexpected argument '%s'", argv[optind]);
    if (key == NULL)
        return app_usage("fingerprint", "--key KEY is required");

    APP_OSSL o;
    int ret = APP_FAIL;
    EVP_PKEY *pkey = NULL;
    if (app_ossl_init(&o) != 0)
        return APP_FAIL;
    o.pin_source = pin;
    pkey = app_key_load(&o, key, 0);
    if (pkey != NULL)
        ret = print_fingerprint(&o, pkey);
    EVP_PKEY_free(pkey);
    app_ossl_free(&o);
    return ret;
}

/* ---- keygen --------------------------------------------------------------- */

static const char keygen_usage[] =
    "usage: p11chat keygen --key URI [--bits 2048|3072|4096] [--pin-source FILE]\n"
    "\n"
    "Makes a long-term RSA key pair inside the token named by the pkcs11: URI.\n"
    "The URI gives the label (object=NAME, required) and may give the id\n"
    "(id=%01%02...); without one a random id is chosen. A label or id already\n"
    "in use on the token is refused, so no key is ever replaced.\n"
    "Prints the URI of the new key and its fingerprints.\n";

/* 1 when some object (key half) matches `uri`, 0 when none does. */
static int uri_taken(APP_OSSL *o, const char *uri)
{
    int found = 0;
    OSSL_STORE_CTX *sc = OSSL_STORE_open_ex(uri, o->libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    while (sc != NULL && !found && !OSSL_STORE_eof(sc)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
        if (info == NULL) {
            if (OSSL_STORE_error(sc))
                break;
            continue;
        }
        found = 1;
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(sc);
    ERR_clear_error();
    return found;
}

/* Adds ";id=%xx..." for `id` to a URI's path part. */
static char *uri_with_id(const char *uri, const uint8_t *id, size_t idlen)
{
    const char *path, *query;
    size_t pathlen;
    uri_split(uri, &path, &pathlen, &query);
    size_t n = strlen(uri);
    char *out = malloc(n + 5 + 3 * idlen + 1);
    if (out == NULL)
        return NULL;
    size_t head = (size_t)(path - uri) + pathlen;
    memcpy(out, uri, head);
    size_t o = head;
    if (pathlen > 0)
        out[o++] = ';';
    memcpy(out + o, "id=", 3);
    o += 3;
    for (size_t i = 0; i < idlen; i++)
        o += (size_t)snprintf(out + o, 4, "%%%02x", id[i]);
    memcpy(out + o, uri + head, n - head + 1);
    return out;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"bits", required_argument, NULL, 'b'},
        {"pin-source", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *pin = NULL;
    unsigned long bits = 2048;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:k:b:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'b':
            if (app_parse_uint(optarg, 0, 65536, &bits) != 0 ||
                (bits != 2048 && bits != 3072 && bits != 4096))
                return app_usage("keygen", "--bits must be 2048, 3072 or 4096, not '%s'", optarg);
            break;
        case 'p':
            pin = optarg;
            break;
        case 'h':
            fputs(keygen_usage, stdout);
            return APP_OK;
        case ':':
            return app_usage("keygen", "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return app_usage("keygen", "unexpected argument '%s'", argv[optind]);
    if (key == NULL)
        return app_usage("keygen", "--key URI is required");
    if (!app_is_uri(key))
        return app_usage("keygen", "--key must be a pkcs11: URI (keys are made in the token)");

    int ret = APP_FAIL;
    APP_OSSL o;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    char *uri = NULL, *label = NULL, *idattr = NULL, *probe = NULL, *final = NULL;
    uint8_t idbuf[8];
    const uint8_t *id;
    size_t labellen, idlen;
    int id_given;

    if (app_ossl_init(&o) != 0)
        return APP_FAIL;
    o.pin_source = pin;

    label = app_uri_attr(key, "object", &labellen);
    if (labellen == (size_t)-1) {
        ret = app_usage("keygen", "malformed percent-encoding in the URI's object attribute");
        goto end;
    }
    if (label == NULL || labellen == 0 || strlen(label) != labellen) {
        ret = app_usage("keygen", "the URI must name the new key: object=LABEL");
        goto end;
    }
    idattr = app_uri_attr(key, "id", &idlen);
    if (idlen == (size_t)-1) {
        ret = app_usage("keygen", "malformed percent-encoding in the URI's id attribute");
        goto end;
    }
    id_given = idattr != NULL;
    if (id_given && idlen == 0) {
        ret = app_usage("keygen", "the URI's id attribute is empty");
        goto end;
    }
    if (!id_given) {
        if (RAND_bytes_ex(o.libctx, idbuf, sizeof(idbuf), 0) != 1) {
            app_ossl_msg("cannot draw a random key id");
            goto end;
        }
        id = idbuf;
        idlen = sizeof(idbuf);
    } else {
        id = (const uint8_t *)idattr;
    }
    if (app_ossl_need_provider(&o) != 0)
        goto end;
    uri = app_uri_with_pin(key, pin);
    if (uri == NULL)
        goto end;
    final = id_given ? strdup(uri) : uri_with_id(uri, id, idlen);
    if (final == NULL)
        goto end;

    /* Refuse before the token is asked to make anything: a label or an id
     * already in use would make two keys answer to one name. */
    static const char *const drop_id[] = {"id", "type", NULL};
    static const char *const drop_label[] = {"object", "type", NULL};
    probe = uri_without(final, drop_id);
    if (probe == NULL)
        goto end;
    if (uri_taken(&o, probe)) {
        app_msg("keygen: the label '%s' is already taken on this token; "
                "choose another object= (no key was made)",
                label);
        goto end;
    }
    free(probe);
    probe = uri_without(final, drop_label);
    if (probe == NULL)
        goto end;
    if (uri_taken(&o, probe)) {
        app_msg("keygen: the id is already taken on this token; choose another id= or "
                "leave it out for a random one (no key was made)");
        goto end;
    }

    ctx = EVP_PKEY_CTX_new_from_name(o.libctx, "RSA", P11CHAT_PROVIDER_PROPQ);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0) {
        app_ossl_msg("keygen: the provider cannot make RSA keys");
        goto end;
    }
    {
        size_t b = bits;
        int persistent = 1;
        OSSL_PARAM params[] = {
            OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, &b),
            OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_URI, final, 0),
            OSSL_PARAM_utf8_string(P11CHAT_PKEY_PARAM_LABEL, label, 0),
            OSSL_PARAM_octet_string(P11CHAT_PKEY_PARAM_ID, (void *)id, idlen),
            OSSL_PARAM_int(P11CHAT_PKEY_PARAM_PERSISTENT, &persistent),
            OSSL_PARAM_END,
        };
        if (EVP_PKEY_CTX_set_params(ctx, params) <= 0) {
            app_ossl_msg("keygen: the provider refused the key parameters");
            goto end;
        }
    }
    if (EVP_PKEY_keygen(ctx, &pkey) <= 0) {
        app_ossl_msg("keygen: the token could not make the key (no key was made)");
        if (pin == NULL && !query_has(key, "pin-value") && !query_has(key, "pin-source") &&
            getenv("P11CHAT_PKCS11_PIN") == NULL)
            app_msg("keygen: no PIN was given: use --pin-source FILE");
        goto end;
    }
    {
        /* The URI to use from now on, without its query (no PIN in it). */
        const char *q = strchr(final, '?');
        printf("key:   %.*s\n", (int)(q != NULL ? (size_t)(q - final) : strlen(final)), final);
    }
    ret = print_fingerprint(&o, pkey);
    if (ret == APP_OK)
        app_msg("made a %lu-bit key '%s' in the token", bits, label);
end:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    free(uri);
    free(final);
    free(probe);
    free(label);
    free(idattr);
    app_ossl_free(&o);
    return ret;
}
