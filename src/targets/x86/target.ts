/**
 * x86 (EM_X86_64 and EM_386; docs/elf-vmcore.md §6-7, docs/kdump-compressed.md §2-3): every
 * vCPU's NT_PRSTATUS, then every vCPU's QEMU CPU-state note. The PC machines' RAM map is
 * data-dependent (pc-memory-map.ts). The only architecture with a page-table walk (--paging).
 */
import { EM_386, EM_X86_64 } from '../../formats/elf/elf-constants.js';
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { VmdumpError } from '../../guest/errors.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { RamRange } from '../../guest/guest.js';
import { statesOf, type DecodedVcpus, type DumpLayout, type TargetDescription } from '../target.js';
import { pagingEnabled, x86Architecture } from './architecture.js';
import { x86KernelAddressSpace, x86KernelOnVcpus, x86LinuxLayout } from './linux.js';
import { x86VcpusFromNotes } from './note-state.js';
import { prstatusI386, prstatusX86_64, qemuCpuState } from './notes.js';
import { planPagingMappings } from './paging.js';
import { mapPcMemory, placePcFlash } from './pc-memory-map.js';
import { vcpuFromSection } from './stream-state.js';

/**
 * NUMBER(phys_base) is decimal and negative under KASLR. QEMU parses it as hex (§3), which
 * breaks makedumpfile on its own output; only the qemu layout repeats that.
 */
function x86PhysBase(vmcoreinfo: Uint8Array | undefined, layout: DumpLayout): bigint {
  if (vmcoreinfo === undefined) return 0n;
  const value = /^(-?)(\S+)$/.exec(VmcoreinfoText.of(vmcoreinfo).string('NUMBER(phys_base)') ?? '');
  if (value === null) return 0n;
  const [, sign, digits] = value as unknown as [string, string, string];
  const pattern = layout === 'qemu' ? /^[0-9a-f]+$/i : /^\d+$/;
  if (!pattern.test(digits)) return 0n;
  const magnitude = BigInt(layout === 'qemu' ? `0x${digits}` : digits);
  return BigInt.asUintN(64, sign === '-' ? -magnitude : magnitude);
}

export const x86Target: TargetDescription = {
  name: 'x86',
  machines: [EM_X86_64, EM_386],
  qemuNames: ['x86_64', 'i386'],
  describedArchitecture: (name, ram) => x86Architecture(name === 'x86_64', ram),
  // Every architecture but x86 is recognised by its own fields; x86 is what is left.
  ownsCpuSection: () => true,
  vcpusFromStream(sections): DecodedVcpus {
    const cpus = sections.map(vcpuFromSection);
    return {
      vcpus: cpus.map((c) => c.vcpu),
      architecture: (ram: readonly RamRange[]) => x86Architecture(cpus[0]?.longMode ?? false, ram),
    };
  },
  vcpusFromNotes: (core) => ({
    vcpus: x86VcpusFromNotes(core),
    architecture: (ram) => x86Architecture(core.machine === EM_X86_64, ram),
  }),
  placeSavedRam: (stream) => mapPcMemory(stream.machineType, stream.blocks, stream.devices),
  placeSavedRomDevices: (stream) => placePcFlash(stream.blocks),
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
    physBase: (guest, layout) => (guest.arch.machine === EM_X86_64 ? x86PhysBase(guest.vmcoreinfo?.desc, layout) : 0n),
  },
  linuxLayout: x86LinuxLayout,
  kernelOnVcpus: x86KernelOnVcpus,
  kernelAddressSpace: x86KernelAddressSpace,
  pagingMappings(guest, rules) {
    // With no vCPU in paging mode QEMU writes one mapping per block at virtual = physical
    // (docs/memory-mapping.md §3.2, step 2): the qemu layout's promise is QEMU's bytes. The default
    // layout refuses instead: there are no page-table addresses to give the readers.
    if (!rules.qemuQuirks && !guest.vcpus.some((v) => pagingEnabled(v.state))) {
      throw new VmdumpError('usage', '--paging needs a vCPU with paging on (CR0.PG); every vCPU here runs without paging');
    }
    return planPagingMappings(guest.ram, guest.vcpus, new GuestMemory(guest.ram, guest.romDevices), rules);
  },
};
