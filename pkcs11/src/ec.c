/*
 * EC and Edwards keys: the curves we know, their points as tokens store them,
 * ECDH in the token (CKM_ECDH1_DERIVE into a session object read once and
 * destroyed), and key generation and import. ECDSA and EdDSA signing are
 * p11c_key_sign with CKM_ECDSA or CKM_EDDSA.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t oid_ed448[] = {0x06, 0x03, 0x2b, 0x65, 0x71};

static const P11C_CURVE curves[] = {
    {"P-256", CKK_EC, oid_p256, sizeof(oid_p256), NULL, 32, 256},
    {"P-384", CKK_EC, oid_p384, sizeof(oid_p384), NULL, 48, 384},
    {"P-521", CKK_EC, oid_p521, sizeof(oid_p521), NULL, 66, 521},
    {"Ed25519", CKK_EC_EDWARDS, oid_ed25519, sizeof(oid_ed25519), "edwards25519", 32, 256},
    {"Ed448", CKK_EC_EDWARDS, oid_ed448, sizeof(oid_ed448), "edwards448", 57, 456},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

const P11C_CURVE *p11c_curve_by_params(const uint8_t *p, size_t len)
{
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < NCURVES; i++) {
        const P11C_CURVE *c = &curves[i];
        if (p11c_bytes_eq(p, len, c->oid, c->oidlen))
            return c;
        /* PKCS#11 3.0 lets Edwards curves be named by a PrintableString. */
        if (c->printable != NULL && len == 2 + strlen(c->printable) && p[0] == 0x13 &&
            p[1] == len - 2 && memcmp(p + 2, c->printable, len - 2) == 0)
            return c;
    }
    return NULL;
}

const P11C_CURVE *p11c_curve_by_name(const char *name)
{
    static const struct {
        const char *alias, *name;
    } aliases[] = {
        {"prime256v1", "P-256"}, {"secp256r1", "P-256"}, {"secp384r1", "P-384"},
        {"secp521r1", "P-521"},  {"ED25519", "Ed25519"}, {"ED448", "Ed448"},
    };
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            name = aliases[i].name;
    for (size_t i = 0; i < NCURVES; i++)
        if (strcasecmp(name, curves[i].name) == 0)
            return &curves[i];
    return NULL;
}

/* Bytes of the raw point: uncompressed for EC, the key itself for Edwards. */
static size_t raw_len(const P11C_CURVE *c)
{
    return c->kt == CKK_EC ? 2 * c->flen + 1 : c->flen;
}

int p11c_point_unwrap(const P11C_CURVE *c, const uint8_t *in, size_t len, const uint8_t **pt,
                      size_t *ptlen)
{
    size_t want = raw_len(c);
    const unsigned char *p = in;
    ASN1_OCTET_STRING *os;
    int ok = 0;

    if (in == NULL || len == 0)
        return 0;
    /* The raw point: a DER OCTET STRING of it is always longer. */
    if (len == want && (c->kt != CKK_EC || in[0] == 0x04)) {
        *pt = in;
        *ptlen = len;
        return 1;
    }
    os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);
    if (os != NULL && p == in + len && (size_t)ASN1_STRING_length(os) == want &&
        (c->kt != CKK_EC || in[len - want] == 0x04)) {
        *pt = in + len - want; /* the contents end the encoding */
        *ptlen = want;
        ok = 1;
    }
    ASN1_OCTET_STRING_free(os);
    return ok;
}

CK_RV p11c_key_set_ec_public(P11C_KEY *k, const uint8_t *params, size_t paramslen,
                             const uint8_t *point, size_t pointlen)
{
    const P11C_CURVE *c = p11c_curve_by_params(params, paramslen);
    const uint8_t *pt;
    size_t ptlen;
    uint8_t *copy;

    if (c == NULL || !p11c_point_unwrap(c, point, pointlen, &pt, &ptlen))
        return P11C_CKR_NOT_RSA;
    copy = malloc(ptlen);
    if (copy == NULL)
        return CKR_HOST_MEMORY;
    memcpy(copy, pt, ptlen);
    free(k->point);
    k->point = copy;
    k->pointlen = ptlen;
    k->curve = c;
    k->kt = c->kt;
    k->bits = c->bits;
    return CKR_OK;
}

CK_RV p11c_key_read_ec_public(P11C_KEY *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, P11C_ERR *err)
{
    uint8_t *params = NULL, *point = NULL;
    size_t paramslen = 0, pointlen = 0;
    CK_RV rv = p11c_get_attr(k->t, s, obj, CKA_EC_PARAMS, &params, &paramslen, err);
    if (rv == CKR_OK)
        rv = p11c_get_attr(k->t, s, obj, CKA_EC_POINT, &point, &pointlen, err);
    if (rv == CKR_OK) {
        rv = p11c_key_set_ec_public(k, params, paramslen, point, pointlen);
        if (rv == P11C_CKR_NOT_RSA)
            p11c_what_detail(err, "an EC key on a curve p11chat does not use (P-256, P-384, "
                                  "P-521, Ed25519, Ed448 only)");
        if (rv != CKR_OK)
            p11c_err_rv(err, rv, "C_GetAttributeValue");
    }
    free(params);
    free(point);
    return rv;
}

CK_KEY_TYPE p11c_key_type(const P11C_KEY *k)
{
    return k != NULL ? k->kt : (CK_KEY_TYPE)-1;
}

const char *p11c_key_curve(const P11C_KEY *k)
{
    return k != NULL && k->curve != NULL ? k->curve->name : NULL;
}

void p11c_key_ec_point(const P11C_KEY *k, const uint8_t **pt, size_t *len)
{
    *pt = k != NULL ? k->point : NULL;
    *len = k != NULL ? k->pointlen : 0;
}

size_t p11c_key_sig_len(const P11C_KEY *k)
{
    if (k == NULL)
        return 0;
    return k->kt == CKK_RSA ? k->nlen : 2 * k->curve->flen;
}

/* ---- ECDH ----------------------------------------------------------------- */

/* One C_DeriveKey on session s: the shared secret as a session object of our
 * own, read and destroyed at once. */
CK_RV p11c_ecdh_run(P11C_KEY *k, CK_SESSION_HANDLE s, const CK_MECHANISM *ck, CK_OBJECT_HANDLE h,
                    uint8_t *out, CK_ULONG *outlen, P11C_ERR *err)
{
    P11C_MODULE *m = k->t->m;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE gen = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG vlen = k->curve->flen;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &gen, sizeof(gen)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
    };
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CK_RV rv;

    if (*outlen < vlen)
        return p11c_err_rv(err, CKR_BUFFER_TOO_SMALL, "C_DeriveKey");
    rv = P11C_CALL(m, err, C_DeriveKey, s, (CK_MECHANISM *)ck, h, tmpl,
                   sizeof(tmpl) / sizeof(tmpl[0]), &secret);
    if (rv != CKR_OK)
        return rv;
    CK_ATTRIBUTE v = {CKA_VALUE, out, *outlen};
    rv = P11C_CALL(m, err, C_GetAttributeValue, s, secret, &v, 1);
    if (rv == CKR_OK && (v.ulValueLen == CK_UNAVAILABLE_INFORMATION || v.ulValueLen != vlen))
        rv = p11c_err_rv(err, CKR_GENERAL_ERROR, "C_GetAttributeValue");
    /* The secret must not outlive this call in the token either. */
    CK_RV rv2 = P11C_CALL(m, rv == CKR_OK ? err : NULL, C_DestroyObject, s, secret);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv != CKR_OK) {
        OPENSSL_cleanse(out, *outlen);
        return rv;
    }
    *outlen = vlen;
    return CKR_OK;
}

CK_RV p11c_key_derive(P11C_KEY *k, const uint8_t *peer, size_t peerlen, uint8_t *out,
                      size_t *outlen, P11C_ERR *err)
{
    CK_ECDH1_DERIVE_PARAMS params;
    CK_MECHANISM ck = {CKM_ECDH1_DERIVE, &params, sizeof(params)};

    if (k == NULL || outlen == NULL || peer == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_DeriveKey", "no key, peer or buffer");
    p11c_key_what(k, err);
    if (k->kt != CKK_EC) {
        p11c_what_detail(err, "ECDH needs an EC key");
        return p11c_err_rv(err, CKR_KEY_TYPE_INCONSISTENT, "C_DeriveKey");
    }
    if (out == NULL) {
        *outlen = k->curve->flen;
        return CKR_OK;
    }
    if (peerlen != raw_len(k->curve) || peer[0] != 0x04) {
        p11c_what_detail(err, "the peer's point is not an uncompressed point of the key's curve");
        return p11c_err_rv(err, CKR_ARGUMENTS_BAD, "C_DeriveKey");
    }
    memset(&params, 0, sizeof(params));
    params.kdf = CKD_NULL;
    params.public_data = (unsigned char *)peer;
    params.public_data_len = peerlen;
    CK_RV rv = p11c_module_enter(k->t->m, err);
    if (rv == CKR_OK)
        rv = p11c_key_op(k, P11C_OP_DERIVE, &ck, NULL, 0, out, outlen, err);
    return rv;
}

/* ---- Generation and import ------------------------------------------------ */

/* Tokens of PKCS#11 2.40 name Edwards curves by string only: the curve's
 * printable name takes the place of its OID (pub[3]), once. */
typedef struct {
    const P11C_CURVE *c;
    int tried;
    uint8_t printable[2 + 16];
} EDWARDS_RETRY;

static int printable_curve(CK_RV rv, CK_ATTRIBUTE *pub, CK_ULONG *npub, CK_ATTRIBUTE *priv,
                           CK_ULONG *npriv, void *arg)
{
    EDWARDS_RETRY *e = arg;
    size_t n;

    (void)npub;
    (void)priv;
    (void)npriv;
    if ((rv != CKR_ATTRIBUTE_VALUE_INVALID && rv != CKR_DOMAIN_PARAMS_INVALID &&
         rv != CKR_CURVE_NOT_SUPPORTED) ||
        e->tried)
        return 0;
    n = strlen(e->c->printable);
    e->tried = 1;
    e->printable[0] = 0x13;
    e->printable[1] = (uint8_t)n;
    memcpy(e->printable + 2, e->c->printable, n);
    pub[3].pValue = e->printable;
    pub[3].ulValueLen = (CK_ULONG)(2 + n);
    return 1;
}

CK_RV p11c_key_generate_ec(P11C_TOKEN *t, const char *curve, const char *label, const uint8_t *id,
                           size_t idlen, int persistent, P11C_KEY **out, P11C_ERR *err)
{
    const P11C_CURVE *c = p11c_curve_by_name(curve);
    /* A long-term key (P11C_GEN_SIGN_ONLY) never derives; a session key
     * (P11C_GEN_DECRYPT_ONLY: for EC keys, derive only) never signs. */
    int sign_only = (persistent & P11C_GEN_SIGN_ONLY) != 0;
    int derive_only = (persistent & P11C_GEN_DECRYPT_ONLY) != 0 && !sign_only;
    int per_use = (persistent & P11C_GEN_PER_USE) != 0;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, tok = (persistent & 1) ? CK_TRUE : CK_FALSE;
    CK_BBOOL can_sign = derive_only ? CK_FALSE : CK_TRUE, can_derive = !sign_only;
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    uint8_t rid[P11C_RANDOM_ID_LEN];
    EDWARDS_RETRY edwards = {c, 0, {0}};
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (out != NULL)
        *out = NULL;
    if (t == NULL || out == NULL)
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair", "no token");
    p11c_keygen_what(t, label, err);
    if (c == NULL) {
        p11c_what_detail(err, "curve not supported (P-256, P-384, P-521, Ed25519, Ed448)");
        return p11c_err_rv(err, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair");
    }
    if (c->kt == CKK_EC_EDWARDS && derive_only) {
        p11c_what_detail(err, "Edwards keys only sign: a key that derives is made on P-256, "
                              "P-384 or P-521");
        return p11c_err_rv(err, CKR_ARGUMENTS_BAD, "C_GenerateKeyPair");
    }
    persistent &= 1;
    if (c->kt == CKK_EC_EDWARDS)
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
    /* A token without the mechanism is told apart from a failed attempt. */
    if (p11c_token_mechanism(t, mech.mechanism, CKF_GENERATE_KEY_PAIR, NULL, NULL) ==
        CKR_MECHANISM_INVALID) {
        char name[48], detail[160];
        snprintf(detail, sizeof(detail),
                 "the token does not offer %s: make %s keys on a token that offers it",
                 p11c_mech_name(mech.mechanism, name, sizeof(name)), c->name);
        p11c_what_detail(err, detail);
        return p11c_err_rv(err, CKR_MECHANISM_INVALID, "C_GenerateKeyPair");
    }
    rv = p11c_keygen_prepare(t, label, &id, &idlen, rid, persistent, &s, err);
    if (rv != CKR_OK)
        return rv;

    CK_ULONG nl = label != NULL ? (CK_ULONG)strlen(label) : 0;
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &tok, sizeof(tok)},        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},       {CKA_EC_PARAMS, (void *)c->oid, (CK_ULONG)c->oidlen},
        {CKA_ID, (void *)id, (CK_ULONG)idlen}, {CKA_LABEL, (void *)label, nl},
    };
    CK_ATTRIBUTE priv[9] = {
        {CKA_TOKEN, &tok, sizeof(tok)},          {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},      {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &can_sign, sizeof(can_sign)}, {CKA_ID, (void *)id, (CK_ULONG)idlen},
    };
    CK_ULONG npub = sizeof(pub) / sizeof(pub[0]) - (label == NULL);
    CK_ULONG npriv = 6;
    if (c->kt != CKK_EC_EDWARDS) /* no derivation with Edwards keys */
        priv[npriv++] = (CK_ATTRIBUTE){CKA_DERIVE, &can_derive, sizeof(can_derive)};
    if (label != NULL)
        priv[npriv++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, nl};
    if (per_use)
        priv[npriv++] = (CK_ATTRIBUTE){CKA_ALWAYS_AUTHENTICATE, &yes, sizeof(yes)};

    rv = p11c_keygen_run(t, &s, &mech, pub, npub, priv, npriv,
                         c->printable != NULL ? printable_curve : NULL, &edwards, &hpub, &hpriv,
                         err);
    if (rv != CKR_OK)
        return rv;
    return p11c_keygen_finish(t, s, c->kt, hpub, hpriv, label, id, idlen, persistent, out, err);
}

CK_RV p11c_key_import_ec(P11C_TOKEN *t, const char *curve, const uint8_t *priv, size_t privlen,
                         const uint8_t *point, size_t pointlen, const char *label,
                         const uint8_t *id, size_t idlen, int persistent, P11C_KEY **out,
                         P11C_ERR *err)
{
    const P11C_CURVE *c = p11c_curve_by_name(curve);
    CK_OBJECT_CLASS cpub = CKO_PUBLIC_KEY, cpriv = CKO_PRIVATE_KEY;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE, tok = persistent ? CK_TRUE : CK_FALSE;
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    uint8_t rid[P11C_RANDOM_ID_LEN];
    uint8_t wrapped[3 + 2 * 66 + 1]; /* tag, long-form length, P-521 point */
    CK_SESSION_HANDLE s;
    CK_RV rv;

    if (out != NULL)
        *out = NULL;
    if (t == NULL || out == NULL || c == NULL || point == NULL || pointlen != raw_len(c))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_CreateObject",
                            "import needs a known curve and its raw public point");
    p11c_keygen_what(t, label, err);
    rv = p11c_keygen_prepare(t, label, &id, &idlen, rid, persistent, &s, err);
    if (rv != CKR_OK)
        return rv;
    /* CKA_EC_POINT as PKCS#11 says: a DER OCTET STRING (contents < 256). */
    wrapped[0] = 0x04;
    wrapped[1] = (uint8_t)pointlen;
    size_t wlen = 2;
    if (pointlen >= 0x80) {
        wrapped[1] = 0x81;
        wrapped[2] = (uint8_t)pointlen;
        wlen = 3;
    }
    memcpy(wrapped + wlen, point, pointlen);
    wlen += pointlen;

    CK_ULONG nl = label != NULL ? (CK_ULONG)strlen(label) : 0;
    CK_KEY_TYPE kt = c->kt;
    if (priv != NULL) {
        CK_ATTRIBUTE a[] = {
            {CKA_CLASS, &cpriv, sizeof(cpriv)},
            {CKA_KEY_TYPE, &kt, sizeof(kt)},
            {CKA_TOKEN, &tok, sizeof(tok)},
            {CKA_PRIVATE, &yes, sizeof(yes)},
            {CKA_SENSITIVE, &yes, sizeof(yes)},
            {CKA_EXTRACTABLE, &no, sizeof(no)},
            {CKA_SIGN, &yes, sizeof(yes)},
            {CKA_ID, (void *)id, (CK_ULONG)idlen},
            {CKA_EC_PARAMS, (void *)c->oid, (CK_ULONG)c->oidlen},
            {CKA_VALUE, (void *)priv, (CK_ULONG)privlen},
            {CKA_DERIVE, &yes, sizeof(yes)},
            {CKA_LABEL, (void *)label, nl},
        };
        CK_ULONG na = sizeof(a) / sizeof(a[0]) - (label == NULL);
        rv = P11C_CALL(t->m, err, C_CreateObject, s, a, na, &hpriv);
        if (rv != CKR_OK) {
            p11c_session_put(t, s, rv);
            return rv;
        }
    }
    CK_ATTRIBUTE b[] = {
        {CKA_CLASS, &cpub, sizeof(cpub)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &tok, sizeof(tok)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ID, (void *)id, (CK_ULONG)idlen},
        {CKA_EC_PARAMS, (void *)c->oid, (CK_ULONG)c->oidlen},
        {CKA_EC_POINT, wrapped, (CK_ULONG)wlen},
        {CKA_LABEL, (void *)label, nl},
    };
    CK_ULONG nb = sizeof(b) / sizeof(b[0]) - (label == NULL);
    rv = P11C_CALL(t->m, err, C_CreateObject, s, b, nb, &hpub);
    if (rv != CKR_OK) {
        if (hpriv != CK_INVALID_HANDLE)
            P11C_CALL(t->m, NULL, C_DestroyObject, s, hpriv);
        p11c_session_put(t, s, rv);
        return rv;
    }
    return p11c_keygen_finish(t, s, c->kt, hpub, hpriv, label, id, idlen, persistent, out, err);
}
