/**
 * What makes an x86 dump's class and machine, and the architectural bits vmdump reads (Intel SDM
 * vol. 3, §2.5, §2.2.1).
 */
import { EM_386, EM_X86_64 } from '../../formats/elf/elf-constants.js';
import type { Architecture, CpuState, RamRange } from '../../guest/guest.js';
import { U32_MAX } from '../../guest/units.js';

export const X86_PAGE_SIZE = 4096;
/** Architectural x86 control-register bits vmdump looks at (Intel SDM vol. 3, §2.5, §2.2.1). */
export const CR0_PG = 1n << 31n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;

/**
 * x86 class and machine as QEMU chooses them (docs/elf-vmcore.md §6): long mode on the first vCPU
 * gives EM_X86_64/ELF64; otherwise EM_386, ELF64 only if some range's exclusive end is above 0xFFFFFFFF.
 */
export function x86Architecture(firstCpuLongMode: boolean, ram: readonly RamRange[]): Architecture {
  if (firstCpuLongMode) {
    return { name: 'x86_64', machine: EM_X86_64, elfClass: 64, endian: 'little', pageSize: X86_PAGE_SIZE };
  }
  // The exclusive end counts: a BIOS ROM ending exactly at 4 GiB already makes it ELF64 (§6).
  const reachesAbove4G = ram.some((r) => r.start + r.size > U32_MAX);
  return { name: 'i386', machine: EM_386, elfClass: reachesAbove4G ? 64 : 32, endian: 'little', pageSize: X86_PAGE_SIZE };
}

/** The vCPU translates addresses through page tables (CR0.PG). */
export function pagingEnabled(state: CpuState): boolean {
  return state.kind === 'x86' && (state.cr0 & CR0_PG) !== 0n;
}
