#!/usr/bin/env bash
# The Debian package installed on this machine, used, and purged.
#
#   deb_test.sh BUILD_DIR SOURCE_DIR
#
# THIS CHANGES THE SYSTEM: it installs p11chat_<version>_<arch>.deb with dpkg
# and purges it again. Root only (otherwise it skips, saying so); it skips
# too when a p11chat package it did not install is present, or when a file
# of the package already exists on the machine (it would be overwritten,
# then removed). Runs on one machine take turns (flock on
# /run/lock/p11chat-deb-test.lock). The purge runs on every way out (EXIT,
# INT, TERM, HUP), and a marker file (/var/tmp/p11chat-deb-test.installed,
# holding the pid of the run) makes the next run purge what a killed run
# left installed.
#
# Checks: the package's dependencies come from dpkg-shlibdeps; `openssl
# -provider p11chat` finds the provider by name (no -provider-path, no
# OPENSSL_MODULES): listed with its version, and reading a key in a
# SoftHSM2 token; /usr/bin/p11chat loads it too and gives the same
# fingerprint; the manual pages, pkg-config file, CMake package and example
# configuration are where they belong. After the purge: the package is
# unknown to dpkg, none of its files or directories remain, and a listing
# of /usr, /etc, /opt and dpkg's database has no new p11chat entry.
# The package is built by scripts/package.sh in BUILD_DIR/package.
set -euo pipefail

build=$(cd "${1:?usage: deb_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: deb_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
marker=/var/tmp/p11chat-deb-test.installed
skip=77

if [ "$(id -u)" -ne 0 ]; then
    echo "deb_test: skipped: not root (it installs and purges the p11chat package)"
    exit $skip
fi
for tool in dpkg dpkg-deb openssl softhsm2-util pkg-config; do
    if ! command -v "$tool" >/dev/null; then
        echo "deb_test: skipped: $tool is missing (bash scripts/setup.sh)"
        exit $skip
    fi
done

installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' p11chat 2>/dev/null || true)
    [ -n "$status" ] && [ "$status" != not-installed ]
}
# dpkg, waiting up to two minutes for its lock (apt-get elsewhere, or the
# dpkg of a run that was killed, still finishing its triggers).
dpkg_locked() {
    local out
    for _ in $(seq 120); do
        if out=$(dpkg "$@" 2>&1); then
            return 0
        fi
        grep -q 'lock' <<<"$out" || break
        sleep 1
    done
    echo "$out" >&2
    return 1
}
purge() {
    dpkg_locked --purge p11chat
}
# One run at a time on the machine, whichever build tree it comes from.
lock=/run/lock/p11chat-deb-test.lock
[ -d /run/lock ] || lock=/var/tmp/p11chat-deb-test.lock
exec 9>"$lock"
if ! flock -w 300 9; then
    echo "deb_test: skipped: another run held $lock for five minutes"
    exit $skip
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11chat-deb.XXXXXX")
ours=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ "$ours" = 1 ] && installed; then
        echo "deb_test: purging p11chat (interrupted or failed before the purge)" >&2
        purge || rc=1
    fi
    [ "$ours" = 1 ] && rm -f "$marker"
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A run killed before its purge left the package installed: purge it now
# (unless that run is still going).
if [ -e "$marker" ]; then
    other=$(cat "$marker" 2>/dev/null || true)
    if [ -n "$other" ] && [ "$other" != $$ ] && kill -0 "$other" 2>/dev/null &&
        grep -q deb_test "/proc/$other/cmdline" 2>/dev/null; then
        echo "deb_test: skipped: another run (pid $other) has the package installed"
        exit $skip
    fi
    if installed; then
        echo "deb_test: purging the p11chat a previous run left installed ($marker)"
        purge
    fi
    rm -f "$marker"
fi
if installed; then
    echo "deb_test: skipped: a p11chat package is installed on this machine; this test would remove it"
    exit $skip
fi

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The package.
P11CHAT_PACKAGE_BUILD=$build/package P11CHAT_JOBS=${P11CHAT_JOBS:-2} \
    bash "$src/scripts/package.sh" "$tmp" >"$tmp/deb.path" 2>"$tmp/package.log" || {
    cat "$tmp/package.log" >&2
    echo "FAIL: scripts/package.sh failed" >&2
    exit 1
}
deb=$(cat "$tmp/deb.path")
echo "deb_test: $(basename "$deb"), $(stat -c %s "$deb") bytes"
dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $6 }' | sed 's|/$||' | grep . |
    LC_ALL=C sort >"$tmp/files"
while read -r f; do
    if { [ -e "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ]; then
        echo "deb_test: skipped: $f exists already, from no package (a cmake --install?): the package would replace it and the purge remove it"
        exit $skip
    fi
done <"$tmp/files"
depends=$(dpkg-deb -f "$deb" Depends)
for d in libc6 libssl3 libp11-kit0; do
    case ", $depends" in *", $d "*) ;; *) fail "Depends '$depends' lacks $d" ;; esac
done

snapshot() {
    find /usr /etc /opt /var/lib/dpkg/info -xdev 2>/dev/null | LC_ALL=C sort >"$1"
}
snapshot "$tmp/before"

# Install.
echo $$ >"$marker"
ours=1
if ! dpkg_locked -i "$deb"; then
    fail "dpkg -i $(basename "$deb") failed"
    exit 1
fi

# Used as any OpenSSL program would, by name only.
unset OPENSSL_MODULES OPENSSL_CONF
modulesdir=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
dpkg -L p11chat >"$tmp/list"
grep -qx "$modulesdir/p11chat.so" "$tmp/list" ||
    fail "the provider is not in OpenSSL's modules directory $modulesdir"
out=$(openssl list -providers -verbose -provider p11chat 2>&1) || fail "openssl list -providers -provider p11chat: $out"
grep -q "version: 0.1.0" <<<"$out" || fail "openssl list -providers shows no p11chat 0.1.0: $out"
grep -q "build info: p11chat 0.1.0, built with p11-kit" <<<"$out" ||
    fail "openssl list -providers shows no p11chat buildinfo: $out"

bash "$src/tests/token/mktoken.sh" "$tmp/token" >/dev/null
export SOFTHSM2_CONF=$tmp/token/softhsm2.conf
uri='pkcs11:token=p11chat-test;object=alice'
openssl pkey -provider p11chat -provider default -in "$uri;type=public" -pubin -pubout \
    -out "$tmp/alice.pub" 2>"$tmp/err" || fail "openssl pkey -provider p11chat: $(cat "$tmp/err")"
want=$("$build/apps/p11chat" fingerprint --key "$tmp/alice.pub" 2>&1) || fail "fingerprint of the exported key: $want"

# The command, from the package.
[ "$(command -v p11chat)" = /usr/bin/p11chat ] || fail "p11chat is not /usr/bin/p11chat: $(command -v p11chat)"
grep -q "^provider $modulesdir/p11chat.so: p11chat 0.1.0, built with p11-kit " <<<"$(/usr/bin/p11chat --version)" ||
    fail "/usr/bin/p11chat --version: $(/usr/bin/p11chat --version)"
got=$(/usr/bin/p11chat fingerprint --key "$uri" 2>&1) || fail "/usr/bin/p11chat fingerprint: $got"
[ "$got" = "$want" ] || fail "/usr/bin/p11chat fingerprint of the token key: '$got', through openssl: '$want'"

# What else the package brings.
[ "$(man -w p11chat 2>/dev/null)" = /usr/share/man/man1/p11chat.1.gz ] || fail "man -w p11chat: $(man -w p11chat 2>&1)"
[ "$(man -w 7 p11chat-provider 2>/dev/null)" = /usr/share/man/man7/p11chat-provider.7.gz ] ||
    fail "man -w 7 p11chat-provider: $(man -w 7 p11chat-provider 2>&1)"
[ "$(pkg-config --modversion libp11chat 2>&1)" = 0.1.0 ] || fail "pkg-config --modversion libp11chat"
[ -f /usr/share/doc/p11chat/examples/openssl-p11chat.cnf ] || fail "no example configuration"
grep -q '/cmake/p11chat/p11chatConfig.cmake$' "$tmp/list" || fail "no CMake package"
ldconfig -p >"$tmp/ldcache"
grep -q 'libp11chat.so.0 ' "$tmp/ldcache" || fail "libp11chat.so.0 is not in the dynamic linker's cache"

# Purge: nothing left behind.
purge || fail "dpkg --purge p11chat failed"
ours=0
rm -f "$marker"
installed && fail "p11chat is still known to dpkg after the purge"
while read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        grep -qx "$f" "$tmp/before" || fail "left behind: $f"
    fi
done <"$tmp/files"
snapshot "$tmp/after"
LC_ALL=C comm -3 "$tmp/before" "$tmp/after" >"$tmp/diff" || true
if grep -q p11chat "$tmp/diff"; then
    fail "the machine's files differ in p11chat entries after the purge: $(grep p11chat "$tmp/diff" | tr '\n' ' ')"
fi
others=$(grep -vc p11chat "$tmp/diff" || true)
[ "$others" = 0 ] || echo "deb_test: $others other entries changed meanwhile (another program's), not counted"

if [ "$failures" -ne 0 ]; then
    echo "deb_test: $failures failure(s)" >&2
    exit 1
fi
echo "deb_test: installed, used by name from openssl and as /usr/bin/p11chat, purged; nothing left behind"
