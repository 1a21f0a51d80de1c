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
    scdoc dpkg-dev
    libnss3 libnss3-tools p11-kit-modules
    apache2 nginx stunnel4 curl
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
# The server tests start apache2, nginx and stunnel themselves, on ports of
# their own; the packages must not start system services (Debian's would
# listen on port 80). policy-rc.d answering 101 forbids it during the
# install; one already present is left as it is.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# p11chat setup: no service starts during package installation\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
fi
log=$(mktemp)
status=0
{ apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 || status=$?
[ "$own_policy" = 1 ] && rm -f "$policy"
if [ "$status" -ne 0 ]; then
    tail -n 20 "$log" >&2
    echo "setup: apt-get could not install: ${missing[*]} (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
# Where systemd runs, keep the servers' own services stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for svc in apache2 nginx stunnel4; do
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
fi
