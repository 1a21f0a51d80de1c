/* FINISH (spec section 4, step 4): Confirm_B, after which Bob may send records. */
#include <string.h>

#include <openssl/crypto.h>

#include "session.h"

p11c_err p11c_finish_write(P11C_SESSION *s, const uint8_t confirm_b[P11C_MAC_LEN])
{
    p11c_err ret;
    uint8_t *msg = OPENSSL_malloc(2 + P11C_MAC_LEN);

    if (msg == NULL)
        return P11C_ERR_MEMORY;
    msg[0] = P11C_VERSION;
    msg[1] = P11C_MSG_FINISH;
    memcpy(msg + 2, confirm_b, P11C_MAC_LEN);
    ret = p11c_session_queue(s, msg, 2 + P11C_MAC_LEN);
    if (ret != P11C_OK)
        return ret;
    return p11c_session_established_event(s);
}

p11c_err p11c_finish_read(P11C_SESSION *s, const uint8_t *msg, size_t len)
{
    p11c_err ret;
    P11C_RCUR c;
    uint8_t expect[P11C_MAC_LEN];
    const uint8_t *conf;

    if ((ret = p11c_hs_open(&c, msg, len, P11C_MSG_FINISH)) != P11C_OK)
        goto end;
    if (!p11c_rcur_bytes(&c, P11C_MAC_LEN, &conf) || c.left != 0) {
        ret = P11C_ERR_DECODE;
        goto end;
    }
    ret = p11c_confirm_b(s, expect);
    if (ret != P11C_OK)
        goto end;
    if (CRYPTO_memcmp(expect, conf, P11C_MAC_LEN) != 0) {
        ret = P11C_ERR_CONFIRM;
        goto end;
    }
    ret = p11c_session_established_event(s);
end:
    OPENSSL_cleanse(expect, sizeof(expect));
    return ret;
}
