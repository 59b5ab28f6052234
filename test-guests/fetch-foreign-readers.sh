#!/bin/sh
# Unpacks Debian's ARCH builds of crash and makedumpfile (and the libraries they load) into a
# private root, to run under qemu-user-static: Debian's x86 builds read only x86 dumps, and
# installing the foreign packages would replace them (docs/other-arches.md §8.5).
#   CACHE/readers-ARCH/root/usr/bin/crash, .../usr/bin/makedumpfile (cache.sh; the folder is printed last)
# Run: qemu-ARCH-static -L CACHE/readers-ARCH/root CACHE/readers-ARCH/root/usr/bin/crash ...
# Needs `dpkg --add-architecture ARCH && apt-get update`. Usage: fetch-foreign-readers.sh arm64|s390x
set -eu
arch=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"
out="$cache_root/readers-$arch"
hold_lock "readers-$arch"
[ -x "$out/root/usr/bin/crash" ] && [ -x "$out/root/usr/bin/makedumpfile" ] && { echo "$out"; exit 0; }
work=$(mktemp -d)
build=$(new_build)
trap 'rm -rf "$work" "$build"' EXIT
cd "$work"
packages="crash makedumpfile libc6 libgcc-s1 libstdc++6 liblzo2-2 libsnappy1v5 libzstd1 zlib1g libncursesw6 libtinfo6 libdw1 libelf1 libbz2-1.0 liblzma5"
list=""; for p in $packages; do list="$list $p:$arch"; done
# shellcheck disable=SC2086
apt-get download $list >/dev/null 2>&1 || { apt-get update -qq && apt-get download $list >/dev/null; }
mkdir -p "$build/root"
for deb in ./*.deb; do dpkg-deb -x "$deb" "$build/root"; done
publish "$build" "$out"
echo "$out"
