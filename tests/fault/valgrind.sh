#!/usr/bin/env bash
# Runs the token test programs under valgrind's memcheck: no invalid access,
# no definite or indirect leak (SoftHSM2's and p11-kit's own are suppressed).
#   bash tests/fault/valgrind.sh BUILD_DIR [TEST...]
# Default tests: every CUnit program that uses a SoftHSM2 token.
set -uo pipefail
build=${1:?usage: valgrind.sh BUILD_DIR [TEST...]}
shift
supp=$(cd "$(dirname "$0")" && pwd)/valgrind.supp
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    tests=(pkcs11/pkcs11_module pkcs11/pkcs11_keys provider/test_provider
           protocol/protocol_token fault/fault_module fault/fault_sweep fault/concurrency)
fi
status=0
for t in "${tests[@]}"; do
    exe=$build/tests/$t
    [ -x "$exe" ] || { echo "valgrind: $t: not built" >&2; status=1; continue; }
    log=$build/tests/$t.valgrind.log
    (cd "$(dirname "$exe")" && valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=42 --suppressions="$supp" --log-file="$log" "./$(basename "$exe")" \
        >"$log.out" 2>&1)
    rc=$?
    summary=$(grep -h 'ERROR SUMMARY' "$log" | head -n 1 | sed 's/^==[0-9]*== //')
    if [ $rc -eq 0 ]; then
        echo "valgrind: $t: ok ($summary)"
    else
        echo "valgrind: $t: FAILED, exit $rc ($summary; log: $log)" >&2
        status=1
    fi
done
exit $status
