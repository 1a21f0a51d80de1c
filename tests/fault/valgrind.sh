#!/usr/bin/env bash
# Runs the token test programs under valgrind's memcheck: no invalid access,
# no decision on an uninitialised value, no definite or indirect leak
# (SoftHSM2's and p11-kit's own leaks are suppressed, valgrind.supp).
#   bash tests/fault/valgrind.sh BUILD_DIR [TEST...]
# Default tests: the CUnit programs listed below, which use a SoftHSM2 token.
# Not listed: fault/concurrency (ThreadSanitizer checks that one; memcheck
# serialises its threads); apps/ and mitm/, which test the p11chat command in
# processes of its own; and the token programs added since the list was
# made (pkcs11_remote and the provider's certs, keyfile, pin, tls and
# Wycheproof EC programs), which have not been run under memcheck yet. fault_sweep runs its whole sweep, its handshakes
# sharing one session key made beforehand (P11C_SWEEP=fixed-key): a fresh RSA
# key per handshake would take memcheck more than half an hour.
# P11CHAT_VALGRIND_JOBS programs run at once (default: the number of cores).
# Logs: BUILD_DIR/tests/<dir>/<program>.valgrind.log (forked children included).
set -uo pipefail
build=${1:?usage: valgrind.sh BUILD_DIR [TEST...]}
shift
build=$(cd "$build" && pwd)
supp=$(cd "$(dirname "$0")" && pwd)/valgrind.supp
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    # the longest first, so that the parallel runs end together
    tests=(pkcs11/pkcs11_keys provider/test_provider protocol/protocol_token
           pkcs11/pkcs11_fault pkcs11/pkcs11_copies fault/fault_sweep
           pkcs11/pkcs11_login provider/test_provider_wycheproof pkcs11/pkcs11_ec
           pkcs11/pkcs11_module fault/fault_module)
fi
jobs=${P11CHAT_VALGRIND_JOBS:-$(nproc)}
export P11C_SWEEP=fixed-key

# One program under memcheck; its verdict goes to $log.result.
run_one() {
    local t=$1 exe=$build/tests/$1 log=$build/tests/$1.valgrind.log
    local start=$SECONDS rc summary
    (cd "$(dirname "$exe")" &&
        valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=42 --suppressions="$supp" --log-file="$log" "./$(basename "$exe")" \
            >"$log.out" 2>&1)
    rc=$?
    # the parent's summary is the last one (forked children write theirs first)
    summary=$(grep -h 'ERROR SUMMARY' "$log" | tail -n 1 | sed 's/^==[0-9]*== //')
    if [ $rc -eq 0 ]; then
        echo "valgrind: $t: ok in $((SECONDS - start)) s ($summary)" >"$log.result"
    else
        echo "valgrind: $t: FAILED, exit $rc in $((SECONDS - start)) s ($summary; log: $log, output: $log.out)" >"$log.result"
    fi
    return $rc
}

status=0
running=0
for t in "${tests[@]}"; do
    if [ ! -x "$build/tests/$t" ]; then
        echo "valgrind: $t: not built" >&2
        status=1
        continue
    fi
    rm -f "$build/tests/$t.valgrind.log.result"
    if [ $running -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait
for t in "${tests[@]}"; do
    r=$build/tests/$t.valgrind.log.result
    [ -f "$r" ] || continue
    if grep -q ': ok in ' "$r"; then
        cat "$r"
    else
        cat "$r" >&2
        status=1
    fi
done
exit $status
