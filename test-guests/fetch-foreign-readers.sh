#!/bin/sh
# Unpacks Debian's ARCH builds of crash and makedumpfile (and the libraries they load) into a
# private root, to run under qemu-user-static: Debian's x86 builds read only x86 dumps, and
# installing the foreign packages would replace them (docs/other-arches.md §8.5).
#   out/readers-ARCH/root/usr/bin/crash, .../usr/bin/makedumpfile
# Run: qemu-ARCH-static -L out/readers-ARCH/root out/readers-ARCH/root/usr/bin/crash ...
# Needs `dpkg --add-architecture ARCH && apt-get update`. Usage: fetch-foreign-readers.sh arm64|s390x
set -eu
arch=$1
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out/readers-$arch"
[ -x "$out/root/usr/bin/crash" ] && [ -x "$out/root/usr/bin/makedumpfile" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
packages="crash makedumpfile libc6 libgcc-s1 libstdc++6 liblzo2-2 libsnappy1v5 libzstd1 zlib1g libncursesw6 libtinfo6 libdw1 libelf1 libbz2-1.0 liblzma5"
list=""; for p in $packages; do list="$list $p:$arch"; done
# shellcheck disable=SC2086
apt-get download $list >/dev/null 2>&1 || { apt-get update -qq && apt-get download $list >/dev/null; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp/root"
for deb in ./*.deb; do dpkg-deb -x "$deb" "$out.tmp/root"; done
rm -rf "$out" && mv "$out.tmp" "$out"
