/*
 * The URI that names a key again: shown in the key's text form, and written
 * into key files (the PEM block "PKCS#11 PROVIDER URI") so that a program
 * reading PEM files finds the same token key later. It names the token by
 * every identity field the token gives and the key by label and id (and
 * type=public for a public key alone); never a PIN.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

CK_RV p11c_key_uri(const P11C_KEY *k, int public_only, char **out, P11C_ERR *err)
{
    P11KitUri *u = p11_kit_uri_new();
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE attr;
    char *s = NULL;
    CK_RV rv = CKR_HOST_MEMORY;
    int r;

    *out = NULL;
    if (u == NULL)
        return p11c_err_set(err, rv, "p11_kit_uri_new", "URI of a key");
    memcpy(p11_kit_uri_get_token_info(u), &k->t->info, sizeof(k->t->info));
    if (k->label[0] != '\0') {
        attr.type = CKA_LABEL;
        attr.pValue = k->label;
        attr.ulValueLen = strlen(k->label);
        if (p11_kit_uri_set_attribute(u, &attr) != P11_KIT_URI_OK)
            goto end;
    }
    if (k->idlen > 0) {
        attr.type = CKA_ID;
        attr.pValue = k->id;
        attr.ulValueLen = k->idlen;
        if (p11_kit_uri_set_attribute(u, &attr) != P11_KIT_URI_OK)
            goto end;
    }
    /* A pair is named without type=, as it is loaded. */
    if (public_only || k->public_only) {
        attr.type = CKA_CLASS;
        attr.pValue = &cls;
        attr.ulValueLen = sizeof(cls);
        if (p11_kit_uri_set_attribute(u, &attr) != P11_KIT_URI_OK)
            goto end;
    }
    r = p11_kit_uri_format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, &s);
    if (r != P11_KIT_URI_OK) {
        rv = CKR_GENERAL_ERROR;
        goto end;
    }
    *out = s;
    rv = CKR_OK;
end:
    p11_kit_uri_free(u);
    if (rv != CKR_OK) {
        p11c_key_what(k, err);
        return p11c_err_rv(err, rv, "p11_kit_uri_format");
    }
    return CKR_OK;
}
