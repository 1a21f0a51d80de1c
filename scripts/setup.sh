#!/usr/bin/env bash
# Installs, with apt-get, whatever the build, the tests, the demo and the
# benchmarks need and this machine lacks. Silent when everything is there.
set -euo pipefail

packages=(
    gcc make cmake pkg-config
    openssl libssl-dev
    p11-kit libp11-kit-dev
    softhsm2 opensc
    libcunit1-dev libjansson-dev
    ncat procps python3
    ngircd sic
    clang libclang-rt-dev
    valgrind
    libengine-pkcs11-openssl
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run as root (or install them with: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup: apt-get could not install: ${missing[*]} (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
