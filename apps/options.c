/*
 * The options every chat command takes (listen, connect, wrap, and any
 * later transport): one table entry list, one help text, one parser.
 */
#include "app.h"

#include <string.h>

const char app_chat_help[] =
    "  --key KEY                 our long-term key: pkcs11: URI or PEM file\n"
    "  --id NAME                 our identity, as the peer will see it\n"
    "  --pin-source FILE         the token PIN, read from FILE\n"
    "  --trust FILE              the trust store (see 'p11chat trust --help')\n"
    "  --known-only              refuse a peer that is not in the trust store\n"
    "  --peer NAME               talk only to NAME, a trusted identity: refuse\n"
    "                            anyone else, trusted or not\n"
    "  --accept-unknown          send lines typed before the session to a peer\n"
    "                            that is not in the trust store, without asking\n"
    "  --raw                     show each received message alone, without the\n"
    "                            sender's name or marks (for scripts)\n"
    "  --session-key software|token\n"
    "                            where the one-time session key is made (default\n"
    "                            software; token: an ephemeral token object)\n"
    "  --verbose                 also show the peer's confirmations as they come\n";

int app_chat_option(const char *cmd, int opt, const char *arg, APP_CHAT_OPTS *o)
{
    unsigned long v;
    switch (opt) {
    case 'k':
        o->key = arg;
        return 1;
    case 'i':
        o->id = arg;
        return 1;
    case 't':
        o->trust = arg;
        return 1;
    case 'p':
        o->pin_source = arg;
        return 1;
    case 'K':
        o->known_only = 1;
        return 1;
    case 'v':
        o->verbose = 1;
        return 1;
    case APP_OPT_PEER:
        if (!p11c_identity_valid((const uint8_t *)arg, strlen(arg)))
            return app_usage(cmd, "--peer must be an identity, as in the trust store"), -1;
        o->peer = arg;
        return 1;
    case APP_OPT_ACCEPT_UNKNOWN:
        o->accept_unknown = 1;
        return 1;
    case APP_OPT_RAW:
        o->raw = 1;
        return 1;
    case 'P':
        if (strcmp(arg, "strict") == 0)
            o->policy = P11C_POLICY_STRICT;
        else if (strcmp(arg, "window") == 0)
            o->policy = P11C_POLICY_WINDOW;
        else
            return app_usage(cmd, "--policy must be strict or window, not '%s'", arg), -1;
        return 1;
    case 'S':
        if (strcmp(arg, "software") == 0)
            o->token_session = 0;
        else if (strcmp(arg, "token") == 0)
            o->token_session = 1;
        else
            return app_usage(cmd, "--session-key must be software or token, not '%s'", arg), -1;
        return 1;
    case 'T':
        if (app_parse_uint(arg, 1, 3600, &v) != 0)
            return app_usage(cmd, "--timeout must be 1 to 3600 seconds, not '%s'", arg), -1;
        o->timeout = (unsigned)v;
        return 1;
    default:
        return 0;
    }
}

int app_chat_check(const char *cmd, const APP_CHAT_OPTS *o)
{
    if (o->key == NULL)
        return app_usage(cmd, "--key KEY is required");
    if (o->id == NULL)
        return app_usage(cmd, "--id NAME is required");
    if (!p11c_identity_valid((const uint8_t *)o->id, strlen(o->id)))
        return app_usage(cmd, "--id must be 1 to 255 bytes of UTF-8 without control, format or "
                              "separator characters or edge spaces");
    if (o->peer != NULL && o->accept_unknown)
        return app_usage(cmd, "--peer talks only to a trusted peer: --accept-unknown has no use");
    return APP_OK;
}
