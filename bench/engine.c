/*
 * The libp11 ENGINE (Debian's libengine-pkcs11-openssl), the tool most users
 * would otherwise pick, for comparison. ENGINEs exist only in OpenSSL's
 * deprecated API, so this file alone is built with it (bench/CMakeLists.txt).
 * The engine loads SoftHSM2 itself, in the same process as pkcs11/ and the
 * provider (p11-kit's managed loading lets the three share it), and signs
 * through the legacy RSA method in the default library context.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "bench.h"

#ifndef P11C_ENGINE_SO
#define P11C_ENGINE_SO "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
#endif

static ENGINE *eng;
static EVP_PKEY *eng_key;

void *bench_engine_key(const char *uri)
{
    ENGINE *e = NULL;

    if (eng_key != NULL)
        return eng_key;
    e = ENGINE_by_id("dynamic");
    if (e == NULL || !ENGINE_ctrl_cmd_string(e, "SO_PATH", P11C_ENGINE_SO, 0) ||
        !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
        !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) ||
        !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0) ||
        !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", bench.module, 0) || !ENGINE_init(e)) {
        bench_note("libp11 engine: cannot load %s", P11C_ENGINE_SO);
        goto fail;
    }
    eng = e;
    e = NULL;
    if (!ENGINE_ctrl_cmd_string(eng, "PIN", "1234", 0))
        goto fail;
    eng_key = ENGINE_load_private_key(eng, uri, NULL, NULL);
    if (eng_key == NULL) {
        bench_note("libp11 engine: cannot load %s", uri);
        goto fail;
    }
    return eng_key;
fail:
    bench_ossl_err("engine");
    ENGINE_free(e);
    bench_engine_free();
    return NULL;
}

int bench_engine_sign(void *key, const uint8_t *msg, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t sig[256];
    size_t siglen = sizeof(sig);
    int ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
             EVP_DigestSign(md, sig, &siglen, msg, len) > 0;

    EVP_MD_CTX_free(md);
    return ok;
}

void bench_engine_free(void)
{
    EVP_PKEY_free(eng_key);
    eng_key = NULL;
    if (eng != NULL) {
        ENGINE_finish(eng);
        ENGINE_free(eng);
        eng = NULL;
    }
}
