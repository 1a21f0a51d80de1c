/* The suites this library speaks, each with its key transport. */
#include "p11c_internal.h"

const P11C_KEX *p11c_kex_find(int suite)
{
    switch (suite) {
    case P11C_SUITE_1:
        return &p11c_kex_oaep;
    case P11C_SUITE_2:
        return &p11c_kex_ecdh;
    default:
        return NULL;
    }
}
