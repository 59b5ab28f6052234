/**
 * s390x on `s390-ccw-virtio` (docs/other-arches.md §4.3, §5, §6): ten big-endian notes per vCPU
 * and no guest note from QEMU (no fw_cfg); the kernel publishes its VMCOREINFO note's address in
 * the absolute lowcore at 0xe0c. RAM is the block `s390.ram` at 0. Linux 6.1 maps itself
 * virtual = physical, so the physical layout is the kernel's own.
 */
import { EM_S390 } from '../../formats/elf/elf-constants.js';
import type { Vcpu } from '../../guest/guest.js';
import { placeFixedBlocks, statesOf, type DecodedVcpus, type TargetDescription } from '../target.js';
import { S390_LOWCORE_VMCOREINFO, s390xArchitecture } from './architecture.js';
import { s390xVcpusFromNotes } from './note-state.js';
import { s390xVcpuNotes } from './notes.js';
import { s390xStateFromSection } from './stream-state.js';
import { s390xKernelAddressSpace } from './kernel-tables.js';

const decoded = (vcpus: readonly Vcpu[]): DecodedVcpus => ({ vcpus, architecture: () => s390xArchitecture });

export const s390xTarget: TargetDescription = {
  name: 's390x',
  machines: [EM_S390],
  qemuNames: ['s390x'],
  describedArchitecture: () => s390xArchitecture,
  ownsCpuSection: (section) => section.has('env.psw.mask'),
  vcpusFromStream: (sections) => decoded(sections.map((cpu) => ({ index: cpu.instance, state: s390xStateFromSection(cpu) }))),
  vcpusFromNotes: (core) => decoded(s390xVcpusFromNotes(core)),
  placeSavedRam: (stream, label) => placeFixedBlocks(stream, [{ id: 's390.ram', start: 0n }], 's390x', label),
  vmcoreinfoPointer: S390_LOWCORE_VMCOREINFO,
  // QEMU stores pr_pid in host order (bug 2, §4.3); the portable layout writes it big-endian like the rest.
  vcpuNotes: (vcpus, arch, layout) =>
    statesOf(vcpus, 's390x').flatMap(({ index, state }) =>
      s390xVcpuNotes(index, state, arch.endian, layout === 'qemu' ? 'little' : arch.endian),
    ),
  qemuWritesGuestNote: false,
  qemuShstrtabOrder: 'little',
  kdump: {
    blockSize: (arch) => arch.pageSize,
    unameMachine: (_arch, layout) => (layout === 'qemu' ? 'S390X' : 's390x'),
    physBase: () => 0n,
  },
  linuxLayout: async (guest) =>
    guest.vmcoreinfo?.name === 'VMCOREINFO'
      ? { kind: 'identity' }
      : { kind: 'unavailable', reason: 'the guest gave no VMCOREINFO' },
  kernelAddressSpace: s390xKernelAddressSpace,
};
