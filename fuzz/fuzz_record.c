/*
 * Records (spec section 6) as an established session reads them. One session
 * pair lives across inputs (a handshake per input would cost milliseconds)
 * and is replaced when it fails, closes or nears its limits.
 *
 * Byte 0, bit 0 clear: the rest is one record fed to Bob as it is. Nobody
 * here knows the keys, so it must never be delivered.
 * Bit 0 set: the rest is a script of attacks on genuine records from Alice
 * (hold, deliver, reorder, replay, flip a bit, truncate, drop, splice in a
 * record of the other direction). Every DATA event Bob reports must be a
 * record Alice sent, with her bytes, once. Bit 1 picks Bob's policy.
 */
#include "fuzz_common.h"

#include <string.h>

#define MAX_SEQ  2048
#define HELD_MAX 32

typedef struct {
    uint8_t *msg;
    size_t len;
} rec;

static P11C_SESSION *alice, *bob;
static p11c_policy bob_policy = P11C_POLICY_WINDOW;
static uint64_t alice_sent;             /* records Alice made */
static uint16_t sent_len[MAX_SEQ + 64]; /* DATA length per seq, 0xffff: not DATA */
static uint8_t delivered[MAX_SEQ + 64];
static rec held[HELD_MAX];
static size_t nheld;
static rec spent[HELD_MAX]; /* delivered already, kept for replays */
static size_t nspent;

static void rec_free(rec *r)
{
    OPENSSL_free(r->msg);
    r->msg = NULL;
}

static void queues_clear(void)
{
    for (size_t i = 0; i < nheld; i++)
        rec_free(&held[i]);
    for (size_t i = 0; i < nspent; i++)
        rec_free(&spent[i]);
    nheld = nspent = 0;
}

static void pair_free(void)
{
    queues_clear();
    p11c_session_free(alice);
    p11c_session_free(bob);
    alice = bob = NULL;
}

static void pair_new(p11c_policy policy)
{
    pair_free();
    alice = fz_session(P11C_INITIATOR, P11C_POLICY_STRICT);
    bob = fz_session(P11C_RESPONDER, policy);
    bob_policy = policy;
    if (fz_pump(alice, bob) != P11C_OK || fz_pump(bob, alice) != P11C_OK ||
        fz_pump(alice, bob) != P11C_OK || fz_pump(bob, alice) != P11C_OK)
        fz_fail("in-memory handshake");
    if (!p11c_session_established(alice) || !p11c_session_established(bob))
        fz_fail("handshake did not establish");
    fz_drain_events(alice, 0);
    fz_drain_events(bob, 0);
    alice_sent = 0;
    memset(sent_len, 0xff, sizeof(sent_len));
    memset(delivered, 0, sizeof(delivered));
}

static uint8_t pattern(uint64_t seq, size_t j)
{
    return (uint8_t)(seq * 131 + j * 7 + 1);
}

/* Checks Bob's events against what Alice sent. */
static void bob_events(int genuine)
{
    P11C_EVENT ev;
    while (p11c_session_next_event(bob, &ev)) {
        if (ev.type == P11C_EV_DATA) {
            if (!genuine)
                fz_fail("a record nobody sent was delivered");
            if (ev.seq >= alice_sent || ev.seq >= MAX_SEQ || sent_len[ev.seq] == 0xffff)
                fz_fail("DATA event for a sequence number Alice never used for DATA");
            if (ev.len != sent_len[ev.seq])
                fz_fail("delivered length differs from the sent one");
            for (size_t j = 0; j < ev.len; j++)
                if (ev.data[j] != pattern(ev.seq, j))
                    fz_fail("delivered bytes differ from the sent ones");
            if (delivered[ev.seq]++)
                fz_fail("a record was delivered twice (replay accepted)");
        } else if (ev.type == P11C_EV_CLOSE && !genuine) {
            fz_fail("a CLOSE nobody sent was accepted");
        }
        p11c_event_clear(&ev);
    }
}

static void alice_take_output(void)
{
    uint8_t *msg;
    size_t len;
    while (p11c_session_pop_output(alice, &msg, &len)) {
        if (nheld == HELD_MAX) {
            OPENSSL_free(msg);
            continue;
        }
        held[nheld].msg = msg;
        held[nheld].len = len;
        nheld++;
    }
}

static void deliver(const uint8_t *msg, size_t len, int genuine)
{
    (void)p11c_session_recv(bob, msg, len);
    bob_events(genuine);
    uint8_t *out;
    size_t n;
    while (p11c_session_pop_output(bob, &out, &n)) { /* Bob's answers go to Alice */
        (void)p11c_session_recv(alice, out, n);
        OPENSSL_free(out);
    }
    fz_drain_events(alice, 0);
}

static void take(size_t i, rec *out)
{
    *out = held[i];
    memmove(&held[i], &held[i + 1], (nheld - i - 1) * sizeof(rec));
    nheld--;
}

static void keep_spent(rec *r)
{
    if (nspent == HELD_MAX) {
        rec_free(r);
        return;
    }
    spent[nspent++] = *r;
}

static void run_script(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n && !p11c_session_closed(bob); i += 2) {
        uint8_t op = p[i] % 10, arg = p[i + 1];
        rec r;
        switch (op) {
        case 0: { /* Alice sends DATA of arg bytes (held) */
            if (alice_sent >= MAX_SEQ)
                return;
            uint8_t buf[256];
            for (size_t j = 0; j < arg; j++)
                buf[j] = pattern(alice_sent, j);
            if (p11c_session_send_data(alice, buf, arg) == P11C_OK) {
                sent_len[alice_sent++] = arg;
                alice_take_output();
            }
            break;
        }
        case 1: /* deliver the record held at arg */
        case 2:
            if (nheld == 0)
                break;
            take(op == 1 ? arg % nheld : nheld - 1, &r);
            deliver(r.msg, r.len, 1);
            keep_spent(&r);
            break;
        case 3: /* replay a delivered record */
            if (nspent > 0)
                deliver(spent[arg % nspent].msg, spent[arg % nspent].len, 1);
            break;
        case 4:   /* flip one bit of a held record, deliver it (rejected) */
        case 5: { /* truncate or extend a held record by arg, deliver it */
            if (nheld == 0)
                break;
            rec *h = &held[arg % nheld];
            uint8_t *copy = OPENSSL_malloc(h->len + 256);
            if (copy == NULL)
                return;
            memcpy(copy, h->msg, h->len);
            size_t len = h->len;
            if (op == 4)
                copy[(size_t)arg * 131 % len] ^= (uint8_t)(1u << (arg % 8));
            else if (arg & 0x80)
                len -= 1 + (arg & 0x7f) % len;
            else {
                memset(copy + len, arg, (size_t)arg + 1);
                len += (size_t)arg + 1;
            }
            deliver(copy, len, 0);
            OPENSSL_free(copy);
            break;
        }
        case 6: /* drop a held record */
            if (nheld > 0) {
                take(arg % nheld, &r);
                rec_free(&r);
            }
            break;
        case 7: /* Alice acknowledges */
            if (alice_sent < MAX_SEQ && p11c_session_send_ack(alice) == P11C_OK) {
                alice_sent++;
                alice_take_output();
            }
            break;
        case 8: { /* reflect: one of Bob's own records back to Bob */
            uint8_t *out;
            size_t len;
            if (p11c_session_send_data(bob, &arg, 1) == P11C_OK &&
                p11c_session_pop_output(bob, &out, &len)) {
                deliver(out, len, 0);
                OPENSSL_free(out);
            }
            break;
        }
        case 9: /* Alice closes */
            if (arg == 0x5a && p11c_session_send_close(alice, "bye") == P11C_OK) {
                alice_sent++;
                alice_take_output();
            }
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    p11c_policy policy = (data[0] & 2) ? P11C_POLICY_STRICT : P11C_POLICY_WINDOW;
    if (alice == NULL || bob_policy != policy || p11c_session_closed(alice) ||
        p11c_session_closed(bob) || p11c_session_error(bob) != P11C_OK ||
        p11c_session_error(alice) != P11C_OK || alice_sent > MAX_SEQ - 300)
        pair_new(policy);
    if ((data[0] & 1) == 0)
        deliver(data + 1, size - 1, 0);
    else
        run_script(data + 1, size - 1);
    queues_clear();
    return 0;
}
