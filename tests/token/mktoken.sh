#!/usr/bin/env bash
# Makes a private SoftHSM2 token for one test run, never touching the
# machine's own token store.
#
#   mktoken.sh DIR [LABEL]
#
# Writes DIR/softhsm2.conf and DIR/tokens/, initialises token LABEL
# (default "p11chat-test") with SO PIN 12345678 and user PIN 1234, writes the
# user PIN to DIR/pin, and makes two RSA-2048 key pairs with pkcs11-tool:
# "alice" (id 01) and "bob" (id 02). Print the environment to use:
#   SOFTHSM2_CONF=DIR/softhsm2.conf
set -euo pipefail

dir=${1:?usage: mktoken.sh DIR [LABEL]}
label=${2:-p11chat-test}
module=${P11CHAT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

rm -rf "$dir"
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
printf '1234' >"$dir/pin"
chmod 600 "$dir/pin"

softhsm2-util --init-token --free --label "$label" --so-pin 12345678 --pin 1234 >/dev/null
if [ "${P11CHAT_TOKEN_NOKEYS:-0}" != 1 ]; then
    for spec in alice:01 bob:02; do
        pkcs11-tool --module "$module" --token-label "$label" --login --pin 1234 \
            --keypairgen --key-type rsa:2048 --label "${spec%%:*}" --id "${spec##*:}" \
            >/dev/null 2>&1
    done
fi
echo "SOFTHSM2_CONF=$SOFTHSM2_CONF"
