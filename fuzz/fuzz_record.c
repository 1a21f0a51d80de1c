/*
 * Records (spec section 6) as an established session reads them. A session
 * pair per policy lives across inputs (a handshake per input would cost
 * milliseconds) and is replaced when it fails, closes or nears its limits.
 * The pair of each policy is made once by a real handshake between two
 * sessions, with the signatures of tests/vectors/protocol/handshake.json and
 * a Sec of its own, random, passed to both sides (the test hooks): no
 * private-key operation, and keys that nobody outside the process knows, as
 * after a fresh handshake. A new pair is a copy of that one (with record IVs
 * of its own).
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

#include <openssl/rand.h>

#define MAX_SEQ  2048
#define HELD_MAX 32

typedef struct {
    uint8_t *msg;
    size_t len;
} rec;

typedef struct {
    P11C_SESSION *alice, *bob;
    uint64_t alice_sent;             /* records Alice made */
    uint16_t sent_len[MAX_SEQ + 64]; /* DATA length per seq, 0xffff: not DATA */
    uint8_t delivered[MAX_SEQ + 64];
    uint8_t sec[P11C_SEC_LEN];
} pair;

static pair made[2];              /* by policy, the pairs made by a handshake */
static pair pairs[2];             /* by policy: window, strict */
static P11C_SESSION *alice, *bob; /* the pair of the current input */
static pair *cur;
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

static void pair_free(pair *p)
{
    p11c_session_free(p->alice);
    p11c_session_free(p->bob);
    p->alice = p->bob = NULL;
}

static void pair_handshake(pair *p, p11c_policy policy)
{
    P11C_TEST_HOOKS ha, hb;
    if (RAND_bytes(p->sec, sizeof(p->sec)) != 1)
        fz_fail("RAND_bytes");
    fz_hooks_recorded(&ha, P11C_INITIATOR);
    fz_hooks_recorded(&hb, P11C_RESPONDER);
    ha.sec = hb.sec = p->sec;
    p->alice = fz_session_hooked(P11C_INITIATOR, P11C_POLICY_STRICT, &ha);
    p->bob = fz_session_hooked(P11C_RESPONDER, policy, &hb);
    if (fz_pump(p->alice, p->bob) != P11C_OK || fz_pump(p->bob, p->alice) != P11C_OK ||
        fz_pump(p->alice, p->bob) != P11C_OK || fz_pump(p->bob, p->alice) != P11C_OK)
        fz_fail("in-memory handshake");
    if (!p11c_session_established(p->alice) || !p11c_session_established(p->bob))
        fz_fail("handshake did not establish");
    fz_drain_events(p->alice, 0);
    fz_drain_events(p->bob, 0);
}

static void pair_new(pair *p, int strict)
{
    pair *m = &made[strict];
    if (m->alice == NULL)
        pair_handshake(m, strict ? P11C_POLICY_STRICT : P11C_POLICY_WINDOW);
    pair_free(p);
    p->alice = fz_copy(m->alice);
    p->bob = fz_copy(m->bob);
    p->alice_sent = 0;
    memset(p->sent_len, 0xff, sizeof(p->sent_len));
    memset(p->delivered, 0, sizeof(p->delivered));
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
            if (ev.seq >= cur->alice_sent || ev.seq >= MAX_SEQ || cur->sent_len[ev.seq] == 0xffff)
                fz_fail("DATA event for a sequence number Alice never used for DATA");
            if (ev.len != cur->sent_len[ev.seq])
                fz_fail("delivered length differs from the sent one");
            for (size_t j = 0; j < ev.len; j++)
                if (ev.data[j] != pattern(ev.seq, j))
                    fz_fail("delivered bytes differ from the sent ones");
            if (cur->delivered[ev.seq]++)
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
            if (cur->alice_sent >= MAX_SEQ)
                return;
            uint8_t buf[256];
            for (size_t j = 0; j < arg; j++)
                buf[j] = pattern(cur->alice_sent, j);
            if (p11c_session_send_data(alice, buf, arg) == P11C_OK) {
                cur->sent_len[cur->alice_sent++] = arg;
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
            if (cur->alice_sent < MAX_SEQ && p11c_session_send_ack(alice) == P11C_OK) {
                cur->alice_sent++;
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
                cur->alice_sent++;
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
    int strict = (data[0] & 2) != 0;
    cur = &pairs[strict];
    if (cur->alice == NULL || p11c_session_closed(cur->alice) || p11c_session_closed(cur->bob) ||
        p11c_session_error(cur->bob) != P11C_OK || p11c_session_error(cur->alice) != P11C_OK ||
        cur->alice_sent > MAX_SEQ - 300)
        pair_new(cur, strict);
    alice = cur->alice;
    bob = cur->bob;
    if ((data[0] & 1) == 0)
        deliver(data + 1, size - 1, 0);
    else
        run_script(data + 1, size - 1);
    queues_clear();
    return 0;
}
