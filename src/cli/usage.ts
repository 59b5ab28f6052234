export const USAGE = `Usage: vmdump raw MACHINE.json [options]
       vmdump saved VM.STATE [options]
       vmdump qmp SOCKET|HOST:PORT [options]
       vmdump verify DUMP

Writes an ELF vmcore (or a kdump-compressed dump) of a guest to a file, or to standard
output when it is not a terminal. The guest comes from:
  raw MACHINE.json   RAM image files described by MACHINE.json (README "Machine description")
  saved VM.STATE     a saved QEMU VM: a migration stream (migrate "exec:cat > VM.STATE")
                     or a virsh save image
  qmp SOCKET         a running QEMU's QMP monitor: the VM is paused while its memory
                     is read and resumed afterwards if it was running (on every path)
vmdump verify DUMP re-reads an ELF core or a kdump file (plain or flattened), checks its
structure (offsets inside the file, note sizes, descriptors, every page decompresses) and
DUMP.sha256 if present; exit 0 when it is sound, 3 with what is wrong.

Options:
  -o, --output FILE     write the dump to FILE ('-' for standard output). FILE appears
                        only when the dump is complete; it is created with mode 0600.
      --format FORMAT   elf (default); kdump-zlib, kdump-lzo, kdump-snappy, kdump-zstd:
                        makedumpfile's compressed format, zero pages shared, pages
                        compressed in parallel. A file gets the plain form; standard
                        output, a pipe or --gzip the flattened form (makedumpfile -R
                        turns it into the plain file; crash reads both)
  -d, --dump-level N    leave out pages as makedumpfile -d N does, while dumping: N is
                        the sum of 1 zero pages, 2 page cache, 4 page cache with private
                        data, 8 user data, 16 free pages (31: all of them). Only the
                        kernel's system RAM is kept; an ELF dump is cut as makedumpfile -E
                        cuts it (its zero pages are found by reading every kept page
                        first). Above 1 it needs the guest's VMCOREINFO and an x86_64,
                        aarch64 or s390x Linux 4.16+ kernel
      --threads N       (kdump) compression threads; default: the machine's cores
      --flattened       (kdump) write the flattened form to FILE too, as QEMU does
      --gzip            gzip the output
      --layout KIND     portable (default): program headers at offset 64, as every
                        reader expects; qemu: QEMU 7.2's dump-guest-memory bytes exactly
      --begin ADDR      dump only guest-physical [ADDR, ADDR+LEN) (QEMU's begin/length)
      --length LEN
      --paging          PT_LOADs at the virtual addresses of the guest's page tables
                        (QEMU's paging=true; x86 guests with paging on)
      --vmcoreinfo FILE the guest kernel's VMCOREINFO (its text, or the ELF note) for the
                        default layout, when the VM gives none; 'none': do not search guest
                        RAM for it (by default vmdump does, and checks what it finds)
      --progress MODE   bar (default on a terminal), json (lines on stderr), none
      --force           replace FILE if it exists (without it vmdump refuses; it never
                        writes through a symbolic link)
      --fsync           make the file durable before it appears
      --no-sparse       write every zero byte of FILE; by default long runs of zeros
                        are left as holes (the file reads the same, takes less disk)
      --checksum sha256 write the output's SHA-256 to FILE.sha256 (sha256sum format),
                        or to stderr for standard output
      --live            (qmp) migrate the running VM into vmdump instead: QEMU pauses it
                        only for the switchover; the dump is written afterwards
  -h, --help            this text

Exit codes: 0 done, 1 internal error, 2 usage, 3 bad input, 4 output failed,
5 dump not representable, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
`;
