/*
 * The timing shared by the listen/connect and wrap poll() loops: the wait
 * for the peer's CLOSE, the delayed ACK and the last flush.
 */
#include "app.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

int64_t app_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void app_timers_arm(APP_TIMERS *t, const APP_CHAT *c)
{
    if (c->close_sent && t->close_deadline == 0)
        t->close_deadline = app_now_ms() + (int64_t)t->timeout * 1000;
    if (c->rx_unacked == 0)
        t->ack_due = 0;
    else if (t->ack_every != 0 && c->rx_unacked >= t->ack_every)
        t->ack_due = app_now_ms();
    else if (t->ack_quiet)
        t->ack_due = c->rx_last + t->ack_delay;
    else if (t->ack_due == 0)
        t->ack_due = app_now_ms() + t->ack_delay;
}

int64_t app_timers_flush(APP_TIMERS *t, int64_t now)
{
    if (t->flush_deadline == 0)
        t->flush_deadline = now + (int64_t)t->timeout * 1000; /* the last CLOSE */
    return t->flush_deadline;
}

int app_poll(APP_CHAT *c, const APP_TIMERS *t, struct pollfd *p, nfds_t np, int64_t deadline,
             int64_t now)
{
    if (t->ack_due != 0 && (deadline < 0 || t->ack_due < deadline))
        deadline = t->ack_due;
    int wait = deadline < 0 ? -1 : deadline > now ? (int)(deadline - now) : 0;
    int r = poll(p, np, wait);
    if (r < 0 && errno != EINTR) {
        app_msg("poll failed: %s", strerror(errno));
        c->status = APP_FAIL;
        return -1;
    }
    return r < 0 ? 0 : r;
}

int app_timers_expired(APP_TIMERS *t, APP_CHAT *c, int64_t now)
{
    if (t->ack_due != 0 && now >= t->ack_due) {
        app_chat_ack(c);
        t->ack_due = 0;
    }
    if (t->close_deadline != 0 && now >= t->close_deadline && !c->finished) {
        app_msg("the peer did not answer our CLOSE within %u s (it confirmed %llu "
                "of the %llu messages we sent)",
                t->timeout, (unsigned long long)app_chat_confirmed(c),
                (unsigned long long)c->data_sent);
        c->status = APP_FAIL;
        return 1;
    }
    return c->finished && t->flush_deadline != 0 && now >= t->flush_deadline;
}

int app_chat_exit(const APP_CHAT *c)
{
    return c->finished ? c->status : (c->status == APP_OK ? APP_FAIL : c->status);
}
