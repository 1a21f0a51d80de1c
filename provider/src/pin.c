/*
 * PINs the way OpenSSL programs give them: the passphrase callback of the
 * operation under way (OSSL_STORE's UI method: -passin, -pass, the openssl
 * command's own prompt), else a prompt on the controlling terminal when the
 * program runs on one. pkcs11/ asks through p11c_pin_ask only when neither
 * the URI, a PIN kept for the token, nor pkcs11-pin gives one.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ui.h>

#include "prov.h"

/* The longest PIN taken from a callback or a prompt. */
#define P11C_PIN_ASK_MAX 256

/* The callback of the OpenSSL call this thread is in (store load). */
static _Thread_local P11C_PIN_SCOPE current;

void p11c_pin_scope_begin(P11C_PIN_SCOPE *saved, OSSL_PASSPHRASE_CALLBACK *cb, void *arg)
{
    *saved = current;
    current.cb = cb;
    current.arg = arg;
}

void p11c_pin_scope_end(const P11C_PIN_SCOPE *saved)
{
    current = *saved;
}

/* The operation's callback; 1 with the PIN in buf. */
static int ask_callback(const char *info, char *buf, size_t size)
{
    OSSL_PARAM params[2];
    size_t len = 0;

    if (current.cb == NULL)
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, (char *)info, 0);
    params[1] = OSSL_PARAM_construct_end();
    /* A callback that has nothing (no UI method given) queues an error of
     * its own: not ours to report, the missing PIN is. */
    ERR_set_mark();
    int ok = current.cb(buf, size - 1, &len, params, current.arg) && len < size;
    ERR_pop_to_mark();
    if (!ok)
        return 0;
    buf[len] = '\0';
    return 1;
}

/* A prompt on the controlling terminal, when there is one and stdin is it. */
static int ask_terminal(const char *info, char *buf, size_t size)
{
    static pthread_mutex_t prompt_lock = PTHREAD_MUTEX_INITIALIZER;
    char prompt[160];
    int ok = 0;

    if (!isatty(STDIN_FILENO))
        return 0;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    snprintf(prompt, sizeof(prompt), "Enter the %s: ", info);
    pthread_mutex_lock(&prompt_lock);
    UI *ui = UI_new_method(UI_OpenSSL());
    if (ui != NULL && UI_add_input_string(ui, prompt, 0, buf, 1, (int)size - 1) >= 0)
        ok = UI_process(ui) == 0;
    UI_free(ui);
    pthread_mutex_unlock(&prompt_lock);
    return ok;
}

static CK_RV pin_ask(void *arg, const P11C_TOKEN *t, char **pin, P11C_ERR *err)
{
    char buf[P11C_PIN_ASK_MAX + 1];
    char info[120];
    CK_RV rv = P11C_CKR_NO_PIN;

    (void)arg;
    (void)err;
    *pin = NULL;
    snprintf(info, sizeof(info), "PIN of token '%s'", p11c_token_label(t));
    memset(buf, 0, sizeof(buf));
    if (ask_callback(info, buf, sizeof(buf)) || ask_terminal(info, buf, sizeof(buf))) {
        size_t len = strlen(buf);
        *pin = malloc(len + 1);
        if (*pin != NULL) {
            memcpy(*pin, buf, len + 1);
            rv = CKR_OK;
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rv;
}

void p11c_pin_ask_install(P11C_PROV *prov, P11C_MODULE *m)
{
    p11c_module_set_pin_ask(m, pin_ask, prov);
}

int p11c_pin_login_now(P11C_PROV *prov, P11C_KEY *key)
{
    P11C_ERR err;

    memset(&err, 0, sizeof(err));
    ERR_set_mark(); /* drop what the module's own OpenSSL queued */
    CK_RV rv = p11c_token_login(p11c_key_token(key), NULL, &err);
    ERR_pop_to_mark();
    /* No PIN from anywhere yet: the key still loads (its public half needs
     * none); the first private operation says what is missing. */
    if (rv == CKR_OK || rv == P11C_CKR_NO_PIN)
        return 1;
    P11C_RAISE_RV(prov, &err);
    return 0;
}
