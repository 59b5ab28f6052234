#!/bin/sh
# Builds the bare-metal test guests with the GNU assembler and linker (binutils):
#   out/tiny32.elf  32-bit protected mode        out/tiny64.elf  long mode
#   out/paging32.elf  32-bit paging (4 KiB, 4 MiB PSE)   out/pagingpae.elf  PAE (4 KiB, 2 MiB, NX)
#   out/paging4.elf   4-level (4 KiB, 2 MiB, 1 GiB, higher half)   out/paging5.elf  5-level (LA57)
# Both are ELF32 Multiboot kernels for QEMU's -kernel. Usage: test-guests/build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/out"
for mode in 32 64; do
  long=0; [ "$mode" = 64 ] && long=1
  as --32 --defsym LONG_MODE=$long -o "$here/out/tiny$mode.o" "$here/tiny.S"
  ld -m elf_i386 -N --no-warn-rwx-segments -nostdlib -Ttext=0x100000 -e _start -o "$here/out/tiny$mode.elf" "$here/out/tiny$mode.o"
  rm "$here/out/tiny$mode.o"
done
for mode in 1 2 3 4; do
  case $mode in 1) name=paging32;; 2) name=pagingpae;; 3) name=paging4;; 4) name=paging5;; esac
  as --32 --defsym MODE=$mode -o "$here/out/$name.o" "$here/paging.S"
  ld -m elf_i386 -N --no-warn-rwx-segments -nostdlib -Ttext=0x100000 -e _start -o "$here/out/$name.elf" "$here/out/$name.o"
  rm "$here/out/$name.o"
done
