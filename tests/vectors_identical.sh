#!/usr/bin/env bash
# tests/vectors/ is a copy of ../shared/vectors/ (the files the tests use).
# Where ../shared exists, every copied file must be byte-identical to it.
set -u
ours=$1 theirs=$2
if [ ! -d "$theirs" ]; then
    echo "vectors_identical: $theirs absent, nothing to compare"
    echo "1 passed, 0 failed"
    exit 0
fi
fail=0 n=0
for f in $(cd "$ours" && find . -type f | sort); do
    n=$((n + 1))
    if ! cmp -s "$ours/$f" "$theirs/$f"; then
        echo "vectors_identical: $f differs from $theirs/$f" >&2
        fail=$((fail + 1))
    fi
done
[ "$n" -gt 0 ] || { echo "vectors_identical: no vector files in $ours" >&2; exit 1; }
echo "vectors_identical: $n files compared"
echo "$((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
