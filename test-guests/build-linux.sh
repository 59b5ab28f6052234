#!/bin/sh
# Builds a Linux test guest from Debian packages (needs apt-get, dpkg-deb, cpio, gzip), in the cache
# folder named by the kernel package (cache.sh), which is printed last:
#   vmlinuz    Debian's kernel for ARCH (amd64: the version linux-image-cloud-amd64
#              depends on now; arm64: linux-image-cloud-arm64; s390x: linux-image-s390x)
#   initrd.gz  busybox-static of ARCH + qemu_fw_cfg.ko where the kernel has it (so
#                               -device vmcoreinfo gets VMCOREINFO) + brd.ko + an init that loads it, logs a
#                               marker line to the kernel log, prints linux_banner's address and the
#                               ready marker on the console, then idles. With `vmdump.fill` on the
#                               kernel command line it first fills memory with every class of page
#                               makedumpfile's dump levels tell apart (see fill in the init below).
#   recipe     the hash of this script: an output built by another version of it is rebuilt
#              (the debug vmlinux fetch-vmlinux.sh put beside it is kept).
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
recipe=$(sha256sum "$here/build-linux.sh" | cut -c1-16)
[ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ] && [ -s "$out/version" ] && [ "$(cat "$out/recipe" 2>/dev/null)" = "$recipe" ] && { echo "$out"; exit 0; }
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
brd="kernel/lib/modules/$version/kernel/drivers/block/brd.ko"
[ -f "$brd" ] && cp "$brd" root/lib/modules/
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -f /lib/modules/qemu_fw_cfg.ko ] && insmod /lib/modules/qemu_fw_cfg.ko
echo "VMDUMP-KMSG-MARKER hello from the vmdump test guest" > /dev/kmsg
# vmdump.fill: memory of every class makedumpfile's dump levels tell apart (docs/dump-levels.md):
# page cache with buffer heads (an ext2 file system on a RAM disk, and the disk's own cache),
# page cache without (a tmpfs file), free hugetlb pages (compound, hugetlb destructor), and
# anonymous memory (a shell variable this shell holds while it idles); the rest stays free.
if grep -q 'vmdump.fill' /proc/cmdline && [ -f /lib/modules/brd.ko ]; then
  insmod /lib/modules/brd.ko rd_nr=1 rd_size=49152
  mke2fs -q /dev/ram0 >/dev/null 2>&1
  mkdir -p /mnt && mount -t ext2 /dev/ram0 /mnt
  dd if=/dev/urandom of=/mnt/cache bs=1M count=24 2>/dev/null
  sync
  dd if=/dev/ram0 of=/dev/null bs=1M count=8 2>/dev/null
  dd if=/dev/urandom of=/tmpfs-file bs=1M count=16 2>/dev/null
  echo 4 > /proc/sys/vm/nr_hugepages
  held=$(head -c 12582912 /dev/urandom | base64)
  echo "VMDUMP-LINUX-FILLED ${#held}" > /dev/console
fi
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
echo "$recipe" > "$build/recipe"
# The debug vmlinux of the same kernel stays (a download of hundreds of MB).
[ -s "$out/vmlinux" ] && [ "$(cat "$out/version")" = "$version" ] && mv "$out/vmlinux" "$build/vmlinux"
chmod 755 "$build"
publish "$build" "$out"
echo "$out"
