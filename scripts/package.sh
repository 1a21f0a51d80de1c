#!/usr/bin/env bash
# Builds the Debian package p11chat_<version>_<arch>.deb:
#
#   bash scripts/package.sh [OUTDIR]        (OUTDIR: default build/)
#
# A /usr build of its own (P11CHAT_PACKAGE_BUILD, default build/package/;
# no tests, no benchmark) installed with DESTDIR into a staging tree:
#   /usr/bin/p11chat                       the command
#   <OpenSSL's MODULESDIR>/p11chat.so      the provider (`openssl version -m`)
#   /usr/lib/<multiarch>/libp11chat.so.*   the library, its .so, .a, .pc and
#   /usr/include/p11chat.h                 CMake package
#   /usr/share/man/man{1,7}/               p11chat(1), p11chat-provider(7)
#   /usr/share/doc/p11chat/                README and guides; examples/: conf/
# The control file comes from packaging/deb/control.in, its Depends from
# dpkg-shlibdeps on the programs and libraries shipped. Prints the path of
# the package. Needs scdoc and dpkg-dev (scripts/setup.sh installs them).
# P11CHAT_JOBS: parallel build jobs (default: the number of processors).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build}
bdir=${P11CHAT_PACKAGE_BUILD:-build/package}
jobs=${P11CHAT_JOBS:-$(nproc)}

bash scripts/setup.sh
for tool in scdoc dpkg-shlibdeps dpkg-deb; do
    command -v "$tool" >/dev/null || {
        echo "package: $tool is missing (bash scripts/setup.sh installs it)" >&2
        exit 1
    }
done

echo "package: building into $bdir" >&2
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DP11CHAT_TESTS=OFF -DP11CHAT_BENCH=OFF >/dev/null
cmake --build "$bdir" -j "$jobs" >/dev/null
bdir=$(cd "$bdir" && pwd)

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$bdir/CMakeCache.txt")
arch=$(dpkg --print-architecture)
[ -n "$version" ] || {
    echo "package: no project version in $bdir/CMakeCache.txt" >&2
    exit 1
}

stage=$bdir/deb-root
rm -rf "$stage"
DESTDIR=$stage cmake --install "$bdir" --strip >/dev/null
# Debian's layout: manual pages compressed; nothing writable by others.
find "$stage/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +
chmod -R u+rwX,go+rX,go-w "$stage"
# The same tree gives the same package: times from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

# The provider must land where OpenSSL looks for it by default.
modulesdir=$(pkg-config --variable=modulesdir libcrypto)
[ -f "$stage$modulesdir/p11chat.so" ] || {
    echo "package: p11chat.so is not in OpenSSL's modules directory $modulesdir" >&2
    exit 1
}

# Dependencies of what is shipped, from the libraries it links.
elves=()
while IFS= read -r f; do
    elves+=("$f")
done < <(find "$stage" -type f \( -name '*.so*' -o -path '*/bin/*' \) -exec sh -c \
    'head -c 4 "$1" | grep -q ELF && echo "$1"' _ {} \;)
shlibdir=$(mktemp -d)
trap 'rm -rf "$shlibdir"' EXIT
mkdir "$shlibdir/debian"
printf 'Source: p11chat\n\nPackage: p11chat\nArchitecture: any\n' >"$shlibdir/debian/control"
depends=$(cd "$shlibdir" && dpkg-shlibdeps -O -l"$stage/usr/lib" "${elves[@]}" 2>"$shlibdir/log" |
    sed -n 's/^shlibs:Depends=//p') || true
if [ -z "$depends" ]; then
    cat "$shlibdir/log" >&2
    echo "package: dpkg-shlibdeps found no dependencies" >&2
    exit 1
fi

soversion=$(cd "$stage/usr" && find . -name 'libp11chat.so.*' -type l -printf '%f\n' |
    sed -n 's/^libp11chat\.so\.\([0-9]*\)$/\1/p')
maintainer="${DEBFULLNAME:-p11chat maintainers} <${DEBEMAIL:-root@localhost}>"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
mkdir -p "$stage/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
    -e "s|@DEPENDS@|$depends|" -e "s|@MAINTAINER@|$maintainer|" \
    packaging/deb/control.in >"$stage/DEBIAN/control"
sed -e "s/@VERSION@/$version/" -e "s/@SOVERSION@/$soversion/" \
    packaging/deb/shlibs.in >"$stage/DEBIAN/shlibs"
cp packaging/deb/triggers "$stage/DEBIAN/triggers"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    xargs md5sum >DEBIAN/md5sums)
chmod 644 "$stage"/DEBIAN/*

mkdir -p "$out"
deb=$(cd "$out" && pwd)/p11chat_${version}_${arch}.deb
find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
