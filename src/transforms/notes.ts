/**
 * The PT_NOTE contents, in QEMU's order (elf-vmcore.md §7.1): every vCPU's NT_PRSTATUS, then
 * every vCPU's QEMU CPU-state note, then the guest's VMCOREINFO note.
 */
import { EM_386, EM_X86_64, machineNames } from '../model/elf-constants.js';
import { VmdumpError } from '../model/errors.js';
import type { ElfNote, GuestModel } from '../model/guest.js';
import { prstatusI386, prstatusX86_64, qemuCpuState } from './x86-notes.js';

export function buildNotes(guest: Pick<GuestModel, 'arch' | 'vcpus' | 'vmcoreinfo'>): ElfNote[] {
  const { arch, vcpus } = guest;
  if (vcpus.length > 0 && arch.machine !== EM_X86_64 && arch.machine !== EM_386) {
    const machine = machineNames[arch.machine] ?? `machine ${arch.machine}`;
    throw new VmdumpError('unrepresentable', `vmdump cannot write register notes for ${machine} yet; describe the guest without vCPUs`);
  }
  // The prstatus layout follows the first vCPU's mode, i.e. the machine (§7.2), even in an ELF64 EM_386 file.
  const prstatus = arch.machine === EM_X86_64 ? prstatusX86_64 : prstatusI386;
  const notes: ElfNote[] = [
    ...vcpus.map((vcpu) => prstatus(vcpu, arch.endian)),
    ...vcpus.map((vcpu) => qemuCpuState(vcpu, arch.endian)),
  ];
  if (guest.vmcoreinfo !== undefined) notes.push(guest.vmcoreinfo);
  return notes;
}
