/* Error and trust-result names. */
#include "p11c_internal.h"

static const char *const err_text[] = {
    [P11C_OK] = "success",
    [P11C_ERR_ARG] = "bad argument or configuration",
    [P11C_ERR_MEMORY] = "out of memory",
    [P11C_ERR_CRYPTO] = "cryptographic operation failed",
    [P11C_ERR_STATE] = "not allowed in this state of the session",
    [P11C_ERR_FAILED] = "the session failed earlier",
    [P11C_ERR_DECODE] = "malformed message (missing field or trailing bytes)",
    [P11C_ERR_VERSION] = "unknown protocol version",
    [P11C_ERR_TYPE] = "unexpected or unknown message type",
    [P11C_ERR_SUITE] = "unknown suite, or a suite this side does not accept",
    [P11C_ERR_FIELD_SIZE] = "a field is longer than the protocol allows",
    [P11C_ERR_KEY] = "key not RSA 2048/3072/4096 e=65537 or (suite 2) EC P-256/P-384, or bad DER",
    [P11C_ERR_IDENTITY] = ("identity is empty, too long, not UTF-8, or holds a control, format or "
                           "separator character or an edge space"),
    [P11C_ERR_SIGNATURE] = "handshake signature does not verify",
    [P11C_ERR_SECRET] = "session secret did not decrypt to exactly 64 bytes",
    [P11C_ERR_CONFIRM] = "key confirmation failed",
    [P11C_ERR_TRUST_MISMATCH] = "peer's identity or fingerprint is bound to another",
    [P11C_ERR_UNKNOWN_PEER] = "peer is not in the trust store (known peers only)",
    [P11C_ERR_RECORD_LENGTH] = "record length inconsistent or beyond its type's bound",
    [P11C_ERR_RECORD_HEADER] = "bad version, type or reserved byte in a record",
    [P11C_ERR_DIRECTION] = "record carries our own direction (reflected)",
    [P11C_ERR_MAC] = "record MAC does not verify",
    [P11C_ERR_REPLAY] = "record number already seen or too old (replay)",
    [P11C_ERR_SEQ] = "record number skipped or out of order",
    [P11C_ERR_ACK] = "acknowledgement beyond what was sent, or decreasing",
    [P11C_ERR_EARLY_RECORD] = "record before the handshake completed",
    [P11C_ERR_LIMIT] = "message too long, or record numbers exhausted",
    [P11C_ERR_FRAME] = "bad stream frame or text line",
    [P11C_ERR_TRUST_FILE] = "trust store file unreadable, malformed or unwritable",
};

const char *p11c_strerror(p11c_err err)
{
    if ((unsigned)err >= sizeof(err_text) / sizeof(err_text[0]) || err_text[err] == NULL)
        return "unknown error";
    return err_text[err];
}

const char *p11c_trust_result_name(p11c_trust_result r)
{
    switch (r) {
    case P11C_TRUSTED:
        return "trusted";
    case P11C_UNKNOWN:
        return "NOT IN TRUST STORE";
    case P11C_MISMATCH:
        return "MISMATCH";
    }
    return "unknown";
}
