#!/bin/sh
# Builds a Linux test guest from Debian packages (needs apt-get, dpkg-deb, cpio, gzip), in the cache
# folder named by the kernel package (cache.sh), which is printed last:
#   vmlinuz    Debian's kernel for ARCH (amd64: the version linux-image-cloud-amd64
#              depends on now; arm64: linux-image-cloud-arm64; s390x: linux-image-s390x)
#   initrd.gz  busybox-static of ARCH + qemu_fw_cfg.ko where the kernel has it (so
#                               -device vmcoreinfo gets VMCOREINFO) + an init that loads it, logs a
#                               marker line to the kernel log, prints linux_banner's address and the
#                               ready marker on the console, then idles.
# Foreign architectures need `dpkg --add-architecture ARCH && apt-get update` first (.ci/run does it).
# Usage: test-guests/build-linux.sh [amd64|arm64|s390x]   (skips the work when the output is complete)
set -eu
arch=${1:-amd64}
case $arch in
  amd64) meta=linux-image-cloud-amd64 ;;
  arm64) meta=linux-image-cloud-arm64 ;;
  s390x) meta=linux-image-s390x ;;
  *) echo "unknown architecture $arch" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"
suffix=""; [ "$arch" = amd64 ] || suffix=":$arch"
kernel_pkg=$(apt-cache depends "$meta$suffix" | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*$/\1/p' | head -n 1)
[ -n "$kernel_pkg" ] || { echo "cannot resolve $meta$suffix (dpkg --add-architecture $arch; apt-get update)" >&2; exit 1; }
out="$cache_root/$kernel_pkg-$arch"
hold_lock "linux-$arch"
[ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ] && [ -s "$out/version" ] && { echo "$out"; exit 0; }
work=$(mktemp -d)
build=$(new_build)
trap 'rm -rf "$work" "$build"' EXIT
cd "$work"
apt-get download "$kernel_pkg$suffix" "busybox-static$suffix" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$kernel_pkg$suffix" "busybox-static$suffix" >/dev/null; }
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
version=$(ls kernel/lib/modules)
mkdir -p root/bin root/proc root/sys root/dev root/lib/modules
cp busybox/bin/busybox root/bin/busybox
fw_cfg="kernel/lib/modules/$version/kernel/drivers/firmware/qemu_fw_cfg.ko"
[ -f "$fw_cfg" ] && cp "$fw_cfg" root/lib/modules/
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -f /lib/modules/qemu_fw_cfg.ko ] && insmod /lib/modules/qemu_fw_cfg.ko
echo "VMDUMP-KMSG-MARKER hello from the vmdump test guest" > /dev/kmsg
banner=$(grep ' linux_banner$' /proc/kallsyms | cut -d' ' -f1)
echo "VMDUMP-LINUX-BANNER=$banner" > /dev/console
echo "VMDUMP-LINUX-VERSION=$(cat /proc/version)" > /dev/console
echo "VMDUMP-LINUX-READY" > /dev/console
while true; do sleep 3600; done
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc --quiet) | gzip -9 > "$build/initrd.gz"
cp "kernel/boot/vmlinuz-$version" "$build/vmlinuz"
echo "$version" > "$build/version"
publish "$build" "$out"
echo "$out"
