/**
 * x86 (EM_X86_64 and EM_386; elf-vmcore.md §6-7, kdump-compressed.md §2-3): every vCPU's
 * NT_PRSTATUS, then every vCPU's QEMU CPU-state note. The PC machines' RAM map is data-dependent
 * (pc-memory-map.ts), so no fixed block list here.
 */
import { EM_386, EM_X86_64 } from '../model/elf-constants.js';
import { vmcoreinfoField } from '../model/vmcoreinfo-fields.js';
import { statesOf, type TargetDescription, type TargetLayout } from './target.js';
import { prstatusI386, prstatusX86_64, qemuCpuState } from './x86-notes.js';

/**
 * NUMBER(phys_base) is decimal and negative under KASLR. QEMU parses it as hex (§3), which
 * breaks makedumpfile on its own output; only the qemu layout repeats that.
 */
function x86PhysBase(vmcoreinfo: Uint8Array | undefined, layout: TargetLayout): bigint {
  if (vmcoreinfo === undefined) return 0n;
  const value = /^(-?)(\S+)$/.exec(vmcoreinfoField(vmcoreinfo, 'NUMBER(phys_base)') ?? '');
  if (value === null) return 0n;
  const [, sign, digits] = value as unknown as [string, string, string];
  const pattern = layout === 'qemu' ? /^[0-9a-f]+$/i : /^\d+$/;
  if (!pattern.test(digits)) return 0n;
  const magnitude = BigInt(layout === 'qemu' ? `0x${digits}` : digits);
  return BigInt.asUintN(64, sign === '-' ? -magnitude : magnitude);
}

function x86Target(machine: number): TargetDescription {
  return {
    name: machine === EM_X86_64 ? 'x86_64' : 'i386',
    machine,
    vcpuNotes(vcpus, arch) {
      // The prstatus layout follows the first vCPU's mode, i.e. the machine (§7.2), even in an ELF64 EM_386 file.
      const prstatus = arch.machine === EM_X86_64 ? prstatusX86_64 : prstatusI386;
      const states = statesOf(vcpus, 'x86');
      return [
        ...states.map(({ index, state }) => prstatus(index, state, arch.endian)),
        ...states.map(({ state }) => qemuCpuState(state, arch.endian)),
      ];
    },
    qemuWritesGuestNote: true,
    kdump: {
      blockSize: (arch) => arch.pageSize,
      // QEMU writes its build's ELF_MACHINE_UNAME, "x86_64" for qemu-system-x86_64 whatever the guest's mode (§2).
      unameMachine: (arch, layout) => (arch.machine === EM_X86_64 || layout === 'qemu' ? 'x86_64' : 'i686'),
      physBase: (guest, layout) => (machine === EM_X86_64 ? x86PhysBase(guest.vmcoreinfo?.desc, layout) : 0n),
    },
  };
}

export const x86_64Target = x86Target(EM_X86_64);
export const i386Target = x86Target(EM_386);
