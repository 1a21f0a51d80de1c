/*
 * pkcs11: URIs (RFC 7512) as the key loader reads them, against a private
 * SoftHSM2 token holding the keys alice (id 01) and bob (id 02). Inputs that
 * name files to read (pin-source) or modules to load are skipped: those come
 * from the user's configuration, not from a peer.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "p11c_pkcs11.h"

#define FUZZ_PIN "Zq9pinZq9"

static P11C_MODULE *mod;

static void module_init(void)
{
    char dir[128], cmd[1024];
    snprintf(dir, sizeof(dir), "/dev/shm/p11c_fuzz_uri.%ld", (long)getpid());
    /* A PIN made of letters no hex dump or number can contain. */
    snprintf(cmd, sizeof(cmd),
             "bash '%s' '%s' >/dev/null && SOFTHSM2_CONF='%s/softhsm2.conf' pkcs11-tool "
             "--module '%s' --login --pin 1234 --change-pin --new-pin '" FUZZ_PIN "' "
             ">/dev/null 2>&1",
             P11C_MKTOKEN, dir, dir, P11C_SOFTHSM_MODULE);
    if (system(cmd) != 0)
        fz_fail("cannot make the token");
    char conf[160];
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", conf, 1);
    P11C_ERR err;
    if (p11c_module_load(P11C_SOFTHSM_MODULE, &mod, &err) != CKR_OK)
        fz_fail("cannot load SoftHSM2");
    p11c_module_set_pin(mod, FUZZ_PIN);
}

/* Percent-decoded, letters and digits only: how a name may show in a message. */
static void normalize(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in[i] != '\0' && o + 1 < outlen; i++) {
        int c = (unsigned char)in[i];
        if (c == '%' && OPENSSL_hexchar2int((unsigned char)in[i + 1]) >= 0 &&
            OPENSSL_hexchar2int((unsigned char)in[i + 2]) >= 0) {
            c = OPENSSL_hexchar2int((unsigned char)in[i + 1]) << 4 |
                OPENSSL_hexchar2int((unsigned char)in[i + 2]);
            i += 2;
        }
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mod == NULL)
        module_init();
    if (size > 4096)
        return 0;
    char *uri = malloc(size + 1);
    if (uri == NULL)
        return 0;
    memcpy(uri, data, size);
    uri[size] = '\0';
    if (strstr(uri, "source") != NULL || strstr(uri, "module") != NULL) {
        free(uri);
        return 0;
    }
    for (int want = P11C_WANT_ANY; want <= P11C_WANT_PUBLIC; want++) {
        P11C_KEY *key = NULL;
        P11C_ERR err;
        memset(&err, 0, sizeof(err));
        CK_RV rv = p11c_key_load(mod, uri, (p11c_want)want, &key, &err);
        if (rv == CKR_OK) {
            if (key == NULL)
                fz_fail("CKR_OK without a key");
            unsigned bits = p11c_key_bits(key);
            if (bits != 2048)
                fz_fail("the token holds only 2048-bit keys");
            p11c_key_free(key);
        } else {
            char buf[512], nbuf[512], nuri[4200];
            if (key != NULL)
                fz_fail("a key returned with an error");
            /* The PIN may show only if the URI itself spells it. */
            normalize(p11c_err_string(&err, buf, sizeof(buf)), nbuf, sizeof(nbuf));
            normalize(uri, nuri, sizeof(nuri));
            if (strstr(nbuf, FUZZ_PIN) != NULL && strstr(nuri, FUZZ_PIN) == NULL)
                fz_fail("the PIN appears in an error message");
        }
    }
    free(uri);
    return 0;
}
