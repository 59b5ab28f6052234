#!/bin/sh
# Fetches the debug vmlinux matching a Linux test guest's kernel (for crash, drgn, gdb) into the
# guest's cache folder (from build-linux.sh), which is printed last:
#   GUEST/vmlinux   from linux-image-<version>-dbg (about 280 MB to download, 590 MB unpacked)
# Usage: test-guests/fetch-vmlinux.sh amd64|arm64|s390x GUEST   (skips the work when present)
set -eu
arch=$1
guest=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"
suffix=""; [ "$arch" = amd64 ] || suffix=":$arch"
hold_lock "vmlinux-$arch"
[ -s "$guest/vmlinux" ] && { echo "$guest"; exit 0; }
version=$(cat "$guest/version")
work=$(mktemp -d "$cache_root/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download "linux-image-$version-dbg$suffix" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "linux-image-$version-dbg$suffix" >/dev/null; }
dpkg-deb --fsys-tarfile linux-image-*-dbg_*.deb | tar -x --wildcards "./usr/lib/debug/boot/vmlinux-$version"
mv "usr/lib/debug/boot/vmlinux-$version" "$guest/vmlinux"
echo "$guest"
