/**
 * The PT_NOTE contents, in QEMU's order (docs/elf-vmcore.md §7.1, docs/other-arches.md §4): the target's
 * per-vCPU notes, then the guest's VMCOREINFO note — which the qemu layout leaves out where
 * QEMU 7.2 never writes one (s390x).
 */
import type { ElfNote, GuestModel } from '../../guest/guest.js';
import { targetFor, type DumpLayout } from '../../targets/index.js';

export function buildNotes(guest: Pick<GuestModel, 'arch' | 'vcpus' | 'vmcoreinfo'>, layout: DumpLayout = 'portable'): ElfNote[] {
  const target = targetFor(guest.arch);
  const notes = target.vcpuNotes(guest.vcpus, guest.arch, layout);
  if (guest.vmcoreinfo !== undefined && (layout === 'portable' || target.qemuWritesGuestNote)) notes.push(guest.vmcoreinfo);
  return notes;
}
