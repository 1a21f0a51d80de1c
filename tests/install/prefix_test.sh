#!/usr/bin/env bash
# A prefix install stays inside its prefix and works from there.
#
#   prefix_test.sh BUILD_DIR SOURCE_DIR
#
# Installs BUILD_DIR with `cmake --install --prefix` into a temporary
# directory, then checks: every file installed is under the prefix, and each
# part is where GNUInstallDirs puts it; the installed command finds the
# provider installed with it (a key in a SoftHSM2 token gives the same
# fingerprint as from the build tree), also after the prefix is moved, and
# follows OPENSSL_MODULES first; `p11chat --version` names the OpenSSL it
# runs with and the p11-kit its provider was built with; a program builds
# and runs against the installed library with pkg-config (libp11chat.pc)
# and with find_package(p11chat) (shared and static).
# P11CHAT_TEST_CFLAGS: compiler flags for those programs (the sanitizers
# when BUILD_DIR is a sanitizer build).
set -euo pipefail

build=$(cd "${1:?usage: prefix_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: prefix_test.sh BUILD_DIR SOURCE_DIR}" && pwd)
cflags=${P11CHAT_TEST_CFLAGS:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11chat-prefix.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
expect_file() {
    [ -e "$prefix/$1" ] || fail "$1 is not installed under the prefix"
}

prefix=$tmp/prefix
manifest=$tmp/manifest
# The files installed are taken from the install's own log.
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log" >&2
    fail "cmake --install $build --prefix $prefix failed"
    exit 1
fi
sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$tmp/install.log" >"$manifest"

# 1. Nothing outside the prefix.
[ -s "$manifest" ] || fail "the install log lists no file"
while read -r f; do
    case $f in
    "$prefix"/*) ;;
    *) fail "installed outside the prefix: $f" ;;
    esac
done <"$manifest"

# 2. Each part where it belongs (LIBDIR is lib or lib/<multiarch>).
libdir=$(cd "$prefix" && dirname "$(find . -name 'libp11chat.so.0' | head -n 1)" | sed 's|^\./||')
if [ -z "$libdir" ] || [ "$libdir" = . ]; then
    fail "libp11chat.so.0 is not installed"
fi
for f in bin/p11chat include/p11chat.h "$libdir/libp11chat.so" "$libdir/libp11chat.a" \
    "$libdir/ossl-modules/p11chat.so" "$libdir/pkgconfig/libp11chat.pc" \
    "$libdir/cmake/p11chat/p11chatConfig.cmake" "$libdir/cmake/p11chat/p11chatConfigVersion.cmake" \
    share/doc/p11chat/README.md share/doc/p11chat/usage.md \
    share/doc/p11chat/examples/openssl-p11chat.cnf; do
    expect_file "$f"
done
if [ -e "$build/man/p11chat.1" ]; then
    expect_file share/man/man1/p11chat.1
    expect_file share/man/man7/p11chat-provider.7
else
    echo "prefix_test: the build made no manual pages (no scdoc): not checked"
fi
grep -q "^prefix=$prefix\$" "$prefix/$libdir/pkgconfig/libp11chat.pc" ||
    fail "libp11chat.pc does not have prefix=$prefix: $(grep ^prefix= "$prefix/$libdir/pkgconfig/libp11chat.pc")"

# 3. --version: the OpenSSL library in use, the provider installed with the
# command and the p11-kit it was built with.
p11kit=$(pkg-config --modversion p11-kit-1)
ossl_lib=$(openssl version | sed -n 's/.*(Library: \(.*\))$/\1/p')
[ -n "$ossl_lib" ] || ossl_lib=$(openssl version)
modules=$prefix/$libdir/ossl-modules
out=$("$prefix/bin/p11chat" --version)
while IFS= read -r l; do echo "  --version: $l"; done <<<"$out"
line1=$(echo "$out" | sed -n 1p)
line2=$(echo "$out" | sed -n 2p)
[ "$line1" = "p11chat 0.1.0 (P11C protocol version 1, $ossl_lib)" ] ||
    fail "--version line 1 is '$line1', not the OpenSSL library in use ($ossl_lib)"
case $line2 in
"provider $modules/p11chat.so: p11chat 0.1.0, built with p11-kit $p11kit and OpenSSL "*) ;;
*) fail "--version line 2 is '$line2', not the provider in $modules built with p11-kit $p11kit" ;;
esac

# 4. The installed command loads the installed provider for a token key.
bash "$src/tests/token/mktoken.sh" "$tmp/token" >/dev/null
export SOFTHSM2_CONF=$tmp/token/softhsm2.conf
uri='pkcs11:token=p11chat-test;object=alice'
want=$("$build/apps/p11chat" fingerprint --key "$uri")
got=$("$prefix/bin/p11chat" fingerprint --key "$uri" 2>"$tmp/err") ||
    fail "the installed command cannot read a token key: $(cat "$tmp/err")"
[ "$got" = "$want" ] || fail "fingerprint from the prefix '$got', from the build tree '$want'"

# OPENSSL_MODULES comes first: a directory without the provider fails and
# says where it looked; the build's provider directory works.
status=0
OPENSSL_MODULES=$tmp/no-modules "$prefix/bin/p11chat" fingerprint --key "$uri" >/dev/null 2>"$tmp/err" || status=$?
[ "$status" = 1 ] || fail "with OPENSSL_MODULES=$tmp/no-modules the exit status is $status, not 1"
grep -q "cannot load the p11chat provider from $tmp/no-modules" "$tmp/err" ||
    fail "with OPENSSL_MODULES=$tmp/no-modules: '$(cat "$tmp/err")'"
[ "$(OPENSSL_MODULES=$tmp/no-modules "$prefix/bin/p11chat" --version | sed -n 2p)" = \
    "provider: none loads from $tmp/no-modules (set OPENSSL_MODULES to its directory)" ] ||
    fail "--version does not say that no provider loads from OPENSSL_MODULES"
got=$(OPENSSL_MODULES=$build/provider "$prefix/bin/p11chat" fingerprint --key "$uri" 2>"$tmp/err") ||
    fail "with OPENSSL_MODULES=$build/provider: $(cat "$tmp/err")"
[ "$got" = "$want" ] || fail "with OPENSSL_MODULES=$build/provider: '$got'"
grep -q "^provider $build/provider/p11chat.so: " <<<"$(OPENSSL_MODULES=$build/provider "$prefix/bin/p11chat" --version)" ||
    fail "--version does not name the provider of OPENSSL_MODULES"

# A moved prefix still works: the provider is found relative to the command.
mv "$prefix" "$tmp/moved"
got=$("$tmp/moved/bin/p11chat" fingerprint --key "$uri" 2>"$tmp/err") ||
    fail "after moving the prefix: $(cat "$tmp/err")"
[ "$got" = "$want" ] || fail "after moving the prefix: '$got'"
mv "$tmp/moved" "$prefix"

# 5. Programs built against the installed library.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/k.pem" 2>/dev/null
openssl pkey -in "$tmp/k.pem" -pubout -out "$tmp/k.pub"
want=$("$build/apps/p11chat" fingerprint --key "$tmp/k.pub")

export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
pc_cflags=$(pkg-config --cflags libp11chat)
pc_libs=$(pkg-config --libs libp11chat)
[ "$(pkg-config --modversion libp11chat)" = 0.1.0 ] || fail "pkg-config --modversion libp11chat"
case " $pc_libs " in *" -L$prefix/$libdir "*) ;; *) fail "pkg-config --libs: $pc_libs" ;; esac
# shellcheck disable=SC2086
if cc $cflags -o "$tmp/consumer-pc" "$src/tests/install/consumer/consumer.c" $pc_cflags $pc_libs \
    2>"$tmp/err"; then
    grep -q 'NEEDED.*libp11chat.so.0' <<<"$(readelf -d "$tmp/consumer-pc")" ||
        fail "the pkg-config program does not link libp11chat.so.0"
    got=$(LD_LIBRARY_PATH=$prefix/$libdir "$tmp/consumer-pc" "$tmp/k.pub") ||
        fail "the pkg-config program failed"
    [ "$got" = "$want" ] || fail "the pkg-config program printed '$got', p11chat '$want'"
else
    fail "cannot build a program with pkg-config libp11chat: $(cat "$tmp/err")"
fi

if cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/consumer" >>"$tmp/cmake.log" 2>&1; then
    grep -q "p11chat_DIR:PATH=$prefix/$libdir/cmake/p11chat" "$tmp/consumer/CMakeCache.txt" ||
        fail "find_package(p11chat) did not take the installed package: $(grep p11chat_DIR "$tmp/consumer/CMakeCache.txt")"
    for exe in consumer consumer_static; do
        got=$("$tmp/consumer/$exe" "$tmp/k.pub") || fail "the CMake program $exe failed"
        [ "$got" = "$want" ] || fail "the CMake program $exe printed '$got', p11chat '$want'"
    done
    grep -q 'NEEDED.*libp11chat' <<<"$(readelf -d "$tmp/consumer/consumer_static")" &&
        fail "p11chat::p11chat_static links the shared library"
else
    cat "$tmp/cmake.log" >&2
    fail "cannot build a program with find_package(p11chat)"
fi

if [ "$failures" -ne 0 ]; then
    echo "prefix_test: $failures failure(s)" >&2
    exit 1
fi
echo "prefix_test: installed under $prefix and used from there: all checks passed"
