#!/bin/sh
# Builds the Linux test guest from Debian packages (needs apt-get, dpkg-deb, cpio, gzip):
#   out/linux/vmlinuz     Debian's cloud kernel, the version linux-image-cloud-amd64 depends on now
#   out/linux/initrd.gz   busybox-static + qemu_fw_cfg.ko + an init that loads it (so
#                         -device vmcoreinfo gets VMCOREINFO), logs a marker line to the kernel
#                         log, prints linux_banner's address and the ready marker on the serial
#                         console, then idles.
# Usage: test-guests/build-linux.sh   (skips the work when out/linux is already complete)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/out/linux"
[ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[ -n "$kernel_pkg" ] || { echo "cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
apt-get download "$kernel_pkg" busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$kernel_pkg" busybox-static >/dev/null; }
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
version=$(ls kernel/lib/modules)
mkdir -p root/bin root/proc root/sys root/dev root/lib/modules
cp busybox/bin/busybox root/bin/busybox
cp "kernel/lib/modules/$version/kernel/drivers/firmware/qemu_fw_cfg.ko" root/lib/modules/
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /lib/modules/qemu_fw_cfg.ko
echo "VMDUMP-KMSG-MARKER hello from the vmdump test guest" > /dev/kmsg
banner=$(grep ' linux_banner$' /proc/kallsyms | cut -d' ' -f1)
echo "VMDUMP-LINUX-BANNER=$banner" > /dev/console
echo "VMDUMP-LINUX-VERSION=$(cat /proc/version)" > /dev/console
echo "VMDUMP-LINUX-READY" > /dev/console
while true; do sleep 3600; done
INIT
chmod +x root/init
mkdir -p "$out"
(cd root && find . | cpio -o -H newc --quiet) | gzip -9 > "$out/initrd.gz.tmp"
cp "kernel/boot/vmlinuz-$version" "$out/vmlinuz.tmp"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$version" > "$out/version"
