#!/bin/sh
# Fetches the debug vmlinux matching a Linux test guest's kernel (for crash, drgn, gdb):
#   out/linux[-ARCH]/vmlinux   from linux-image-<version>-dbg (about 280 MB to download, 590 MB unpacked)
# Usage: test-guests/fetch-vmlinux.sh [amd64|arm64|s390x]   (after build-linux.sh; skips the work when present)
set -eu
arch=${1:-amd64}
out_name=linux; suffix=""
[ "$arch" = amd64 ] || { out_name="linux-$arch"; suffix=":$arch"; }
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out/$out_name"
[ -s "$out/vmlinux" ] && exit 0
version=$(cat "$out/version")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download "linux-image-$version-dbg$suffix" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "linux-image-$version-dbg$suffix" >/dev/null; }
dpkg-deb --fsys-tarfile linux-image-*-dbg_*.deb | tar -x --wildcards "./usr/lib/debug/boot/vmlinux-$version"
mv "usr/lib/debug/boot/vmlinux-$version" "$out/vmlinux.tmp"
mv "$out/vmlinux.tmp" "$out/vmlinux"
