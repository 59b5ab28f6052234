/** The s390x dump's class, machine and byte order, and where the kernel publishes VMCOREINFO (docs/other-arches.md §4.3). */
import { EM_S390 } from '../../formats/elf/elf-constants.js';
import type { Architecture } from '../../guest/guest.js';

export const s390xArchitecture: Architecture = { name: 's390x', machine: EM_S390, elfClass: 64, endian: 'big', pageSize: 4096 };

/** Linux's `struct lowcore` field vmcore_info (arch/s390/include/asm/lowcore.h). */
export const S390_LOWCORE_VMCOREINFO = 0xe0cn;
