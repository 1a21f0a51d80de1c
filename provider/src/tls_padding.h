/*
 * The TLS RSA pre-master secret check (RSA_PKCS1_WITH_TLS_PADDING), kept
 * apart from the provider so that its timing can be tested on its own.
 */
#ifndef P11C_TLS_PADDING_H
#define P11C_TLS_PADDING_H

#include <stddef.h>
#include <stdint.h>

#define P11C_TLS_PREMASTER_LEN 48

/*
 * `em` is the raw RSA result (k bytes, leading zeros kept). Writes to `out`
 * the 48-byte pre-master secret when em is a PKCS#1 v1.5 type 2 block (at
 * least eight padding bytes) holding exactly 48 bytes that start with
 * client_version (or alt_version, when nonzero); otherwise writes `rnd`, 48
 * random bytes the caller drew beforehand (RFC 5246, 7.4.7.1). Constant
 * time: no branch or memory index depends on em. The result is not told:
 * a wrong ciphertext only makes the handshake fail later, at Finished.
 * Returns 0 only for public misuse (k below 11 + 48).
 */
int p11c_tls_premaster_select(uint8_t out[P11C_TLS_PREMASTER_LEN], const uint8_t *em, size_t k,
                              unsigned int client_version, unsigned int alt_version,
                              const uint8_t rnd[P11C_TLS_PREMASTER_LEN]);

#endif
