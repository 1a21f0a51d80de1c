/* trust add|list|remove: the store of peers whose fingerprints were checked. */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

static const char trust_usage[] =
    "usage: p11chat trust add NAME (--key KEY | --fingerprint HEX) [--trust FILE]\n"
    "       p11chat trust list [--trust FILE]\n"
    "       p11chat trust remove NAME [--trust FILE]\n"
    "\n"
    "The trust store binds a peer's identity (NAME, as the peer announces it)\n"
    "to the full fingerprint of its long-term key. Check a fingerprint another\n"
    "way (in person, by phone) before adding it.\n"
    "\n"
    "  --key KEY          take the fingerprint from a key (pkcs11: URI, or PEM file;\n"
    "                     a public key is enough)\n"
    "  --fingerprint HEX  the full fingerprint: 64 hex digits (colons allowed)\n"
    "  --pin-source FILE  PIN for a pkcs11: URI that needs one\n"
    "  --trust FILE       the store (default: $P11CHAT_TRUST, else\n"
    "                     $XDG_CONFIG_HOME/p11chat/trust, else ~/.config/p11chat/trust)\n";

const char *app_trust_path(const char *opt)
{
    static char path[PATH_MAX];
    const char *env;
    if (opt != NULL)
        return opt;
    if ((env = getenv("P11CHAT_TRUST")) != NULL && *env != '\0')
        return env;
    if ((env = getenv("XDG_CONFIG_HOME")) != NULL && *env == '/') {
        snprintf(path, sizeof(path), "%s/p11chat/trust", env);
        return path;
    }
    if ((env = getenv("HOME")) != NULL && *env != '\0') {
        snprintf(path, sizeof(path), "%s/.config/p11chat/trust", env);
        return path;
    }
    app_msg("no trust store: set HOME or P11CHAT_TRUST, or give --trust FILE");
    return NULL;
}

P11C_TRUST *app_trust_load(const char *path)
{
    unsigned bad = 0;
    P11C_TRUST *t = p11c_trust_new();
    if (t == NULL) {
        app_msg("out of memory");
        return NULL;
    }
    app_warn_shared("the trust store", path);
    p11c_err e = p11c_trust_load(t, path, &bad);
    if (e != P11C_OK) {
        if (bad != 0)
            app_msg("trust store '%s', line %u: malformed entry", path, bad);
        else
            app_msg("cannot read the trust store '%s': %s", path, p11c_strerror(e));
        p11c_trust_free(t);
        return NULL;
    }
    return t;
}

/* mkdir -p of the directory holding `path`, private to the user. */
static int make_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int save(P11C_TRUST *t, const char *path)
{
    if (make_parent(path) != 0) {
        app_msg("cannot make the directory for the trust store '%s': %s", path, strerror(errno));
        return APP_FAIL;
    }
    p11c_err e = p11c_trust_save(t, path);
    if (e != P11C_OK) {
        app_msg("cannot write the trust store '%s': %s", path, p11c_strerror(e));
        return APP_FAIL;
    }
    return APP_OK;
}

static int trust_add(const char *path, const char *name, const char *key, const char *hex,
                     const char *pin)
{
    uint8_t fp[P11C_FP_LEN];
    char s[P11C_SHORT_FP_LEN + 1];
    int ret = APP_FAIL;
    P11C_TRUST *t = NULL;
    EVP_PKEY *pkey = NULL;
    APP_OSSL o = {0};

    if (hex != NULL) {
        if (p11c_fingerprint_parse(hex, fp) != P11C_OK)
            return app_usage("trust add",
                             "--fingerprint needs the full fingerprint: 64 hex digits");
    } else {
        if (app_ossl_init(&o) != 0)
            return APP_FAIL;
        o.pin_source = pin;
        pkey = app_key_load(&o, key, 0);
        if (pkey == NULL)
            goto end;
        p11c_err e = p11c_fingerprint(o.libctx, NULL, pkey, fp);
        if (e != P11C_OK) {
            app_ossl_msg("cannot compute the fingerprint: %s", p11c_strerror(e));
            goto end;
        }
    }
    t = app_trust_load(path);
    if (t == NULL)
        goto end;

    /* Never rebind silently: a changed key for a known name, or a known key
     * under a new name, is exactly what the store is there to catch. */
    for (size_t i = 0; i < p11c_trust_count(t); i++) {
        const uint8_t *efp;
        const char *eid = p11c_trust_entry(t, i, &efp);
        int same_name = strcmp(eid, name) == 0;
        int same_fp = CRYPTO_memcmp(efp, fp, P11C_FP_LEN) == 0;
        if (same_name && same_fp) {
            p11c_fingerprint_short(fp, s);
            app_msg("'%s' is already trusted with this key (%s)", name, s);
            ret = APP_OK;
            goto end;
        }
        if (same_name) {
            app_msg("'%s' is already trusted with another key; if its key really changed, "
                    "run 'p11chat trust remove %s' first",
                    name, name);
            goto end;
        }
        if (same_fp) {
            app_msg("this key is already trusted as '%s'; one key has one name", eid);
            goto end;
        }
    }
    if (p11c_trust_add(t, name, fp) != P11C_OK) {
        app_msg("cannot add '%s'", name);
        goto end;
    }
    ret = save(t, path);
    if (ret == APP_OK) {
        p11c_fingerprint_short(fp, s);
        app_msg("trusted '%s' (%s) in %s", name, s, path);
    }
end:
    EVP_PKEY_free(pkey);
    p11c_trust_free(t);
    if (o.libctx != NULL)
        app_ossl_free(&o);
    return ret;
}

static int trust_list(const char *path)
{
    P11C_TRUST *t = app_trust_load(path);
    if (t == NULL)
        return APP_FAIL;
    for (size_t i = 0; i < p11c_trust_count(t); i++) {
        const uint8_t *fp;
        const char *id = p11c_trust_entry(t, i, &fp);
        char s[P11C_SHORT_FP_LEN + 1], hex[2 * P11C_FP_LEN + 1];
        p11c_fingerprint_short(fp, s);
        p11c_fingerprint_hex(fp, hex);
        printf("%s  %s  %s\n", s, hex, id);
    }
    p11c_trust_free(t);
    return fflush(stdout) == 0 ? APP_OK : APP_FAIL;
}

static int trust_remove(const char *path, const char *name)
{
    int ret = APP_FAIL;
    P11C_TRUST *t = app_trust_load(path);
    if (t == NULL)
        return APP_FAIL;
    if (p11c_trust_remove(t, name) != P11C_OK) {
        app_msg("'%s' is not in the trust store %s", name, path);
        goto end;
    }
    ret = save(t, path);
    if (ret == APP_OK)
        app_msg("removed '%s' from %s", name, path);
end:
    p11c_trust_free(t);
    return ret;
}

int cmd_trust(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},   {"fingerprint", required_argument, NULL, 'f'},
        {"trust", required_argument, NULL, 't'}, {"pin-source", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *hex = NULL, *file = NULL, *pin = NULL;
    int c;
    opterr = 0;
    optind = 1;
    /* Options may come before or after the action and its NAME. */
    while ((c = getopt_long(argc, argv, ":k:f:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'f':
            hex = optarg;
            break;
        case 't':
            file = optarg;
            break;
        case 'p':
            pin = optarg;
            break;
        case 'h':
            fputs(trust_usage, stdout);
            return APP_OK;
        case ':':
            return app_usage("trust", "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage("trust", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return app_usage("trust", "an action is needed: add, list or remove");
    const char *action = argv[optind++];
    int nargs = argc - optind;
    const char *name = nargs > 0 ? argv[optind] : NULL;

    if (strcmp(action, "add") == 0) {
        if (nargs != 1)
            return app_usage("trust add", nargs == 0 ? "NAME is required" : "too many arguments");
        if (!p11c_identity_valid((const uint8_t *)name, strlen(name)))
            return app_usage("trust add", "NAME must be 1 to 255 bytes of UTF-8 without control, "
                                          "format or separator characters or edge spaces");
        if ((key == NULL) == (hex == NULL))
            return app_usage("trust add", "give exactly one of --key KEY and --fingerprint HEX");
    } else if (strcmp(action, "remove") == 0) {
        if (nargs != 1)
            return app_usage("trust remove",
                             nargs == 0 ? "NAME is required" : "too many arguments");
    } else if (strcmp(action, "list") == 0) {
        if (nargs != 0)
            return app_usage("trust list", "unexpected argument '%s'", name);
    } else {
        return app_usage("trust", "unknown action '%s' (add, list or remove)", action);
    }
    if (strcmp(action, "add") != 0 && (key != NULL || hex != NULL || pin != NULL))
        return app_usage("trust", "--key, --fingerprint and --pin-source are for 'trust add'");

    const char *path = app_trust_path(file);
    if (path == NULL)
        return APP_FAIL;
    if (strcmp(action, "add") == 0)
        return trust_add(path, name, key, hex, pin);
    if (strcmp(action, "remove") == 0)
        return trust_remove(path, name);
    return trust_list(path);
}
