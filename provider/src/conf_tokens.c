/*
 * Configuration keys for tokens as they are: a module's own initialisation
 * arguments (NSS softokn), keeping a PIN once known, the last PIN try, and
 * PSS encoded on the host for tokens without it.
 */
#include <string.h>

#include "prov.h"

/* One yes/no key: *out keeps `def` when neither the section nor the
 * environment sets it; 0 with an error raised on another value. */
static int conf_bool(P11C_PROV *prov, const OSSL_PARAM *got, const char *key, const char *env,
                     int def, int *out)
{
    const char *v = p11c_conf_value(got, env);

    *out = def;
    if (v == NULL)
        return 1;
    *out = p11c_parse_bool(v);
    if (*out >= 0)
        return 1;
    P11C_RAISE(prov, P11C_R_BAD_PARAM, "%s: '%s' is not yes or no", key, v);
    return 0;
}

int p11c_conf_tokens(P11C_PROV *prov, OSSL_FUNC_core_get_params_fn *get,
                     const OSSL_CORE_HANDLE *handle)
{
    const char *args = NULL, *cache = NULL, *final_try = NULL, *pss = NULL;
    OSSL_PARAM conf[5];

    conf[0] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_INIT_ARGS, (char **)&args, 0);
    conf[1] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_PIN_CACHE, (char **)&cache, 0);
    conf[2] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_PIN_FINAL_TRY, (char **)&final_try, 0);
    conf[3] = OSSL_PARAM_construct_utf8_ptr(P11CHAT_CONF_PSS_ON_HOST, (char **)&pss, 0);
    conf[4] = OSSL_PARAM_construct_end();
    if (!get(handle, conf))
        return 0;
    args = p11c_conf_value(&conf[0], "P11CHAT_PKCS11_MODULE_INIT_ARGS");
    if (args != NULL && (prov->init_args = OPENSSL_strdup(args)) == NULL)
        return 0;
    return conf_bool(prov, &conf[1], P11CHAT_CONF_PIN_CACHE, "P11CHAT_PKCS11_PIN_CACHE", 1,
                     &prov->pin_cache) &&
           conf_bool(prov, &conf[2], P11CHAT_CONF_PIN_FINAL_TRY, "P11CHAT_PKCS11_PIN_FINAL_TRY", 0,
                     &prov->pin_final_try) &&
           conf_bool(prov, &conf[3], P11CHAT_CONF_PSS_ON_HOST, "P11CHAT_PKCS11_PSS_ON_HOST", 1,
                     &prov->pss_on_host);
}

void p11c_conf_tokens_apply(P11C_PROV *prov, P11C_MODULE *m)
{
    p11c_module_set_pin_cache(m, prov->pin_cache);
    p11c_module_set_pin_final_try(m, prov->pin_final_try);
    p11c_pin_ask_install(prov, m);
}

void p11c_conf_tokens_free(P11C_PROV *prov)
{
    OPENSSL_free(prov->init_args);
    prov->init_args = NULL;
}
