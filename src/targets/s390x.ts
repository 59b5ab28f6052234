/**
 * s390x on `s390-ccw-virtio` (other-arches.md §4.3, §5, §6): ten big-endian notes per vCPU and
 * no guest note from QEMU (no fw_cfg); the kernel publishes its VMCOREINFO note's address in
 * the absolute lowcore at 0xe0c. RAM is the block `s390.ram` at 0.
 */
import { EM_S390 } from '../model/elf-constants.js';
import type { Architecture } from '../model/guest.js';
import { s390xVcpuNotes } from './s390x-notes.js';
import { statesOf, type TargetDescription } from './target.js';

export const s390xArchitecture: Architecture = { name: 's390x', machine: EM_S390, elfClass: 64, endian: 'big', pageSize: 4096 };

/** Linux's `struct lowcore` field vmcore_info (arch/s390/include/asm/lowcore.h). */
export const S390_LOWCORE_VMCOREINFO = 0xe0cn;

export const s390xTarget: TargetDescription = {
  name: 's390x',
  machine: EM_S390,
  // QEMU stores pr_pid in host order (bug 2, §4.3); the portable layout writes it big-endian like the rest.
  vcpuNotes: (vcpus, arch, layout) => statesOf(vcpus, 's390x')
    .flatMap(({ index, state }) => s390xVcpuNotes(index, state, arch.endian, layout === 'qemu' ? 'little' : arch.endian)),
  qemuWritesGuestNote: false,
  qemuShstrtabOrder: 'little',
  kdump: {
    blockSize: (arch) => arch.pageSize,
    unameMachine: (_arch, layout) => (layout === 'qemu' ? 'S390X' : 's390x'),
    physBase: () => 0n,
  },
  ramBlocks: [{ id: 's390.ram', start: 0n }],
  vmcoreinfoPointer: S390_LOWCORE_VMCOREINFO,
};
