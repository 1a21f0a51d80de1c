/* RSA operations: the PSS and OAEP mechanism parameters, sign and decrypt. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef union {
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
} P11C_MECH_PARAMS;

static CK_MECHANISM_TYPE pss_hash(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_SHA1_RSA_PKCS_PSS:
        return CKM_SHA_1;
    case CKM_SHA224_RSA_PKCS_PSS:
        return CKM_SHA224;
    case CKM_SHA256_RSA_PKCS_PSS:
        return CKM_SHA256;
    case CKM_SHA384_RSA_PKCS_PSS:
        return CKM_SHA384;
    case CKM_SHA512_RSA_PKCS_PSS:
        return CKM_SHA512;
    default:
        return 0;
    }
}

static CK_RSA_PKCS_MGF_TYPE mgf_for(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA_1:
        return CKG_MGF1_SHA1;
    case CKM_SHA224:
        return CKG_MGF1_SHA224;
    case CKM_SHA256:
        return CKG_MGF1_SHA256;
    case CKM_SHA384:
        return CKG_MGF1_SHA384;
    case CKM_SHA512:
        return CKG_MGF1_SHA512;
    default:
        return 0;
    }
}

/* The CK_MECHANISM for m; parameters live in p. Nothing is sent as zero. */
static CK_RV mech_build(const P11C_MECH *in, CK_MECHANISM *out, P11C_MECH_PARAMS *p)
{
    memset(p, 0, sizeof(*p));
    out->mechanism = in->type;
    out->pParameter = NULL;
    out->ulParameterLen = 0;
    switch (in->type) {
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA1_RSA_PKCS_PSS:
    case CKM_SHA224_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS:
        p->pss.hashAlg = in->hash != 0 ? in->hash : pss_hash(in->type);
        p->pss.mgf = in->mgf != 0 ? in->mgf : mgf_for(p->pss.hashAlg);
        p->pss.sLen = in->salt_len;
        if (p->pss.hashAlg == 0 || p->pss.mgf == 0)
            return CKR_MECHANISM_PARAM_INVALID;
        out->pParameter = &p->pss;
        out->ulParameterLen = sizeof(p->pss);
        break;
    case CKM_RSA_PKCS_OAEP:
        p->oaep.hashAlg = in->hash;
        p->oaep.mgf = in->mgf != 0 ? in->mgf : mgf_for(in->hash);
        p->oaep.source = CKZ_DATA_SPECIFIED;
        p->oaep.pSourceData = in->label_len != 0 ? (void *)in->label : NULL;
        p->oaep.ulSourceDataLen = in->label_len;
        if (p->oaep.hashAlg == 0 || p->oaep.mgf == 0 || (in->label_len != 0 && in->label == NULL))
            return CKR_MECHANISM_PARAM_INVALID;
        out->pParameter = &p->oaep;
        out->ulParameterLen = sizeof(p->oaep);
        break;
    default:
        break;
    }
    return CKR_OK;
}

CK_RV p11c_key_sign(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                    uint8_t *sig, size_t *siglen, P11C_ERR *err)
{
    CK_MECHANISM ck;
    P11C_MECH_PARAMS params;

    if (k == NULL || mech == NULL || siglen == NULL || (in == NULL && inlen != 0))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_Sign", "no key, mechanism or buffer");
    if (sig == NULL) {
        *siglen = p11c_key_sig_len(k);
        return CKR_OK;
    }
    if (*siglen < p11c_key_sig_len(k)) {
        *siglen = p11c_key_sig_len(k);
        p11c_key_what(k, err);
        return p11c_err_rv(err, CKR_BUFFER_TOO_SMALL, "C_Sign");
    }
    p11c_key_what(k, err);
    CK_RV rv = mech_build(mech, &ck, &params);
    if (rv != CKR_OK) {
        p11c_what_detail(err, "PSS needs a hash and an MGF");
        return p11c_err_rv(err, rv, "C_SignInit");
    }
    rv = p11c_module_enter(k->t->m, err);
    if (rv == CKR_OK)
        rv = p11c_key_op(k, 0, &ck, in, inlen, sig, siglen, err);
    return rv;
}

CK_RV p11c_key_decrypt(P11C_KEY *k, const P11C_MECH *mech, const uint8_t *in, size_t inlen,
                       uint8_t *out, size_t *outlen, P11C_ERR *err)
{
    CK_MECHANISM ck;
    P11C_MECH_PARAMS params;
    uint8_t *tmp = NULL;
    size_t tmplen = 0;

    if (k == NULL || mech == NULL || outlen == NULL || (in == NULL && inlen != 0))
        return p11c_err_set(err, CKR_ARGUMENTS_BAD, "C_Decrypt", "no key, mechanism or buffer");
    if (out == NULL) {
        *outlen = k->nlen;
        return CKR_OK;
    }
    p11c_key_what(k, err);
    CK_RV rv = mech_build(mech, &ck, &params);
    if (rv != CKR_OK) {
        p11c_what_detail(err, "OAEP needs a hash and an MGF");
        return p11c_err_rv(err, rv, "C_DecryptInit");
    }
    rv = p11c_module_enter(k->t->m, err);
    if (rv != CKR_OK)
        goto end;
    if (*outlen >= k->nlen) {
        rv = p11c_key_op(k, 1, &ck, in, inlen, out, outlen, err);
        goto end;
    }
    /* A buffer smaller than the modulus may still hold the plaintext; decrypt
     * into our own so that the token never stops at CKR_BUFFER_TOO_SMALL
     * with the operation left active. */
    tmplen = k->nlen;
    tmp = malloc(tmplen);
    if (tmp == NULL) {
        rv = p11c_err_rv(err, CKR_HOST_MEMORY, "C_Decrypt");
        goto end;
    }
    rv = p11c_key_op(k, 1, &ck, in, inlen, tmp, &tmplen, err);
    if (rv != CKR_OK)
        goto end;
    if (tmplen > *outlen) {
        *outlen = tmplen;
        rv = p11c_err_rv(err, CKR_BUFFER_TOO_SMALL, "C_Decrypt");
        goto end;
    }
    memcpy(out, tmp, tmplen);
    *outlen = tmplen;
end:
    if (tmp != NULL)
        OPENSSL_clear_free(tmp, k->nlen);
    return rv;
}
