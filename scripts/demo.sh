#!/usr/bin/env bash
# The demo: Alice and Bob chat end to end over TCP on this machine, with
# their long-term keys made inside a fresh SoftHSM2 token of the demo's own
# (build/demo/, never the machine's token store).
#
#   bash scripts/demo.sh
#
# Installs what is missing (scripts/setup.sh), configures and builds into
# build/, then runs the conversation. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
# Shows a command as it could be typed, then runs it.
run() {
    local shown='$' a
    for a in "$@"; do
        if [[ $a =~ [^A-Za-z0-9_./:=@%+,-] ]]; then shown+=" '$a'"; else shown+=" $a"; fi
    done
    printf '%s\n' "$shown"
    "$@"
}

bash scripts/setup.sh

say "configure and build (build/; full log in build/demo-build.log)"
cmake -S . -B build >/dev/null
if ! cmake --build build -j"$(nproc)" >build/demo-build.log 2>&1; then
    tail -n 30 build/demo-build.log >&2
    echo "demo: the build failed (see build/demo-build.log)" >&2
    exit 1
fi
p11chat=build/apps/p11chat
demo=build/demo
rm -rf "$demo"
mkdir -p "$demo"

say "a fresh SoftHSM2 token for the demo, label 'p11chat-demo' (PIN in $demo/token/pin)"
P11CHAT_TOKEN_NOKEYS=1 bash tests/token/mktoken.sh "$demo/token" p11chat-demo >/dev/null
export SOFTHSM2_CONF=$PWD/$demo/token/softhsm2.conf
pin=$demo/token/pin
alice_key='pkcs11:token=p11chat-demo;object=alice'
bob_key='pkcs11:token=p11chat-demo;object=bob'

say "Alice's and Bob's long-term keys, made inside the token (the private halves never leave it)"
run "$p11chat" keygen --key "$alice_key" --pin-source "$pin"
run "$p11chat" keygen --key "$bob_key" --pin-source "$pin"

say "their fingerprints (read out to each other on the phone, say)"
run "$p11chat" fingerprint --key "$alice_key"
run "$p11chat" fingerprint --key "$bob_key"
alice_fp=$("$p11chat" fingerprint --key "$alice_key" | awk '/^full:/ {print $2}')
bob_fp=$("$p11chat" fingerprint --key "$bob_key" | awk '/^full:/ {print $2}')

say "each trusts the other's fingerprint, in a trust store of their own"
run "$p11chat" trust add bob --fingerprint "$bob_fp" --trust "$demo/alice.trust"
run "$p11chat" trust add alice --fingerprint "$alice_fp" --trust "$demo/bob.trust"
run "$p11chat" trust list --trust "$demo/alice.trust"

say "Bob listens on loopback, Alice connects; each line typed is one encrypted message"
# What each of them types, with pauses; shown as "alice>" and "bob>".
type_lines() {
    local who=$1
    shift
    for line in "$@"; do
        if [ "$line" = . ]; then
            sleep 1
            continue
        fi
        printf '  %-5s> %s\n' "$who" "$line" >&2
        printf '%s\n' "$line"
        sleep 1
    done
}
# Everything p11chat prints, on either side, comes prefixed with its owner.
label() { sed -u "s/^/  [$1] /"; }

bob_log=$demo/bob.log
{
    sleep 2
    type_lines bob "Hi Alice, Bob here." . "Yes: keys in the token, messages end to end." . . . . .
} | "$p11chat" listen 127.0.0.1:0 --key "$bob_key" --pin-source "$pin" --id bob \
    --trust "$demo/bob.trust" 2>&1 | tee "$bob_log" | label "bob  " &
bob_pid=$!

port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$bob_log" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "demo: Bob's side did not start listening" >&2
    kill "$bob_pid" 2>/dev/null || true
    exit 1
fi

alice_status=0
{
    sleep 1
    type_lines alice "Hello Bob!" . "Is this really encrypted?" . . "Great. Bye for now."
    sleep 1
} | "$p11chat" connect "127.0.0.1:$port" --key "$alice_key" --pin-source "$pin" --id alice \
    --trust "$demo/alice.trust" 2>&1 | label alice || alice_status=$?
bob_status=0
wait "$bob_pid" || bob_status=$?

say "done"
if [ "$alice_status" -ne 0 ] || [ "$bob_status" -ne 0 ]; then
    echo "demo: the conversation did not end cleanly (alice: $alice_status, bob: $bob_status)" >&2
    exit 1
fi
echo "Both sides closed cleanly. Keys and trust stores: $demo/ (token: $demo/token/)."
echo "Next: docs/usage.md (chatting yourself, and wrapping a chat program such as ncat)."
