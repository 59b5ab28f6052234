/**
 * aarch64 on QEMU's `virt` machine (docs/other-arches.md §4.2, §5, §6): per vCPU NT_PRSTATUS,
 * NT_PRFPREG and NT_ARM_SVE (when the CPU has SVE), then VMCOREINFO from the vmcoreinfo device;
 * RAM is the block `mach-virt.ram` at 0x40000000 (flash and ROM blocks are never dumped).
 */
import { EM_AARCH64 } from '../../formats/elf/elf-constants.js';
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import type { RamRange } from '../../guest/guest.js';
import { placeFixedBlocks, statesOf, type DecodedVcpus, type TargetDescription } from '../target.js';
import { aarch64Architecture } from './architecture.js';
import { aarch64LinuxLayout } from './linux.js';
import { aarch64KernelAddressSpace } from './kernel-tables.js';
import { aarch64VcpusFromNotes } from './note-state.js';
import { aarch64VcpuNotes } from './notes.js';
import { aarch64StateFromSection } from './stream-state.js';

export const VIRT_RAM_BASE = 0x4000_0000n;
/** QEMU's kdump block on aarch64: the architecture's largest page (64 KiB), whatever the guest uses (§4.2). */
const QEMU_AARCH64_KDUMP_BLOCK = 65536;

/** NUMBER(PHYS_OFFSET) when the guest gave it, else the lowest RAM address (QEMU's rule, §4.2). */
function physOffset(ram: readonly RamRange[], vmcoreinfo: Uint8Array | undefined): bigint {
  const value = vmcoreinfo === undefined ? undefined : VmcoreinfoText.of(vmcoreinfo).hex('NUMBER(PHYS_OFFSET)');
  return value ?? ram[0]?.start ?? 0n;
}

function decoded(vcpus: DecodedVcpus['vcpus']): DecodedVcpus {
  const first = vcpus[0]?.state;
  return { vcpus, architecture: () => aarch64Architecture(first?.kind === 'aarch64' ? first : undefined) };
}

export const aarch64Target: TargetDescription = {
  name: 'aarch64',
  machines: [EM_AARCH64],
  qemuNames: ['aarch64'],
  describedArchitecture: () => aarch64Architecture(undefined),
  ownsCpuSection: (section) => section.has('env.xregs'),
  vcpusFromStream: (sections) => decoded(sections.map((cpu) => ({ index: cpu.instance, state: aarch64StateFromSection(cpu) }))),
  vcpusFromNotes: (core) => decoded(aarch64VcpusFromNotes(core)),
  placeSavedRam: (stream, label) => placeFixedBlocks(stream, [{ id: 'mach-virt.ram', start: VIRT_RAM_BASE }], 'aarch64', label),
  vcpuNotes: (vcpus, arch) =>
    statesOf(vcpus, 'aarch64').flatMap(({ index, state }) => aarch64VcpuNotes(index, state, arch.endian)),
  qemuWritesGuestNote: true,
  kdump: {
    // 64 KiB blocks with 4 KiB guest pages make makedumpfile refuse the file (§7): only the qemu layout keeps them.
    blockSize: (arch, layout) => (layout === 'qemu' ? QEMU_AARCH64_KDUMP_BLOCK : arch.pageSize),
    unameMachine: (_arch, layout) => (layout === 'qemu' ? 'Unknown' : 'aarch64'),
    physBase: (guest) => physOffset(guest.ram, guest.vmcoreinfo?.desc),
  },
  linuxLayout: aarch64LinuxLayout,
  kernelAddressSpace: aarch64KernelAddressSpace,
};
