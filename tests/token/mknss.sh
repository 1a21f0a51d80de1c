#!/usr/bin/env bash
# Makes a private NSS softokn token for one test run, the second token
# implementation of the test matrix (tests/token/mktoken.sh makes SoftHSM2's).
#
#   mknss.sh DIR [LABEL]
#
# Writes an NSS database in DIR/nssdb (certutil -N) with user PIN 1234, the
# PIN to DIR/pin, and to DIR/init-args the C_Initialize parameters that open
# it with the token labelled LABEL (default "p11chat-test"), for
# pkcs11-module-init-args. Unless P11CHAT_TOKEN_NOKEYS=1, makes two RSA-2048
# key pairs in the token, "alice" (id 01) and "bob" (id 02), with the
# project's keygen (C_GenerateKeyPair, as pkcs11-tool does for SoftHSM2;
# $P11CHAT_CMD is the p11chat command), and writes their public keys, read
# back through the provider, to DIR/alice.pub.der and DIR/bob.pub.der.
# (pkcs11-tool cannot pass NSS its initialisation arguments; keys imported
# with pk12util have no public-key object at all.)
set -euo pipefail

dir=${1:?usage: mknss.sh DIR [LABEL]}
label=${2:-p11chat-test}

for tool in certutil; do
    if ! command -v "$tool" >/dev/null; then
        echo "mknss.sh: $tool not found (Debian package libnss3-tools)" >&2
        exit 1
    fi
done
rm -rf "$dir"
mkdir -p "$dir/nssdb"
dir=$(cd "$dir" && pwd)
printf '1234' >"$dir/pin"
chmod 600 "$dir/pin"
certutil -N -d "sql:$dir/nssdb" -f "$dir/pin"
printf "configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' flags=optimizeSpace dbTokenDescription='%s'" \
    "$dir/nssdb" "$label" >"$dir/init-args"

if [ "${P11CHAT_TOKEN_NOKEYS:-0}" != 1 ]; then
    cmd=${P11CHAT_CMD:?mknss.sh: set P11CHAT_CMD to the p11chat command}
    export P11CHAT_PKCS11_MODULE=${P11CHAT_NSS_MODULE:?mknss.sh: set P11CHAT_NSS_MODULE}
    P11CHAT_PKCS11_MODULE_INIT_ARGS=$(cat "$dir/init-args")
    export P11CHAT_PKCS11_MODULE_INIT_ARGS
    provdir="$(dirname "$cmd")/../provider"
    for spec in alice:01 bob:02; do
        name=${spec%%:*}
        # The provider's key generation, as any OpenSSL program asks it: a
        # key that signs and decrypts, as the SoftHSM2 fixture's keys do
        # (p11chat keygen makes sign-only keys). genpkey then fails to write
        # the private key, which stays in the token: the public key read
        # back below is the check that the key was made.
        P11CHAT_PKCS11_PIN="file:$dir/pin" OPENSSL_CONF=/dev/null openssl genpkey \
            -provider-path "$provdir" -provider p11chat -provider default \
            -propquery '?provider=p11chat' -algorithm RSA -pkeyopt bits:2048 \
            -pkeyopt "uri:pkcs11:token=$label;object=$name;id=%${spec##*:}" \
            -pkeyopt persistent:1 -out /dev/null >/dev/null 2>&1 || true
        P11CHAT_PKCS11_PIN="file:$dir/pin" OPENSSL_CONF=/dev/null openssl pkey \
            -provider-path "$provdir" -provider p11chat -provider default \
            -pubin -in "pkcs11:token=$label;object=$name;type=public" -pubout -outform DER \
            -out "$dir/$name.pub.der"
    done
fi
echo "NSS_INIT_ARGS=$(cat "$dir/init-args")"
