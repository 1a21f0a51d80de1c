/*
 * Trust store (spec section 7): (identity, fp) pairs kept in a text file,
 * "IDENTITY FINGERPRINT" one a line, '#' comment lines, blank lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "p11c_internal.h"

#define TRUST_MAX_LINE 1024

typedef struct trust_entry {
    char *identity;
    uint8_t fp[P11C_FP_LEN];
    unsigned line; /* in the file it was loaded from; 0 when added since */
} TRUST_ENTRY;

struct p11c_trust {
    TRUST_ENTRY *e;
    size_t n;
    size_t cap;
};

P11C_TRUST *p11c_trust_new(void)
{
    return OPENSSL_zalloc(sizeof(P11C_TRUST));
}

static void trust_clear(P11C_TRUST *t)
{
    for (size_t i = 0; i < t->n; i++)
        OPENSSL_free(t->e[i].identity);
    OPENSSL_free(t->e);
    t->e = NULL;
    t->n = t->cap = 0;
}

void p11c_trust_free(P11C_TRUST *t)
{
    if (t == NULL)
        return;
    trust_clear(t);
    OPENSSL_free(t);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* An identity the file can hold and give back unchanged. */
static int storable_identity(const char *id, size_t len)
{
    return p11c_identity_valid((const uint8_t *)id, len) && id[0] != '#' && !is_space(id[0]) &&
           !is_space(id[len - 1]);
}

static ptrdiff_t find(const P11C_TRUST *t, const char *id, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->e[i].identity) == len && memcmp(t->e[i].identity, id, len) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static p11c_err trust_put(P11C_TRUST *t, const char *id, size_t len, const uint8_t fp[P11C_FP_LEN],
                          int replace, unsigned line)
{
    ptrdiff_t i = find(t, id, len);
    char *copy;

    if (i >= 0) {
        if (!replace)
            return P11C_ERR_TRUST_FILE;
        memcpy(t->e[i].fp, fp, P11C_FP_LEN);
        t->e[i].line = line;
        return P11C_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap == 0 ? 8 : t->cap * 2;
        TRUST_ENTRY *ne = OPENSSL_realloc(t->e, cap * sizeof(*ne));
        if (ne == NULL)
            return P11C_ERR_MEMORY;
        t->e = ne;
        t->cap = cap;
    }
    copy = OPENSSL_strndup(id, len);
    if (copy == NULL)
        return P11C_ERR_MEMORY;
    t->e[t->n].identity = copy;
    memcpy(t->e[t->n].fp, fp, P11C_FP_LEN);
    t->e[t->n].line = line;
    t->n++;
    return P11C_OK;
}

p11c_err p11c_trust_add(P11C_TRUST *t, const char *identity, const uint8_t fp[P11C_FP_LEN])
{
    if (t == NULL || identity == NULL || fp == NULL)
        return P11C_ERR_ARG;
    if (!storable_identity(identity, strlen(identity)))
        return P11C_ERR_IDENTITY;
    return trust_put(t, identity, strlen(identity), fp, 1, 0);
}

p11c_err p11c_trust_remove(P11C_TRUST *t, const char *identity)
{
    ptrdiff_t i;

    if (t == NULL || identity == NULL)
        return P11C_ERR_ARG;
    i = find(t, identity, strlen(identity));
    if (i < 0)
        return P11C_ERR_ARG;
    OPENSSL_free(t->e[i].identity);
    memmove(&t->e[i], &t->e[i + 1], (t->n - (size_t)i - 1) * sizeof(t->e[0]));
    t->n--;
    return P11C_OK;
}

size_t p11c_trust_count(const P11C_TRUST *t)
{
    return t == NULL ? 0 : t->n;
}

const char *p11c_trust_entry(const P11C_TRUST *t, size_t i, const uint8_t **fp)
{
    if (t == NULL || i >= t->n)
        return NULL;
    if (fp != NULL)
        *fp = t->e[i].fp;
    return t->e[i].identity;
}

unsigned p11c_trust_entry_line(const P11C_TRUST *t, size_t i)
{
    return t == NULL || i >= t->n ? 0 : t->e[i].line;
}

void p11c_trust_conflicts(const P11C_TRUST *t, const uint8_t *identity, size_t idlen,
                          const uint8_t fp[P11C_FP_LEN], long *by_id, long *by_fp)
{
    *by_id = *by_fp = -1;
    for (size_t i = 0; t != NULL && i < t->n; i++) {
        const TRUST_ENTRY *e = &t->e[i];
        int same_id = strlen(e->identity) == idlen && memcmp(e->identity, identity, idlen) == 0;
        int same_fp = memcmp(e->fp, fp, P11C_FP_LEN) == 0;

        if (same_id && !same_fp && *by_id < 0)
            *by_id = (long)i;
        if (same_fp && !same_id && *by_fp < 0)
            *by_fp = (long)i;
    }
}

p11c_trust_result p11c_trust_check(const P11C_TRUST *t, const uint8_t *identity, size_t idlen,
                                   const uint8_t fp[P11C_FP_LEN])
{
    int id_known = 0, fp_known = 0;

    if (t == NULL)
        return P11C_UNKNOWN;
    for (size_t i = 0; i < t->n; i++) {
        const TRUST_ENTRY *e = &t->e[i];
        int same_id = strlen(e->identity) == idlen && memcmp(e->identity, identity, idlen) == 0;
        int same_fp = memcmp(e->fp, fp, P11C_FP_LEN) == 0;

        if (same_id && same_fp)
            return P11C_TRUSTED;
        id_known |= same_id;
        fp_known |= same_fp;
    }
    return id_known || fp_known ? P11C_MISMATCH : P11C_UNKNOWN;
}

/* One line without its newline; 0 when malformed. */
static int parse_line(P11C_TRUST *t, char *line, size_t len, unsigned lineno, p11c_err *err)
{
    size_t b = 0, e = len, sp;
    uint8_t fp[P11C_FP_LEN];

    *err = P11C_OK;
    while (b < e && is_space(line[b]))
        b++;
    while (e > b && is_space(line[e - 1]))
        e--;
    if (b == e || line[b] == '#')
        return 1;
    /* The fingerprint is the last field. */
    sp = e;
    while (sp > b && !is_space(line[sp - 1]))
        sp--;
    if (sp == b)
        return 0;
    line[e] = '\0';
    if (p11c_fingerprint_parse(line + sp, fp) != P11C_OK)
        return 0;
    e = sp;
    while (e > b && is_space(line[e - 1]))
        e--;
    if (!storable_identity(line + b, e - b))
        return 0;
    *err = trust_put(t, line + b, e - b, fp, 0, lineno);
    return *err == P11C_OK;
}

p11c_err p11c_trust_load(P11C_TRUST *t, const char *path, unsigned *bad_line)
{
    p11c_err ret = P11C_ERR_TRUST_FILE, perr = P11C_OK;
    P11C_TRUST tmp = {0};
    FILE *f = NULL;
    char line[TRUST_MAX_LINE + 2];
    unsigned lineno = 0;

    if (bad_line != NULL)
        *bad_line = 0;
    if (t == NULL || path == NULL)
        return P11C_ERR_ARG;
    f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            trust_clear(t);
            return P11C_OK;
        }
        return P11C_ERR_TRUST_FILE;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        else if (!feof(f))
            goto bad; /* longer than any valid line */
        if (memchr(line, '\0', len) != NULL || !parse_line(&tmp, line, len, lineno, &perr)) {
            if (perr == P11C_ERR_MEMORY) {
                ret = perr;
                goto end;
            }
            goto bad;
        }
    }
    if (ferror(f))
        goto end;
    /* Only a complete, valid file replaces the store. */
    trust_clear(t);
    *t = tmp;
    memset(&tmp, 0, sizeof(tmp));
    ret = P11C_OK;
    goto end;
bad:
    if (bad_line != NULL)
        *bad_line = lineno;
end:
    trust_clear(&tmp);
    if (f != NULL)
        fclose(f);
    return ret;
}

p11c_err p11c_trust_save(const P11C_TRUST *t, const char *path)
{
    p11c_err ret = P11C_ERR_TRUST_FILE;
    char *tmp = NULL, *dir = NULL, *slash;
    size_t plen;
    int fd = -1, dfd = -1, created = 0;
    FILE *f = NULL;

    if (t == NULL || path == NULL || *path == '\0')
        return P11C_ERR_ARG;
    plen = strlen(path);
    tmp = OPENSSL_malloc(plen + 16);
    dir = OPENSSL_strdup(path);
    if (tmp == NULL || dir == NULL) {
        ret = P11C_ERR_MEMORY;
        goto end;
    }
    /* A temporary file beside the target, so that rename() is atomic. */
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0)
        goto end;
    created = 1;
    f = fdopen(fd, "w");
    if (f == NULL)
        goto end;
    fd = -1;
    fputs("# p11chat trust store: IDENTITY FINGERPRINT (SHA-256 of the RSAPublicKey)\n", f);
    for (size_t i = 0; i < t->n; i++) {
        char hex[2 * P11C_FP_LEN + 1];

        p11c_fingerprint_hex(t->e[i].fp, hex);
        fprintf(f, "%s %s\n", t->e[i].identity, hex);
    }
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
        goto end;
    if (fclose(f) != 0) {
        f = NULL;
        goto end;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto end;
    created = 0; /* nothing left to remove */
    slash = strrchr(dir, '/');
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    /* Make the rename itself durable. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0)
        (void)fsync(dfd);
    ret = P11C_OK;
end:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (created)
        unlink(tmp);
    OPENSSL_free(tmp);
    OPENSSL_free(dir);
    return ret;
}
