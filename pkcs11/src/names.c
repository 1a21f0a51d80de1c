/*
 * Names of slots and tokens in "no such token" errors: the tokens that are
 * present (label and serial), so a person can see what to ask for, and why a
 * slot-id copied from another program may name nothing here.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>

/* Appends text to err->what, as much as fits. */
static void append(P11C_ERR *err, const char *text)
{
    size_t len = strlen(err->what);
    if (len + 1 < sizeof(err->what))
        snprintf(err->what + len, sizeof(err->what) - len, "%s", text);
}

CK_RV p11c_no_token(P11C_MODULE *m, P11KitUri *u, const char *desc, const char *func, P11C_ERR *err)
{
    P11C_TOKEN **all = NULL;
    size_t n = 0;

    p11c_err_set(err, P11C_CKR_NO_TOKEN, func, "%s: no such token", desc);
    if (err == NULL)
        return P11C_CKR_NO_TOKEN;
    /* Every initialised token, matched by an empty URI. */
    P11KitUri *any = p11_kit_uri_new();
    if (any != NULL && p11c_tokens_match(m, any, &all, &n, NULL) == CKR_OK) {
        if (n == 0)
            append(err, "; no token is present");
        for (size_t i = 0; i < n; i++) {
            char serial[17];
            size_t sl =
                p11_kit_space_strlen(all[i]->info.serialNumber, sizeof(all[i]->info.serialNumber));
            memcpy(serial, all[i]->info.serialNumber, sl);
            serial[sl] = '\0';
            char one[80];
            snprintf(one, sizeof(one), "%s'%s' (serial %s)", i == 0 ? "; present: " : ", ",
                     all[i]->label, serial);
            append(err, one);
        }
    }
    if (any != NULL)
        p11_kit_uri_free(any);
    free(all);
    if (u != NULL && p11_kit_uri_get_slot_id(u) != (CK_SLOT_ID)-1 && m->proxy)
        append(err, "; p11-kit's proxy renumbers slots, so a slot-id from another program (such as "
                    "pkcs11-tool --module libsofthsm2.so) names nothing here: name the token by "
                    "token= or serial= instead");
    return P11C_CKR_NO_TOKEN;
}
