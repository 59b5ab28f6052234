/** The aarch64 dump's class, machine and byte order (docs/other-arches.md §4.2). */
import { EM_AARCH64 } from '../../formats/elf/elf-constants.js';
import type { Aarch64CpuState, Architecture } from '../../guest/guest.js';

/** SCTLR_EL1.EE: exceptions taken to EL1 (the kernel) are big-endian (Arm ARM D17.2.118). */
export const SCTLR_EE = 1n << 25n;

/** EM_AARCH64, ELF64; the byte order is the first vCPU's kernel's (SCTLR_EL1.EE), little-endian when unknown. */
export function aarch64Architecture(first: Aarch64CpuState | undefined): Architecture {
  const big = first !== undefined && (first.sctlrEl1 & SCTLR_EE) !== 0n;
  return { name: 'aarch64', machine: EM_AARCH64, elfClass: 64, endian: big ? 'big' : 'little', pageSize: 4096 };
}
