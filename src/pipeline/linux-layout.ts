/**
 * Decides whether a dump can take Linux's /proc/vmcore layout (elf-vmcore.md §9.1) and gathers
 * what it needs: on x86_64, VMCOREINFO that says Linux and the direct-map base found in the
 * guest's own page tables (so KASLR is handled), which reads guest memory, hence a step before
 * planning; on aarch64, VMCOREINFO alone says it. s390x needs none: 6.1 maps VA = PA.
 */
import { EM_AARCH64, EM_S390, EM_X86_64 } from '../model/elf-constants.js';
import type { GuestModel } from '../model/guest.js';
import { findDirectMapBase } from '../sources/direct-map.js';
import type { LayoutKind } from '../transforms/dump-plan.js';
import type { LinuxMappingFacts } from '../transforms/memory-mapping.js';
import { START_KERNEL_MAP, aarch64LinuxFacts, kernelImagePhysical, parseLinuxVmcoreinfo } from '../transforms/vmcoreinfo.js';

export type LinuxLayoutDecision =
  | { readonly facts: LinuxMappingFacts; readonly osRelease: string }
  /** The physical layout already is the kernel's own (s390x: virtual = physical). */
  | { readonly identity: true }
  | { readonly reason: string };

export async function discoverLinuxLayout(guest: GuestModel): Promise<LinuxLayoutDecision> {
  if (guest.arch.machine === EM_AARCH64) {
    if (guest.vmcoreinfo === undefined || guest.vmcoreinfo.name !== 'VMCOREINFO') return { reason: 'the guest gave no VMCOREINFO' };
    return aarch64LinuxFacts(guest.vmcoreinfo.desc);
  }
  if (guest.arch.machine === EM_S390 && guest.vmcoreinfo?.name === 'VMCOREINFO') return { identity: true };
  if (guest.arch.machine !== EM_X86_64) return { reason: `the guest is ${guest.arch.name}, not x86_64 in long mode` };
  if (guest.vmcoreinfo === undefined || guest.vmcoreinfo.name !== 'VMCOREINFO') return { reason: 'the guest gave no VMCOREINFO' };
  const info = parseLinuxVmcoreinfo(guest.vmcoreinfo.desc);
  if (info === undefined) return { reason: 'VMCOREINFO lacks _stext, init_top_pgt or phys_base' };
  const directMapBase = await findDirectMapBase(guest.ram, kernelImagePhysical(info, info.initTopPgt), info.fiveLevel);
  if (directMapBase === undefined) return { reason: "no direct map of physical 0 in the kernel's page tables" };
  return {
    osRelease: info.osRelease,
    facts: {
      directMapBase, kernelTextVirtual: info.stext, kernelTextPhysical: kernelImagePhysical(info, info.stext),
      kernelImageEnd: START_KERNEL_MAP + info.kernelImageSize,
    },
  };
}

/** What the chosen layout is known to suit, for the end-of-run summary. */
export function readersFor(layout: LayoutKind, linux: boolean | 'identity'): string {
  if (layout === 'qemu') return "QEMU 7.2's own layout: readelf, gdb, crash; not makedumpfile or drgn";
  if (linux === 'identity') return 'Linux layout (virtual = physical, as the kernel maps itself) with VMCOREINFO: readelf, gdb, makedumpfile, crash, drgn';
  if (linux) return 'Linux /proc/vmcore layout: readelf, gdb (kernel virtual addresses), makedumpfile (incl. -d filtering), crash, drgn';
  return 'physical layout (virtual = physical addresses): readelf, gdb by physical address';
}
