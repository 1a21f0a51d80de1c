/* p11chat: the command and its subcommands. */
#include "app.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "p11chat_provider.h"

static const char usage_text[] =
    "usage: p11chat COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "End-to-end encrypted chat with long-term keys in a PKCS#11 token.\n"
    "\n"
    "commands:\n"
    "  keygen       make a long-term key pair inside the token\n"
    "  fingerprint  show the fingerprint of a key\n"
    "  keyfile      write a PEM key file naming a token key (for servers)\n"
    "  trust        add, list or remove trusted peers (trust add|list|remove)\n"
    "  listen       wait for one peer over TCP and chat\n"
    "  connect      connect to a peer over TCP and chat\n"
    "  wrap         carry the chat inside a line-based chat program\n"
    "  irc          chat over IRC, privately or in a channel\n"
    "\n"
    "KEY is a pkcs11: URI (a key in the token) or a PEM file (a software key).\n"
    "Run 'p11chat COMMAND --help' for the options of each command.\n"
    "Options: --help, --version.\n";

void app_msg(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", APP_NAME, buf);
}

void app_ossl_msg(const char *fmt, ...)
{
    char buf[2048];
    char reason[512] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    /* The first error raised is the one nearest the cause (the provider's
     * PKCS#11 reason, say); later ones are the callers' generic summaries.
     * Engine and DSO errors are noise from inside the token library (SoftHSM2
     * looks for OpenSSL engines it may not find). */
    const char *data = NULL;
    int flags = 0;
    unsigned long e, first = 0;
    const char *first_data = NULL;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        int lib = ERR_GET_LIB(e);
        if (first == 0 && lib != ERR_LIB_DSO && lib != ERR_LIB_ENGINE) {
            first = e;
            first_data = (flags & ERR_TXT_STRING) && data != NULL && *data ? data : NULL;
            snprintf(reason, sizeof(reason), ": %s",
                     first_data != NULL                   ? first_data
                     : ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e)
                                                          : "unknown error");
        }
    }
    fprintf(stderr, "%s: %s%s\n", APP_NAME, buf, reason);
}

int app_usage(const char *cmd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s%s: %s (see '%s%s%s --help')\n", APP_NAME, cmd ? " " : "", cmd ? cmd : "",
            buf, APP_NAME, cmd ? " " : "", cmd ? cmd : "");
    return APP_USAGE;
}

void app_warn_shared(const char *what, const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
        return;
    app_msg("warning: %s '%s' is %s by other users (mode %04o): run 'chmod 600 %s'", what, path,
            (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ? "writable" : "readable",
            (unsigned)(st.st_mode & 07777), path);
}

int app_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Our version and OpenSSL's, then the provider's (it is what links p11-kit):
 * the one this command would load, found as for a pkcs11: URI. */
static int print_version(void)
{
    const char *dir = app_provider_dir();
    char *buildinfo = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, &buildinfo, 0),
        OSSL_PARAM_END,
    };
    OSSL_PROVIDER *prov = NULL;
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();

    printf("%s %s (P11C protocol version %d, %s)\n", APP_NAME, APP_VERSION, P11C_VERSION,
           OpenSSL_version(OPENSSL_VERSION));
    if (libctx != NULL && OSSL_PROVIDER_set_default_search_path(libctx, dir))
        prov = OSSL_PROVIDER_load(libctx, P11CHAT_PROVIDER_NAME);
    if (prov != NULL && OSSL_PROVIDER_get_params(prov, params) && buildinfo != NULL)
        printf("provider %s/p11chat.so: %s\n", dir, buildinfo);
    else
        printf("provider: none loads from %s (set OPENSSL_MODULES to its directory)\n", dir);
    ERR_clear_error();
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(libctx);
    return fflush(stdout) == 0 ? APP_OK : APP_FAIL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return app_usage(NULL, "a command is needed");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return APP_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return print_version();

    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"keygen", cmd_keygen}, {"fingerprint", cmd_fingerprint}, {"trust", cmd_trust},
        {"listen", cmd_listen}, {"connect", cmd_connect},         {"wrap", cmd_wrap},
        {"irc", cmd_irc},       {"keyfile", cmd_keyfile},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    if (cmd[0] == '-')
        return app_usage(NULL, "unknown option '%s'", cmd);
    return app_usage(NULL, "unknown command '%s'", cmd);
}
