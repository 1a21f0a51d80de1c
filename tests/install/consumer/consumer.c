/*
 * A program built against an installed libp11chat (pkg-config or the CMake
 * package, tests/install/prefix_test.sh): prints the fingerprints of the
 * public key in a PEM file, as 'p11chat fingerprint' does.
 */
#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <p11chat.h>

int main(int argc, char **argv)
{
    int ret = 1;
    BIO *in = NULL;
    EVP_PKEY *key = NULL;
    uint8_t fp[P11C_FP_LEN];
    char s[P11C_SHORT_FP_LEN + 1], hex[2 * P11C_FP_LEN + 1];

    if (argc != 2) {
        fprintf(stderr, "usage: consumer PUBLIC-KEY.pem\n");
        goto end;
    }
    if ((in = BIO_new_file(argv[1], "r")) == NULL ||
        (key = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL)) == NULL) {
        fprintf(stderr, "consumer: cannot read a public key from %s\n", argv[1]);
        goto end;
    }
    p11c_err e = p11c_fingerprint(NULL, NULL, key, fp);
    if (e != P11C_OK) {
        fprintf(stderr, "consumer: p11c_fingerprint: %s\n", p11c_strerror(e));
        goto end;
    }
    p11c_fingerprint_short(fp, s);
    p11c_fingerprint_hex(fp, hex);
    printf("short: %s\nfull:  %s\n", s, hex);
    ret = 0;
end:
    EVP_PKEY_free(key);
    BIO_free(in);
    return ret;
}
