/*
 * Lines typed before the session exists: nobody has been verified yet, so
 * they wait. They go only to a trusted peer, or to one not in the trust
 * store once the person has seen the verdict and agreed (spec section 7).
 */
#include "app.h"

#include <stdlib.h>
#include <string.h>

/* More than this typed before the session is not held. */
#define HELD_MAX (4u << 20)

int app_held_add(APP_CHAT *c, const uint8_t *line, size_t len)
{
    uint8_t n[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};

    if (len > P11C_MAX_DATA) {
        app_line_too_long(len);
        return -1;
    }
    if (c->held.len + 4 + len > HELD_MAX) {
        app_msg("line of %zu bytes not sent: %u bytes are already waiting for the session", len,
                HELD_MAX);
        return -1;
    }
    if (app_buf_add(&c->held, n, 4) != 0 || app_buf_add(&c->held, line, len) != 0) {
        app_msg("out of memory: a line typed before the session is not sent");
        return -1;
    }
    c->nheld++;
    return 0;
}

static void send_held(APP_CHAT *c)
{
    size_t off = 0, n = c->nheld;
    APP_BUF held = c->held;

    /* Taken out first: sending goes through app_chat_send_line. */
    memset(&c->held, 0, sizeof(c->held));
    c->nheld = 0;
    for (size_t i = 0; i < n && !c->finished; i++) {
        size_t len = (size_t)held.b[off] << 24 | (size_t)held.b[off + 1] << 16 |
                     (size_t)held.b[off + 2] << 8 | held.b[off + 3];
        app_chat_send_line(c, held.b + off + 4, len);
        off += 4 + len;
    }
    app_buf_free(&held);
}

void app_held_drop(APP_CHAT *c, const char *why)
{
    if (c->nheld > 0 && why != NULL)
        app_msg("%zu line(s) typed before the session were not sent: %s", c->nheld, why);
    app_buf_free(&c->held);
    c->nheld = 0;
    c->asking = 0;
}

void app_held_release(APP_CHAT *c, const P11C_EVENT *ev)
{
    const char *verdict = p11c_trust_result_name(ev->trust);

    if (c->nheld == 0 || ev->trust == P11C_TRUSTED || c->accept_unknown) {
        send_held(c);
    } else if (c->tty && !c->close_wanted) {
        c->asking = 1;
        app_status(verdict, ev->peer_id, ev->short_fp,
                   "%zu line(s) typed before the session are held: type 'yes' to send them "
                   "to this peer, anything else to drop them",
                   c->nheld);
        return;
    } else {
        app_status(verdict, ev->peer_id, ev->short_fp,
                   "%zu line(s) typed before the session were not sent to this peer (no "
                   "terminal to ask on; --accept-unknown sends them)",
                   c->nheld);
        app_held_drop(c, NULL);
    }
    if (c->close_wanted)
        app_chat_close(c);
}

void app_held_answer(APP_CHAT *c, const uint8_t *line, size_t len)
{
    c->asking = 0;
    if ((len == 3 && memcmp(line, "yes", 3) == 0) || (len == 1 && (line[0] == 'y'))) {
        app_msg("sending the %zu held line(s)", c->nheld);
        send_held(c);
    } else {
        app_held_drop(c, "you did not agree");
    }
}
