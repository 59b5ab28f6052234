#!/bin/sh
# A Debian 13 (trixie) root holding Debian's qemu-system-x86 (QEMU 10.0), made by debootstrap from
# Debian's packages, in the cache folder named by this script's hash (cache.sh), whose root/ is
# printed last. The tests start QEMU 10 through chroot into it (scripts/qemu-harness.ts), beside the
# host's QEMU 7.2. Needs root (debootstrap, chroot) and debootstrap (.ci/run installs it).
# Usage: test-guests/qemu10-root.sh   (skips the work when the root is complete)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"
key=$(sha256sum < "$here/qemu10-root.sh" | cut -c1-16)
out="$cache_root/qemu10-trixie-$key"
hold_lock qemu10
[ -x "$out/root/usr/bin/qemu-system-x86_64" ] && { echo "$out/root"; exit 0; }
build=$(new_build)
trap 'rm -rf "$build"' EXIT
debootstrap --variant=minbase --include=qemu-system-x86 trixie "$build/root" http://deb.debian.org/debian >"$build/debootstrap.log" 2>&1 ||
  { tail -20 "$build/debootstrap.log" >&2; exit 1; }
chroot "$build/root" qemu-system-x86_64 --version | head -n 1 > "$build/version"
publish "$build" "$out"
trap - EXIT
echo "$out/root"
