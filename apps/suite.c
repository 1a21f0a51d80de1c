/*
 * The protocol suite as the command shows and chooses it (spec section 10):
 * --suite 1|2, the status line that names the suite of a session, and what
 * an initiator of suite 0x02 is told when its peer drops the handshake.
 */
#include "app.h"

#include <string.h>

int app_suite_option(const char *cmd, const char *arg, APP_CHAT_OPTS *o)
{
    if (strcmp(arg, "1") == 0)
        o->suite = P11C_SUITE_1;
    else if (strcmp(arg, "2") == 0)
        o->suite = P11C_SUITE_2;
    else
        return app_usage(cmd, "--suite must be 1 or 2, not '%s'", arg), -1;
    return 1;
}

const char *app_suite_name(int suite)
{
    switch (suite) {
    case P11C_SUITE_1:
        return "suite 0x01 (RSA keys, RSA session key, OAEP)";
    case P11C_SUITE_2:
        return "suite 0x02 (RSA or EC keys, ephemeral ECDH)";
    default:
        return "no suite yet";
    }
}

void app_suite_established(const APP_CHAT *c)
{
    app_msg("protocol %s", app_suite_name(p11c_session_suite(c->s)));
}

void app_suite_handshake_ended(const APP_CHAT *c)
{
    /* A peer older than suite 0x02 drops its HELLO without a word. */
    if (c->role == P11C_INITIATOR && p11c_session_suite(c->s) == P11C_SUITE_2)
        app_msg("we offered suite 0x02; a peer that speaks only suite 0x01 refuses it: "
                "with an RSA key, try again with --suite 1");
}
