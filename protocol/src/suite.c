/*
 * Which suite a session speaks (spec section 10): the initiator chooses it
 * when the session is made, the responder takes the HELLO's if it may.
 */
#include "session.h"

p11c_err p11c_session_suite_init(P11C_SESSION *s, int suite)
{
    const P11C_KEX *kex;

    if (s->role == P11C_INITIATOR && suite == 0)
        suite = (p11c_key_kind(s->key) & P11C_KIND_EC) ? P11C_SUITE_2 : P11C_SUITE_1;
    if (suite != 0 && (kex = p11c_kex_find(suite)) == NULL)
        return P11C_ERR_ARG;
    if (s->role == P11C_INITIATOR)
        s->kex = kex;
    else
        s->suite_only = suite;
    /* Our own key must be one the suite (any suite, for an open responder) allows. */
    return p11c_pub_decode(s->libctx, s->propq, s->own_pub, s->own_pub_len,
                           suite != 0 ? kex->long_term : P11C_KIND_ANY, NULL);
}

p11c_err p11c_session_suite_accept(P11C_SESSION *s, uint8_t suite)
{
    const P11C_KEX *kex = p11c_kex_find(suite);

    if (kex == NULL || (s->suite_only != 0 && suite != s->suite_only))
        return P11C_ERR_SUITE;
    /* An EC key cannot answer in suite 0x01. */
    if (p11c_pub_decode(s->libctx, s->propq, s->own_pub, s->own_pub_len, kex->long_term, NULL) !=
        P11C_OK)
        return P11C_ERR_SUITE;
    s->kex = kex;
    return P11C_OK;
}
