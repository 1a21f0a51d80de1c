#!/usr/bin/env bash
# pkcs11-tool through the fault module: forwarding works, a configured fault
# reaches the program with its CKR name, and clearing it restores service.
#   pkcs11_tool_test.sh MODULE MKTOKEN WORKDIR
set -euo pipefail
module=$1 mktoken=$2 work=$3/pkcs11_tool.$$
trap 'rm -rf "$work"' EXIT
bash "$mktoken" "$work/token" >/dev/null
export SOFTHSM2_CONF=$work/token/softhsm2.conf
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(pkcs11-tool --module "$module" -L 2>&1) || fail "listing slots: $out"
grep -q 'token label *: p11chat-test' <<<"$out" || fail "no token in: $out"

out=$(pkcs11-tool --module "$module" --token-label p11chat-test -O 2>&1) || fail "listing objects: $out"
grep -q 'label: *alice' <<<"$out" || fail "alice not listed: $out"

printf 'hello' >"$work/in"
sign() {
    pkcs11-tool --module "$module" --token-label p11chat-test --login --pin 1234 \
        --sign --mechanism SHA256-RSA-PKCS --label alice -i "$work/in" -o "$work/sig" 2>&1
}
out=$(sign) || fail "signing: $out"
[ "$(stat -c %s "$work/sig")" = 256 ] || fail "signature length"

out=$(P11C_FAULT=C_SignInit:1:CKR_DEVICE_ERROR sign) && fail "fault did not fire: $out"
grep -q 'CKR_DEVICE_ERROR' <<<"$out" || fail "CKR name missing: $out"

echo 'C_Login:1:CKR_PIN_EXPIRED' >"$work/ctl"
out=$(P11C_FAULT_FILE=$work/ctl sign) && fail "file fault did not fire: $out"
grep -q 'CKR_PIN_EXPIRED' <<<"$out" || fail "CKR name missing: $out"
: >"$work/ctl"
out=$(P11C_FAULT_FILE=$work/ctl sign) || fail "after clearing: $out"

P11C_FAULT_LOG=$work/log P11C_FAULT=count sign >/dev/null || fail "count mode"
grep -qx C_SignInit "$work/log" || fail "C_SignInit not logged"
echo "ok: $(wc -l <"$work/log") calls logged"
