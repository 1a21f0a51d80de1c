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
