/**
 * Discovery: what a dump's layout needs to know about the guest that only its memory says. It
 * reads guest memory (page tables, VMCOREINFO's pointers), so it runs before planning, which is
 * pure. Each architecture's target does the work (its Linux layout, its page-table walk).
 */
import { VmdumpError } from '../../guest/errors.js';
import type { GuestModel, MemoryMapping } from '../../guest/guest.js';
import { targetFor, type DumpLayout, type LinuxLayoutDecision } from '../../targets/index.js';

/** What the layout was built from: the guest's page tables (--paging), Linux's own map, or physical addresses. */
export type LayoutDiscovery =
  | { readonly kind: 'paging'; readonly mappings: readonly MemoryMapping[] | undefined }
  | { readonly kind: 'linux'; readonly linux: LinuxLayoutDecision }
  | { readonly kind: 'physical' };

/**
 * The guest's page-table mappings (QEMU's paging=true). With `--layout qemu`, an architecture QEMU
 * has no walker for gets QEMU's paging=true file, which equals paging=false (docs/other-arches.md §4.1).
 */
export async function discoverPagingMappings(
  guest: GuestModel,
  layout: DumpLayout,
): Promise<readonly MemoryMapping[] | undefined> {
  const target = targetFor(guest.arch);
  if (target.pagingMappings === undefined) {
    if (layout === 'qemu') return undefined;
    throw new VmdumpError(
      'usage',
      `--paging walks x86 page tables only; for ${guest.arch.name} the default layout already maps the kernel's virtual addresses (and --layout qemu --paging writes QEMU's paging=true file, which equals paging=false)`,
    );
  }
  // QEMU's quirks only where its bytes are the point.
  return target.pagingMappings(guest, { qemuQuirks: layout === 'qemu' });
}

export async function discoverLayout(
  guest: GuestModel,
  options: { readonly layout: DumpLayout; readonly paging: boolean },
): Promise<LayoutDiscovery> {
  if (options.paging) return { kind: 'paging', mappings: await discoverPagingMappings(guest, options.layout) };
  if (options.layout === 'qemu') return { kind: 'physical' };
  return { kind: 'linux', linux: await targetFor(guest.arch).linuxLayout(guest) };
}

/** What the chosen layout is known to suit, for the end-of-run summary. */
export function readersFor(layout: DumpLayout, discovery: LayoutDiscovery): string {
  if (layout === 'qemu') return "QEMU 7.2's own layout: readelf, gdb, crash; not makedumpfile or drgn";
  if (discovery.kind !== 'linux' || discovery.linux.kind === 'unavailable') {
    const why =
      discovery.kind === 'linux' && discovery.linux.kind === 'unavailable'
        ? ` (not the Linux /proc/vmcore layout: ${discovery.linux.reason})`
        : '';
    return `physical layout (virtual = physical addresses): readelf, gdb by physical address${why}`;
  }
  if (discovery.linux.kind === 'identity')
    return 'Linux layout (virtual = physical, as the kernel maps itself) with VMCOREINFO: readelf, gdb, makedumpfile, crash, drgn';
  return 'Linux /proc/vmcore layout: readelf, gdb (kernel virtual addresses), makedumpfile (incl. -d filtering), crash, drgn';
}
