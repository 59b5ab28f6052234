/**
 * aarch64 on QEMU's `virt` machine (other-arches.md §4.2, §5, §6): per vCPU NT_PRSTATUS,
 * NT_PRFPREG and NT_ARM_SVE (when the CPU has SVE), then VMCOREINFO from the vmcoreinfo device;
 * RAM is the block `mach-virt.ram` at 0x40000000 (flash and ROM blocks are never dumped).
 */
import { EM_AARCH64 } from '../model/elf-constants.js';
import type { Aarch64CpuState, Architecture, RamRange } from '../model/guest.js';
import { vmcoreinfoField } from '../model/vmcoreinfo-fields.js';
import { aarch64VcpuNotes } from './aarch64-notes.js';
import { statesOf, type TargetDescription } from './target.js';

export const VIRT_RAM_BASE = 0x4000_0000n;
/** SCTLR_EL1.EE: exceptions taken to EL1 (the kernel) are big-endian (Arm ARM D17.2.118). */
export const SCTLR_EE = 1n << 25n;
/** QEMU's kdump block on aarch64: the architecture's largest page (64 KiB), whatever the guest uses (§4.2). */
const QEMU_AARCH64_KDUMP_BLOCK = 65536;

/** EM_AARCH64, ELF64; the byte order is the first vCPU's kernel's (SCTLR_EL1.EE), little-endian when unknown. */
export function aarch64Architecture(first: Aarch64CpuState | undefined): Architecture {
  const big = first !== undefined && (first.sctlrEl1 & SCTLR_EE) !== 0n;
  return { name: 'aarch64', machine: EM_AARCH64, elfClass: 64, endian: big ? 'big' : 'little', pageSize: 4096 };
}

/** NUMBER(PHYS_OFFSET) (hex, "0x…") when the guest gave it, else the lowest RAM address (QEMU's rule, §4.2). */
function physOffset(ram: readonly RamRange[], vmcoreinfo: Uint8Array | undefined): bigint {
  const value = vmcoreinfo === undefined ? undefined : vmcoreinfoField(vmcoreinfo, 'NUMBER(PHYS_OFFSET)');
  if (value !== undefined && /^0x[0-9a-f]+$/i.test(value)) return BigInt(value);
  return ram[0]?.start ?? 0n;
}

export const aarch64Target: TargetDescription = {
  name: 'aarch64',
  machine: EM_AARCH64,
  vcpuNotes: (vcpus, arch) => statesOf(vcpus, 'aarch64').flatMap(({ index, state }) => aarch64VcpuNotes(index, state, arch.endian)),
  qemuWritesGuestNote: true,
  kdump: {
    // 64 KiB blocks with 4 KiB guest pages make makedumpfile refuse the file (§7): only the qemu layout keeps them.
    blockSize: (arch, layout) => (layout === 'qemu' ? QEMU_AARCH64_KDUMP_BLOCK : arch.pageSize),
    unameMachine: (_arch, layout) => (layout === 'qemu' ? 'Unknown' : 'aarch64'),
    physBase: (guest) => physOffset(guest.ram, guest.vmcoreinfo?.desc),
  },
  ramBlocks: [{ id: 'mach-virt.ram', start: VIRT_RAM_BASE }],
};
