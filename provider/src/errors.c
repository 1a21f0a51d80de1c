/*
 * The one conversion point between the two error domains: pkcs11/ returns a
 * CK_RV with its context, and provider entry points raise it here, once, into
 * OpenSSL's error queue with the CKR name as the reason text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "prov.h"

/* Reason codes: our own below 0x100, PKCS#11 standard values at 0x1000 + rv,
 * our vendor values at 0x2000 + n, other vendor values at 0x3000. */
#define REASON_STD    0x1000
#define REASON_OURS   0x2000
#define REASON_VENDOR 0x3000

int p11c_reason_of_rv(CK_RV rv)
{
    if (rv <= 0xFFF)
        return REASON_STD + (int)rv;
    if (rv > P11C_CKR_BASE && rv < P11C_CKR_BASE + 0x100)
        return REASON_OURS + (int)(rv - P11C_CKR_BASE);
    return REASON_VENDOR;
}

void p11c_raise_rv(P11C_PROV *prov, const char *file, int line, const char *func,
                   const P11C_ERR *err)
{
    char buf[700];
    /* Where a PIN can come from, for a person who gave none. */
    const char *hint = err->rv != P11C_CKR_NO_PIN
                           ? ""
                           : "; no PIN was given: add pin-source=FILE (or pin-value) to the URI, "
                             "-passin to the openssl command (-pass for s_server), pkcs11-pin to "
                             "the provider's section, or set P11CHAT_PKCS11_PIN";

    p11c_raise(prov, file, line, func, p11c_reason_of_rv(err->rv), "%s%s",
               p11c_err_string(err, buf, sizeof(buf)), hint);
}

void p11c_raise(P11C_PROV *prov, const char *file, int line, const char *func, int reason,
                const char *fmt, ...)
{
    va_list ap;

    if (prov == NULL || prov->c_new_error == NULL)
        return;
    prov->c_new_error(prov->handle);
    prov->c_set_error_debug(prov->handle, file, line, func);
    va_start(ap, fmt);
    prov->c_vset_error(prov->handle, reason, fmt, ap);
    va_end(ap);
}
