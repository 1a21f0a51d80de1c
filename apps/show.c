/*
 * What the reader sees: status lines that start with the verdict, and the
 * peer's name quoted, so that nothing a peer chooses (its identity, its
 * messages) can pass for a line of ours.
 */
#include "app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a trust store path and a line number in a message. */
#define PATH_MAX_SHOWN 4200

char *app_quote(const char *name)
{
    char *esc = app_escape((const uint8_t *)name, strlen(name)), *out = NULL;
    size_t n = 0, quotes = 0;

    if (esc == NULL)
        return NULL;
    for (const char *p = esc; *p != '\0'; p++)
        quotes += *p == '\'';
    out = malloc(strlen(esc) + quotes + 3);
    if (out != NULL) {
        out[n++] = '\'';
        for (const char *p = esc; *p != '\0'; p++) {
            if (*p == '\'')
                out[n++] = '\\';
            out[n++] = *p;
        }
        out[n++] = '\'';
        out[n] = '\0';
    }
    free(esc);
    return out;
}

char *app_sender_name(const char *name)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._@+-";

    if (name[0] != '\0' && strspn(name, plain) == strlen(name))
        return strdup(name);
    return app_quote(name);
}

void app_status(const char *verdict, const char *peer_id, const char *short_fp, const char *fmt,
                ...)
{
    char text[2048];
    char *q = app_quote(peer_id);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    app_msg("%s: %s %s: %s", verdict, q != NULL ? q : "(out of memory)", short_fp, text);
    free(q);
}

/* "FILE line N" for trust entry i. */
static const char *where(const APP_CHAT *c, long i, char *buf, size_t len)
{
    unsigned line = p11c_trust_entry_line(c->trust, (size_t)i);
    if (line > 0)
        snprintf(buf, len, "%s line %u", c->trust_path, line);
    else
        snprintf(buf, len, "%s", c->trust_path);
    return buf;
}

void app_show_refused(const APP_CHAT *c, const P11C_EVENT *ev)
{
    char hex[2 * P11C_FP_LEN + 1], other[2 * P11C_FP_LEN + 1], at[PATH_MAX_SHOWN];
    const char *name = ev->peer_id;
    const uint8_t *fp = NULL;
    long by_id, by_fp;
    char *q = NULL, *qe = NULL;

    p11c_fingerprint_hex(ev->fp, hex);
    if (c->peer != NULL && strcmp(c->peer, name) != 0) {
        q = app_quote(c->peer);
        app_status("NOT THE PEER ASKED FOR", name, ev->short_fp,
                   "refused: --peer asked for %s; this peer %s. Nothing was sent to it.",
                   q != NULL ? q : "?",
                   ev->trust == P11C_TRUSTED ? "is trusted under its own name"
                                             : "is not the one trusted under that name");
        goto end;
    }
    if (ev->error == P11C_ERR_UNKNOWN_PEER) {
        app_status(p11c_trust_result_name(P11C_UNKNOWN), name, ev->short_fp,
                   "refused (%s): its fingerprint is %s; if you know this peer, check the "
                   "fingerprint with them another way, then 'p11chat trust add'",
                   c->peer != NULL ? "--peer" : "--known-only", hex);
        goto end;
    }
    p11c_trust_conflicts(c->trust, (const uint8_t *)name, strlen(name), ev->fp, &by_id, &by_fp);
    if (by_id >= 0) {
        p11c_trust_entry(c->trust, (size_t)by_id, &fp);
        p11c_fingerprint_hex(fp, other);
        q = app_quote(name);
        app_status(p11c_trust_result_name(P11C_MISMATCH), name, ev->short_fp,
                   "refused: it presented the key %s, but %s binds %s to the key %s. Someone may "
                   "be posing as %s: check with them another way; only if they really have a new "
                   "key, 'p11chat trust remove' the old entry and 'p11chat trust add' the new one",
                   hex, where(c, by_id, at, sizeof(at)), q != NULL ? q : "?", other,
                   q != NULL ? q : "?");
    } else if (by_fp >= 0) {
        qe = app_quote(p11c_trust_entry(c->trust, (size_t)by_fp, NULL));
        app_status(p11c_trust_result_name(P11C_MISMATCH), name, ev->short_fp,
                   "refused: its key %s is the one %s binds to %s. Whoever holds that key now "
                   "uses another name: check with %s another way; only if the new name is "
                   "right, 'p11chat trust remove' the old entry and 'p11chat trust add' the new "
                   "one",
                   hex, where(c, by_fp, at, sizeof(at)), qe != NULL ? qe : "?",
                   qe != NULL ? qe : "?");
    } else {
        app_status(p11c_trust_result_name(P11C_MISMATCH), name, ev->short_fp,
                   "refused: its key %s or its name is bound to another in %s", hex, c->trust_path);
    }
end:
    free(q);
    free(qe);
}
