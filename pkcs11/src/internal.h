/* Private to pkcs11/: the structures behind the opaque handles. */
#ifndef P11C_PKCS11_INTERNAL_H
#define P11C_PKCS11_INTERNAL_H

#include "p11c_pkcs11.h"

CK_RV p11c_err_set(P11C_ERR *err, CK_RV rv, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets rv and func, keeps err->what. */
CK_RV p11c_err_rv(P11C_ERR *err, CK_RV rv, const char *func);

#endif
