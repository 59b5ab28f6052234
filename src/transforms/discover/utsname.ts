/**
 * The guest kernel's own utsname for a kdump header (docs/kdump-compressed.md §2), as
 * makedumpfile copies it: `init_uts_ns.name`, found through VMCOREINFO (SYMBOL(init_uts_ns),
 * OFFSET(uts_namespace.name)) and read from guest memory at the physical address the kernel's
 * layout gives its image (or the same address where the kernel maps itself virtual = physical).
 * It is taken only when it says Linux and agrees with VMCOREINFO's OSRELEASE; otherwise the best
 * the model knows is used, and the summary says which.
 */
import { UTSNAME_FIELDS, UTS_FIELD, decodeUtsname, type Utsname } from '../../formats/kdump/kdump-format.js';
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { GuestModel } from '../../guest/guest.js';
import type { LinuxLayoutDecision } from '../../targets/index.js';

export type UtsnameDiscovery =
  | { readonly source: 'init_uts_ns'; readonly utsname: Utsname }
  /** VMCOREINFO's OSRELEASE, sysname Linux and the dump's machine; no version or nodename. */
  | { readonly source: 'vmcoreinfo'; readonly utsname: Utsname; readonly why: string }
  | { readonly source: 'none'; readonly why: string };

export async function discoverUtsname(guest: GuestModel, linux: LinuxLayoutDecision, machine: string): Promise<UtsnameDiscovery> {
  if (guest.vmcoreinfo?.name !== 'VMCOREINFO') return { source: 'none', why: 'the guest gave no VMCOREINFO' };
  const info = VmcoreinfoText.of(guest.vmcoreinfo.desc);
  const release = info.string('OSRELEASE');
  const fallback = (why: string): UtsnameDiscovery =>
    release === undefined
      ? { source: 'none', why }
      : { source: 'vmcoreinfo', why, utsname: { sysname: 'Linux', nodename: '', release, version: '', machine, domainname: '' } };
  const symbol = info.hex('SYMBOL(init_uts_ns)');
  const offset = info.decimal('OFFSET(uts_namespace.name)');
  if (symbol === undefined || offset === undefined) return fallback('VMCOREINFO names no init_uts_ns');
  const physical = imagePhysical(symbol + offset, linux);
  if (physical === undefined) return fallback(`init_uts_ns is not where the kernel's layout says (${linux.kind})`);
  const bytes = await new GuestMemory(guest.ram).bytes(physical, UTSNAME_FIELDS.length * UTS_FIELD);
  if (bytes === undefined) return fallback('init_uts_ns lies outside guest RAM');
  const utsname = decodeUtsname(bytes);
  if (utsname.sysname !== 'Linux' || (release !== undefined && utsname.release !== release)) {
    return fallback(`init_uts_ns does not read as this kernel's (sysname "${utsname.sysname}", release "${utsname.release}")`);
  }
  return { source: 'init_uts_ns', utsname };
}

/** A kernel-image virtual address → physical, by the kernel's own layout. */
function imagePhysical(virtual: bigint, linux: LinuxLayoutDecision): bigint | undefined {
  if (linux.kind === 'identity') return virtual;
  if (linux.kind !== 'mapped') return undefined;
  const { kernelTextVirtual, kernelTextPhysical, kernelImageEnd } = linux.facts;
  if (virtual < kernelTextVirtual || virtual >= kernelImageEnd) return undefined;
  return virtual - kernelTextVirtual + kernelTextPhysical;
}
