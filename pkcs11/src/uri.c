/* RFC 7512 URIs, parsed by p11-kit; PINs from the URI or a pin-source file. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>

/* Longest PIN read from a pin-source file. */
#define P11C_PIN_MAX 256

/* Appends "name 'val'" (quoted) or "name val" to the description. */
static void append(char *buf, size_t cap, int quoted, const char *name, const char *val)
{
    size_t len = strlen(buf);
    if (len >= cap - 1)
        return;
    snprintf(buf + len, cap - len, quoted ? "%s%s '%s'" : "%s%s %s", len != 0 ? ", " : "", name,
             val);
}

static void append_field(char *buf, size_t cap, const char *name, const unsigned char *field,
                         size_t fsize)
{
    char val[80];
    if (field[0] == 0)
        return; /* not given in the URI */
    size_t len = p11_kit_space_strlen(field, fsize);
    if (len >= sizeof(val))
        len = sizeof(val) - 1;
    memcpy(val, field, len);
    val[len] = '\0';
    append(buf, cap, 1, name, val);
}

static const char *class_name(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private";
    case CKO_PUBLIC_KEY:
        return "public";
    case CKO_CERTIFICATE:
        return "cert";
    case CKO_SECRET_KEY:
        return "secret-key";
    case CKO_DATA:
        return "data";
    default:
        return "other";
    }
}

static void describe(P11C_URI *u)
{
    char *d = u->desc;
    size_t cap = sizeof(u->desc);
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u->u);
    CK_SLOT_ID slot = p11_kit_uri_get_slot_id(u->u);

    d[0] = '\0';
    append_field(d, cap, "token", ti->label, sizeof(ti->label));
    append_field(d, cap, "serial", ti->serialNumber, sizeof(ti->serialNumber));
    append_field(d, cap, "manufacturer", ti->manufacturerID, sizeof(ti->manufacturerID));
    append_field(d, cap, "model", ti->model, sizeof(ti->model));
    if (slot != (CK_SLOT_ID)-1) {
        char num[24];
        snprintf(num, sizeof(num), "%lu", (unsigned long)slot);
        append(d, cap, 0, "slot-id", num);
    }
    if (u->label != NULL)
        append(d, cap, 1, "object", u->label);
    if (u->has_id) {
        char hex[2 * 32 + 4];
        size_t n = u->idlen < 32 ? u->idlen : 32;
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", u->id[i]);
        hex[2 * n] = '\0';
        if (n < u->idlen)
            strcat(hex, "...");
        append(d, cap, 0, "id", hex);
    }
    if (u->has_cls)
        append(d, cap, 0, "type", class_name(u->cls));
    if (d[0] == '\0')
        snprintf(d, cap, "any token");
}

CK_RV p11c_uri_parse(const char *uri, P11C_URI *out, P11C_ERR *err)
{
    CK_RV rv = CKR_OK;
    CK_ATTRIBUTE *a;

    memset(out, 0, sizeof(*out));
    if (uri == NULL || uri[0] == '\0')
        uri = "pkcs11:";
    out->u = p11_kit_uri_new();
    if (out->u == NULL)
        return p11c_err_set(err, CKR_HOST_MEMORY, "p11_kit_uri_new", "URI");
    int r = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, out->u);
    if (r != P11_KIT_URI_OK) {
        const char *msg = p11_kit_uri_message(r);
        rv = p11c_err_set(err, P11C_CKR_URI_MALFORMED, "p11_kit_uri_parse",
                          "URI: %s (expected 'pkcs11:' and RFC 7512 attributes)",
                          msg != NULL ? msg : "cannot parse");
        goto end;
    }
    if (p11_kit_uri_any_unrecognized(out->u)) {
        rv = p11c_err_set(err, P11C_CKR_URI_UNSUPPORTED, "p11_kit_uri_parse",
                          "URI: attributes unknown to RFC 7512");
        goto end;
    }
    a = p11_kit_uri_get_attribute(out->u, CKA_CLASS);
    if (a != NULL && a->pValue != NULL && a->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
        memcpy(&out->cls, a->pValue, sizeof(out->cls));
        out->has_cls = 1;
    }
    a = p11_kit_uri_get_attribute(out->u, CKA_LABEL);
    if (a != NULL && a->pValue != NULL) {
        out->label_buf = malloc(a->ulValueLen + 1);
        if (out->label_buf == NULL) {
            rv = p11c_err_set(err, CKR_HOST_MEMORY, "p11_kit_uri_parse", "URI");
            goto end;
        }
        memcpy(out->label_buf, a->pValue, a->ulValueLen);
        out->label_buf[a->ulValueLen] = '\0';
        out->label = out->label_buf;
    }
    a = p11_kit_uri_get_attribute(out->u, CKA_ID);
    if (a != NULL) {
        out->id = a->pValue;
        out->idlen = a->pValue != NULL ? a->ulValueLen : 0;
        out->has_id = 1;
    }
    describe(out);
end:
    if (rv != CKR_OK)
        p11c_uri_clear(out);
    return rv;
}

CK_RV p11c_uri_pin(P11C_URI *u, P11C_ERR *err)
{
    const char *v = p11_kit_uri_get_pin_value(u->u);
    if (v != NULL) {
        u->pin = p11c_pin_dup(v);
        if (u->pin == NULL)
            return p11c_err_rv(err, CKR_HOST_MEMORY, "p11_kit_uri_get_pin_value");
        return CKR_OK;
    }
    const char *src = p11_kit_uri_get_pin_source(u->u);
    if (src != NULL)
        return p11c_pin_from_source(src, &u->pin, err);
    return CKR_OK;
}

void p11c_uri_clear(P11C_URI *u)
{
    if (u->u != NULL)
        p11_kit_uri_free(u->u);
    free(u->label_buf);
    p11c_pin_free(u->pin);
    memset(u, 0, sizeof(*u));
}

CK_RV p11c_pin_from_source(const char *source, char **pin, P11C_ERR *err)
{
    char buf[P11C_PIN_MAX + 2];
    size_t len = 0;
    CK_RV rv = CKR_OK;
    int fd = -1;
    const char *path = source;

    *pin = NULL;
    if (strncmp(path, "file:", 5) == 0) {
        path += 5;
        /* file:///path is the same file as file:/path */
        if (strncmp(path, "//", 2) == 0)
            path += 2;
    }
    if (path[0] == '|' || path[0] == '\0') {
        rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source",
                          "pin-source '%.200s': only a file path is supported", source);
        goto end;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source", "pin-source '%.180s': %s", path,
                          strerror(errno));
        goto end;
    }
    for (;;) {
        ssize_t got = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source", "pin-source '%.180s': %s",
                              path, strerror(errno));
            goto end;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len > P11C_PIN_MAX) {
            rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source",
                              "pin-source '%.180s': longer than %d bytes", path, P11C_PIN_MAX);
            goto end;
        }
    }
    /* One trailing newline (as `echo` writes it) is not part of the PIN. */
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source",
                          "pin-source '%.180s': holds a NUL byte", path);
        goto end;
    }
    /* What cannot be the PIN is refused here, before the token counts it as
     * a wrong try. */
    const char *why = NULL;
    if (len == 0)
        why = "is empty";
    else if (memchr(buf, '\n', len) != NULL || memchr(buf, '\r', len) != NULL)
        why = "holds more than one line (blank lines?): it must hold the PIN alone";
    else if (buf[0] == ' ' || buf[0] == '\t' || buf[len - 1] == ' ' || buf[len - 1] == '\t')
        why = "has a space or tab before or after the PIN";
    if (why != NULL) {
        rv = p11c_err_set(err, P11C_CKR_PIN_SOURCE, "pin-source",
                          "pin-source '%.160s' %s; the PIN was not tried", path, why);
        goto end;
    }
    *pin = p11c_pin_dup(buf);
    if (*pin == NULL)
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "pin-source");
end:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rv;
}
