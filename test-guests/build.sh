#!/bin/sh
# Builds the bare-metal test guests with the GNU assembler and linker (binutils):
#   tiny32.elf  32-bit protected mode        tiny64.elf  long mode
#   paging32.elf  32-bit paging (4 KiB, 4 MiB PSE)   pagingpae.elf  PAE (4 KiB, 2 MiB, NX)
#   paging4.elf   4-level (4 KiB, 2 MiB, 1 GiB, higher half)   paging5.elf  5-level (LA57)
# ELF32 Multiboot kernels for QEMU's -kernel, and
#   flash32.bin  flash4.bin   64 KiB pflash images (flash.S): 32-bit / 4-level paging mapping the flash
# in the cache folder named by the sources' hash
# (cache.sh), which is printed last. Usage: test-guests/build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"
key=$(cat "$here/tiny.S" "$here/paging.S" "$here/flash.S" "$here/build.sh" | sha256sum | cut -c1-16)
out="$cache_root/bare-$key"
hold_lock bare
if [ ! -s "$out/flash4.bin" ]; then
  build=$(new_build)
  for mode in 32 64; do
    long=0; [ "$mode" = 64 ] && long=1
    as --32 --defsym LONG_MODE=$long -o "$build/tiny$mode.o" "$here/tiny.S"
    ld -m elf_i386 -N --no-warn-rwx-segments -nostdlib -Ttext=0x100000 -e _start -o "$build/tiny$mode.elf" "$build/tiny$mode.o"
  done
  for mode in 1 2 3 4; do
    case $mode in 1) name=paging32;; 2) name=pagingpae;; 3) name=paging4;; 4) name=paging5;; esac
    as --32 --defsym MODE=$mode -o "$build/$name.o" "$here/paging.S"
    ld -m elf_i386 -N --no-warn-rwx-segments -nostdlib -Ttext=0x100000 -e _start -o "$build/$name.elf" "$build/$name.o"
  done
  for mode in 1 3; do
    name=flash32; [ "$mode" = 3 ] && name=flash4
    as --32 --defsym MODE=$mode -o "$build/$name.o" "$here/flash.S"
    ld -m elf_i386 -N --no-warn-rwx-segments -nostdlib -Ttext=0xffff0000 -e 0xffff0000 -o "$build/$name.elf" "$build/$name.o"
    objcopy -O binary "$build/$name.elf" "$build/$name.bin"
    rm -f "$build/$name.elf"
  done
  rm -f "$build"/*.o
  publish "$build" "$out"
fi
echo "$out"
