/**
 * A dump level (`-d N`, makedumpfile's meaning, docs/dump-levels.md §1) turned into the pages the
 * dump leaves out, before the first byte: whether the level needs the kernel's memory map at
 * all, whether this guest gives one vmdump can read, and the classification itself.
 */
import { DumpLevelBit, MAX_DUMP_LEVEL, STRUCT_PAGE_LEVELS, linuxMemoryMapOf } from '../../formats/linux-mm.js';
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { VmdumpError } from '../../guest/errors.js';
import { systemRamOf, type GuestModel } from '../../guest/guest.js';
import { targetFor } from '../../targets/index.js';
import { discoverPageExclusion, pfnsOf, type ExcludedCounts } from './page-classes.js';
import { excludeZeroPages } from './zero-pages.js';

export interface DumpLevelDiscovery {
  readonly level: number;
  /** Bit p set: pfn p is left out; absent when the level needs no struct page (0, 1). */
  readonly excluded?: Uint8Array;
  readonly counts?: ExcludedCounts;
  /** Zero pages found by reading every kept page (a filtered ELF dump's pass); absent for kdump. */
  readonly zeroPages?: number;
  readonly structPageBytes: number;
  readonly elapsedMs: number;
}

export function checkDumpLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_DUMP_LEVEL)
    throw new VmdumpError('usage', `the dump level is a sum of 1, 2, 4, 8 and 16 (0 to ${MAX_DUMP_LEVEL}), not ${level}`);
}

/** The classes a level names, for messages. */
export function levelClasses(level: number): string {
  const names: [number, string][] = [
    [DumpLevelBit.zero, 'zero pages'],
    [DumpLevelBit.cache, 'page cache'],
    [DumpLevelBit.cachePrivate, 'page cache with private data'],
    [DumpLevelBit.user, 'user data'],
    [DumpLevelBit.free, 'free pages'],
  ];
  const named = names.filter(([bit]) => (level & bit) !== 0).map(([, name]) => name);
  return named.length === 0 ? 'nothing' : named.join(', ');
}

/** Linux 4.16 made compound_order and compound_dtor bytes; the older layouts are not read here. */
const OLDEST_RELEASE = [4, 16];

export interface DumpLevelOptions {
  readonly signal?: AbortSignal;
  /** Find zero pages by reading them (level bit 1, for an ELF dump: discover/zero-pages.ts). */
  readonly readZeroPages?: boolean;
}

export async function discoverDumpLevel(
  guest: GuestModel,
  level: number,
  options: DumpLevelOptions = {},
): Promise<DumpLevelDiscovery> {
  const started = performance.now();
  const classes = await discoverPageClasses(guest, level, options.signal);
  if (options.readZeroPages !== true || (level & DumpLevelBit.zero) === 0)
    return { ...classes, elapsedMs: performance.now() - started };
  const ram = systemRamOf(guest.ram);
  const pageSize = guest.arch.pageSize;
  const excluded = classes.excluded ?? new Uint8Array(Math.ceil(pfnsOf(ram, pageSize) / 8));
  const zeroPages = await excludeZeroPages(ram, excluded, pageSize, options.signal);
  return { ...classes, excluded, zeroPages, elapsedMs: performance.now() - started };
}

async function discoverPageClasses(
  guest: GuestModel,
  level: number,
  signal: AbortSignal | undefined,
): Promise<Omit<DumpLevelDiscovery, 'elapsedMs'>> {
  checkDumpLevel(level);
  const refuse = (why: string): never => {
    throw new VmdumpError(
      'usage',
      `-d ${level} leaves out ${levelClasses(level & STRUCT_PAGE_LEVELS)}, which is read from the guest kernel's struct page array, but ${why}. ` +
        '-d 1 (zero pages only) needs nothing from the guest',
    );
  };
  const wanted = (level & STRUCT_PAGE_LEVELS) !== 0;
  const desc = guest.vmcoreinfo?.name === 'VMCOREINFO' ? guest.vmcoreinfo.desc : undefined;
  if (desc === undefined) {
    if (wanted) refuse('the VM gave no VMCOREINFO and none was found in its RAM (give it with --vmcoreinfo FILE)');
    return { level, structPageBytes: 0 };
  }
  const found = linuxMemoryMapOf(desc, level);
  // makedumpfile also walks struct page at levels 0 and 1 when the kernel can mark pages hwpoisoned.
  const walk = wanted || (found.kind === 'known' && found.map.numbers.hwpoison !== undefined);
  if (!walk) return { level, structPageBytes: 0 };
  if (found.kind === 'unknown') return refuse(`its VMCOREINFO lacks ${found.missing.join(', ')}`);
  const release = VmcoreinfoText.of(desc).string('OSRELEASE') ?? '';
  const [major = 0, minor = 0] = release.split('.').map((part) => Number.parseInt(part, 10));
  if (major < OLDEST_RELEASE[0]! || (major === OLDEST_RELEASE[0] && minor < OLDEST_RELEASE[1]!))
    refuse(`Linux ${release} lays struct page out as vmdump does not read (it reads 4.16 and later)`);
  const target = targetFor(guest.arch);
  if (target.kernelAddressSpace === undefined)
    return refuse(`vmdump walks the kernel's page tables of x86_64, aarch64 and s390x only, not ${guest.arch.name}`);
  const space = await target.kernelAddressSpace(guest);
  if (space.kind === 'unavailable') return refuse(space.reason);
  const exclusion = await discoverPageExclusion({
    map: found.map,
    level,
    space: space.space,
    ram: systemRamOf(guest.ram),
    endian: guest.arch.endian,
    ...(signal === undefined ? {} : { signal }),
  });
  return { level, ...exclusion };
}
