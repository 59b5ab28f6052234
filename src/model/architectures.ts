/**
 * Architectures a description may name. x86 is decided by vCPU mode and RAM layout
 * (x86Architecture); the others are fixed. Register notes exist for x86 only so far, but
 * every entry here dumps memory and VMCOREINFO with the right class and byte order.
 */
import { EM_AARCH64, EM_ARM, EM_PPC, EM_PPC64, EM_RISCV, EM_S390 } from './elf-constants.js';
import type { Architecture } from './guest.js';

export const fixedArchitectures: Readonly<Record<string, Architecture>> = {
  aarch64: { name: 'aarch64', machine: EM_AARCH64, elfClass: 64, endian: 'little', pageSize: 4096 },
  arm: { name: 'arm', machine: EM_ARM, elfClass: 32, endian: 'little', pageSize: 4096 },
  s390x: { name: 's390x', machine: EM_S390, elfClass: 64, endian: 'big', pageSize: 4096 },
  ppc64: { name: 'ppc64', machine: EM_PPC64, elfClass: 64, endian: 'big', pageSize: 65536 },
  ppc64le: { name: 'ppc64le', machine: EM_PPC64, elfClass: 64, endian: 'little', pageSize: 65536 },
  ppc: { name: 'ppc', machine: EM_PPC, elfClass: 32, endian: 'big', pageSize: 4096 },
  riscv64: { name: 'riscv64', machine: EM_RISCV, elfClass: 64, endian: 'little', pageSize: 4096 },
};

export const architectureNames: readonly string[] = ['x86_64', 'i386', ...Object.keys(fixedArchitectures)];
