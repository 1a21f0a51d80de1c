/*
 * The trust store file (spec section 7): the input written to a file in
 * /dev/shm and loaded; a store that loads is saved, loaded again, and must
 * give the same entries.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path_in[64], path_out[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path_in[0] == '\0') {
        snprintf(path_in, sizeof(path_in), "/dev/shm/p11c_fuzz_trust.%ld", (long)getpid());
        snprintf(path_out, sizeof(path_out), "/dev/shm/p11c_fuzz_trust_out.%ld", (long)getpid());
    }
    int fd = open(path_in, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        fz_fail("cannot write the trust file");
    close(fd);

    P11C_TRUST *t = p11c_trust_new();
    unsigned bad = 0;
    if (t == NULL)
        return 0;
    if (p11c_trust_load(t, path_in, &bad) == P11C_OK) {
        size_t n = p11c_trust_count(t);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *fp = NULL;
            const char *id = p11c_trust_entry(t, i, &fp);
            if (id == NULL || fp == NULL)
                fz_fail("entry without identity or fingerprint");
            if (!p11c_identity_valid((const uint8_t *)id, strlen(id)))
                fz_fail("a loaded entry has an identity the protocol would refuse");
        }
        if (p11c_trust_save(t, path_out) != P11C_OK)
            fz_fail("a loaded store cannot be saved");
        P11C_TRUST *t2 = p11c_trust_new();
        if (t2 == NULL || p11c_trust_load(t2, path_out, NULL) != P11C_OK ||
            p11c_trust_count(t2) != n)
            fz_fail("a saved store does not load back the same");
        for (size_t i = 0; i < n; i++) {
            const uint8_t *fp1, *fp2;
            const char *id1 = p11c_trust_entry(t, i, &fp1);
            const char *id2 = p11c_trust_entry(t2, i, &fp2);
            if (strcmp(id1, id2) != 0 || memcmp(fp1, fp2, P11C_FP_LEN) != 0)
                fz_fail("a saved store loads back different entries");
        }
        p11c_trust_free(t2);
    } else if (bad == 0) {
        fz_fail("a malformed trust file without the number of its bad line");
    }
    p11c_trust_free(t);
    return 0;
}
