/**
 * The one entry point from a guest and a request to a plan: discovery (which reads guest memory:
 * page tables, the Linux kernel's layout), then pure planning of every record and offset. The
 * CLI and the library both come through here, so the same request gives the same bytes.
 */
import { VmdumpError } from '../guest/errors.js';
import { systemRamOf, type GuestModel } from '../guest/guest.js';
import type { KdumpCodec } from '../formats/kdump/kdump-format.js';
import { targetFor, type DumpLayout } from '../targets/index.js';
import { discoverUtsname, type UtsnameDiscovery } from './discover/utsname.js';
import { discoverLayout, readersFor, type LayoutDiscovery } from './discover/discover.js';
import { planDump, type DumpPlan } from './plan/dump-plan.js';
import { keptBitmap, pfnRuns, planKdump, type KdumpPlan } from './plan/kdump-plan.js';
import { discoverVmcoreinfo, type VmcoreinfoChoice, type VmcoreinfoDiscovery } from './discover/vmcoreinfo.js';
import type { MemoryFilter } from './plan/memory-mapping.js';
import { checkDumpLevel, discoverDumpLevel, type DumpLevelDiscovery } from './discover/dump-level.js';

/** `elf` (default) or makedumpfile's kdump-compressed format with one page codec. */
export type DumpFormat = 'elf' | `kdump-${KdumpCodec}`;

export interface DumpRequest {
  /** Default `elf`. */
  readonly format?: DumpFormat;
  /** Default `portable`: the Linux kernel's own layout when the guest says it is Linux; `qemu`: QEMU's bytes. */
  readonly layout?: DumpLayout;
  /** ELF only: QEMU's begin/length. */
  readonly filter?: MemoryFilter;
  /** ELF only: virtual addresses from the guest's page tables (QEMU's paging=true). */
  readonly paging?: boolean;
  /** Default `search`: the VM's VMCOREINFO, else a copy found in guest RAM (the default layout only). */
  readonly vmcoreinfo?: VmcoreinfoChoice;
  /**
   * makedumpfile's dump level (0-31, docs/dump-levels.md): the pages of these classes are left
   * out while dumping, and only the kernel's system RAM is kept. Absent: every page of RAM.
   */
  readonly dumpLevel?: number;
}

export interface PrepareOptions {
  /** Stops discovery (the search of guest RAM reads all of it). */
  readonly signal?: AbortSignal;
}

/** A plan and what it was discovered from; nothing has been written yet. */
export type PreparedDump =
  | {
      readonly format: 'elf';
      readonly plan: DumpPlan;
      readonly discovery: LayoutDiscovery;
      readonly vmcoreinfo: VmcoreinfoDiscovery;
      /** The pages a dump level left out, when one was asked for. */
      readonly dumpLevel: DumpLevelDiscovery | undefined;
      readonly readers: string;
    }
  | {
      readonly format: 'kdump';
      readonly plan: KdumpPlan;
      readonly discovery: LayoutDiscovery;
      readonly vmcoreinfo: VmcoreinfoDiscovery;
      /** Where the header's utsname came from (the portable layout; QEMU's has `machine` alone). */
      readonly utsname: UtsnameDiscovery | undefined;
      /** The pages a dump level left out, when one was asked for. */
      readonly dumpLevel: DumpLevelDiscovery | undefined;
      readonly readers: string;
    };

export function kdumpCodecOf(format: DumpFormat): KdumpCodec | undefined {
  return format === 'elf' ? undefined : (format.slice('kdump-'.length) as KdumpCodec);
}

export async function prepareDump(
  vm: GuestModel,
  request: DumpRequest = {},
  options: PrepareOptions = {},
): Promise<PreparedDump> {
  const layout = request.layout ?? 'portable';
  const codec = kdumpCodecOf(request.format ?? 'elf');
  if (codec !== undefined && (request.filter !== undefined || request.paging === true)) {
    throw new VmdumpError(
      'usage',
      `--format ${request.format} writes physical memory whole; --paging, --begin and --length go with --format elf`,
    );
  }
  if (request.dumpLevel !== undefined) {
    checkDumpLevel(request.dumpLevel);
    if (layout === 'qemu') throw new VmdumpError('usage', "-d filters as makedumpfile does; QEMU's layout writes every page");
    if (request.paging === true || request.filter !== undefined)
      throw new VmdumpError(
        'usage',
        "-d writes the kernel's own layout as makedumpfile does; --paging, --begin and --length do not go with it",
      );
  }
  const { guest, discovery: vmcoreinfo } = await discoverVmcoreinfo(vm, request.vmcoreinfo ?? 'search', layout, options.signal);
  if (codec !== undefined) {
    // A kdump file holds physical pages whole; its notes carry VMCOREINFO for the readers, and its
    // header the kernel's utsname, which libkdumpfile (drgn) needs.
    const discovery: LayoutDiscovery = { kind: 'physical' };
    const target = targetFor(guest.arch);
    const utsname =
      layout === 'portable'
        ? await discoverUtsname(guest, await target.linuxLayout(guest), target.kdump.unameMachine(guest.arch, layout))
        : undefined;
    const dumpLevel =
      request.dumpLevel === undefined ? undefined : await discoverDumpLevel(guest, request.dumpLevel, signalOf(options));
    const plan = planKdump(guest, {
      codec,
      layout,
      ...(utsname !== undefined && 'utsname' in utsname ? { utsname: utsname.utsname } : {}),
      ...(dumpLevel === undefined
        ? {}
        : { filter: { level: dumpLevel.level, ...(dumpLevel.excluded === undefined ? {} : { excluded: dumpLevel.excluded }) } }),
    });
    return { format: 'kdump', plan, discovery, vmcoreinfo, utsname, dumpLevel, readers: kdumpReadersFor(plan) };
  }
  const discovery = await discoverLayout(guest, { layout, paging: request.paging ?? false });
  const dumpLevel =
    request.dumpLevel === undefined
      ? undefined
      : await discoverDumpLevel(guest, request.dumpLevel, { ...signalOf(options), readZeroPages: true });
  const plan = planDump(guest, {
    layout,
    ...(dumpLevel === undefined ? {} : { kept: keptPagesOf(guest, dumpLevel) }),
    ...(request.filter === undefined ? {} : { filter: request.filter }),
    ...(discovery.kind === 'paging' && discovery.mappings !== undefined ? { mappings: discovery.mappings } : {}),
    ...(discovery.kind === 'linux' && discovery.linux.kind === 'mapped' ? { linux: discovery.linux.facts } : {}),
  });
  return { format: 'elf', plan, discovery, vmcoreinfo, dumpLevel, readers: readersFor(layout, discovery) };
}

function signalOf(options: PrepareOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
}

/** The pages an ELF dump at this level keeps: system RAM less what the level left out. */
function keptPagesOf(guest: GuestModel, found: DumpLevelDiscovery): { bitmap: Uint8Array; pageSize: number } {
  const pageSize = guest.arch.pageSize;
  const runs = pfnRuns(systemRamOf(guest.ram), pageSize);
  const last = runs.at(-1);
  const maxPfn = last === undefined ? 0 : last.first + last.count;
  return { bitmap: keptBitmap(runs, maxPfn, found.excluded), pageSize };
}

/** What a kdump file of this plan opens in: drgn (libkdumpfile) needs sysname, release, version and machine. */
function kdumpReadersFor(plan: KdumpPlan): string {
  const { sysname, release, version, machine } = plan.header.utsname;
  const drgn = [sysname, release, version, machine].every((field) => field !== '');
  return drgn
    ? 'crash, makedumpfile and drgn (libkdumpfile)'
    : 'crash and makedumpfile (not drgn: its header has no full utsname)';
}
