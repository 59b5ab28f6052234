/**
 * Which pages a dump level leaves out, decided from the kernel's `struct page` array the way
 * makedumpfile 1.7 does (__exclude_unnecessary_pages, docs/dump-levels.md §3): mem_section →
 * each section's mem_map, read through the kernel's page tables, 512 entries at a time, and
 * nothing else of guest RAM. The result is a bitmap over pfns, computed once before the first
 * byte of the dump (the kdump bitmaps come first in the file) and reused for the whole dump.
 */
import { DumpLevelBit, type LinuxMemoryMap } from '../../formats/linux-mm.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { Endian, RamRange } from '../../guest/guest.js';
import type { KernelAddressSpace } from '../../targets/index.js';

export type ExcludedClass = 'cache' | 'cachePrivate' | 'user' | 'free' | 'hwpoison' | 'offline';

/** Pages left out, by class (a compound page or buddy block counts each of its pages). */
export type ExcludedCounts = Record<ExcludedClass, number>;

export interface PageExclusion {
  /** Bit p % 8 of byte p / 8 set: pfn p is left out. Covers [0, maxPfn). */
  readonly excluded: Uint8Array;
  readonly counts: ExcludedCounts;
  /** Bytes of struct page read from the guest. */
  readonly structPageBytes: number;
}

/** makedumpfile's PGMM_CACHED: struct pages are read 512 at a time, and a head at the last of them is read as order 0. */
const PGMM_CACHED = 512;
/** Struct pages read per guest read (a pmemsave or a file read each): 16 of makedumpfile's reads. */
const WINDOW_PFNS = 16 * PGMM_CACHED;
/** SECTION_MAP_MASK: the low bits of section_mem_map are flags (SECTION_MARKED_PRESENT is bit 0). */
const SECTION_FLAG_BITS = 5n;
const SECTION_MARKED_PRESENT = 1n;

interface StructPage {
  readonly flags: bigint;
  readonly mapping: bigint;
  readonly mapcount: number | undefined;
  readonly private: bigint;
  readonly compoundHead: bigint;
}

/** One struct page array window's bytes, decoded entry by entry. */
class StructPageWindow {
  private readonly view: DataView;
  constructor(
    private readonly map: LinuxMemoryMap,
    bytes: Uint8Array,
    readonly firstPfn: number,
    readonly endPfn: number,
    private readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private at(pfn: number): number {
    return (pfn - this.firstPfn) * this.map.page.size;
  }

  page(pfn: number): StructPage {
    const { page } = this.map;
    const base = this.at(pfn);
    const u64 = (offset: number | undefined): bigint =>
      offset === undefined ? 0n : this.view.getBigUint64(base + offset, this.little);
    return {
      flags: u64(page.flags),
      mapping: u64(page.mapping),
      mapcount: page.mapcount === undefined ? undefined : this.view.getUint32(base + page.mapcount, this.little),
      private: u64(page.private),
      compoundHead: u64(page.compoundHead),
    };
  }

  /** A byte of the first tail page (compound_order and compound_dtor are u8 since Linux 4.16). */
  tailByte(pfn: number, offset: number | undefined): number {
    return offset === undefined || pfn + 1 >= this.endPfn ? 0 : this.view.getUint8(this.at(pfn + 1) + offset);
  }
}

const bit = (flags: bigint, number: number | undefined): boolean =>
  number !== undefined && ((flags >> BigInt(number)) & 1n) === 1n;
const u32 = (value: number): number => value >>> 0;

/**
 * The class makedumpfile gives one page, and how many pages from it that class covers (a
 * compound page or buddy block is left out whole); undefined: kept. The order of the tests is
 * makedumpfile's: the first that matches wins.
 */
export function classifyPage(
  map: LinuxMemoryMap,
  level: number,
  page: StructPage,
  compound: { readonly order: number; readonly dtor: number },
): { readonly kind: ExcludedClass; readonly pages: number } | undefined {
  const { numbers } = map;
  const flags = page.flags;
  const slab = bit(flags, numbers.slab);
  const anon = (page.mapping & 1n) === 1n; // PAGE_MAPPING_ANON
  const cache =
    bit(flags, numbers.lru) ||
    ((numbers.swapBacked === undefined || bit(flags, numbers.swapBacked)) && bit(flags, numbers.swapCache));
  const isPrivate = bit(flags, numbers.private);
  const pages = 2 ** compound.order;
  // A compound tail: its head decided for it (and was skipped over when left out).
  if ((page.compoundHead & 1n) === 1n) return undefined;
  if (
    (level & DumpLevelBit.free) !== 0 &&
    page.mapcount !== undefined &&
    numbers.buddyMapcount !== undefined &&
    !slab &&
    page.mapcount === u32(numbers.buddyMapcount)
  ) {
    return { kind: 'free', pages: page.private < 64n ? 2 ** Number(page.private) : Number.MAX_SAFE_INTEGER };
  }
  if ((level & DumpLevelBit.cache) !== 0 && cache && !isPrivate && !anon) return { kind: 'cache', pages };
  if ((level & DumpLevelBit.cachePrivate) !== 0 && cache && !anon) return { kind: isPrivate ? 'cachePrivate' : 'cache', pages };
  const hugetlb =
    (numbers.hugetlbDtor !== undefined && compound.dtor === numbers.hugetlbDtor) ||
    (numbers.freeHugePage !== undefined && BigInt(compound.dtor) === numbers.freeHugePage);
  if ((level & DumpLevelBit.user) !== 0 && (anon || hugetlb)) return { kind: 'user', pages };
  if (bit(flags, numbers.hwpoison)) return { kind: 'hwpoison', pages };
  if (
    numbers.offlineMapcount !== undefined &&
    page.mapcount !== undefined &&
    !slab &&
    page.mapcount === u32(numbers.offlineMapcount)
  ) {
    return { kind: 'offline', pages };
  }
  return undefined;
}

/** Compound order and destructor of a head page (read from its first tail), or order 0. */
function compoundOf(map: LinuxMemoryMap, window: StructPageWindow, pfn: number, flags: bigint): { order: number; dtor: number } {
  const head = map.numbers.headMask !== undefined && (flags & map.numbers.headMask) !== 0n;
  if (!head || pfn % PGMM_CACHED === PGMM_CACHED - 1) return { order: 0, dtor: 0 };
  const order = window.tailByte(pfn, map.page.compoundOrder);
  const dtor = window.tailByte(pfn, map.page.compoundDtor);
  // makedumpfile's "invalid order": too large, or a head not aligned to it.
  return { order: order >= 64 || pfn % 2 ** order !== 0 ? 0 : order, dtor };
}

export interface PageExclusionInput {
  readonly map: LinuxMemoryMap;
  readonly level: number;
  readonly space: KernelAddressSpace;
  /** The RAM the dump keeps: only its pages are classified (makedumpfile's is_in_segs). */
  readonly ram: readonly RamRange[];
  readonly endian: Endian;
  readonly signal?: AbortSignal;
}

export async function discoverPageExclusion(input: PageExclusionInput): Promise<PageExclusion> {
  const { map, ram } = input;
  const maxPfn = pfnsOf(ram, map.pageSize);
  const excluded = new Uint8Array(Math.ceil(maxPfn / 8));
  const counts: ExcludedCounts = { cache: 0, cachePrivate: 0, user: 0, free: 0, hwpoison: 0, offline: 0 };
  const memory = new GuestMemory(ram);
  const reader = new VirtualReader(input.space, memory, input.endian === 'little');
  const inRam = pfnMembership(ram, map.pageSize);
  const perSection = 2 ** (map.sections.sectionSizeBits - Math.log2(map.pageSize));
  let structPageBytes = 0;
  for (let section = 0; section * perSection < maxPfn; section += 1) {
    input.signal?.throwIfAborted();
    const memMap = await sectionMemMap(map, reader, section, perSection);
    if (memMap === undefined) continue;
    const first = section * perSection;
    const end = Math.min(first + perSection, maxPfn);
    let window: StructPageWindow | undefined;
    for (let pfn = first; pfn < end; pfn += 1) {
      if (!inRam(pfn)) continue;
      if (window === undefined || pfn >= window.endPfn) {
        const windowEnd = Math.min(end, (Math.floor(pfn / WINDOW_PFNS) + 1) * WINDOW_PFNS);
        const bytes = new Uint8Array((windowEnd - pfn) * map.page.size);
        await reader.read(memMap + BigInt((pfn - first) * map.page.size), bytes, `struct page of pfn ${hex(BigInt(pfn))}`);
        structPageBytes += bytes.length;
        window = new StructPageWindow(map, bytes, pfn, windowEnd, input.endian === 'little');
      }
      const page = window.page(pfn);
      const verdict = classifyPage(map, input.level, page, compoundOf(map, window, pfn, page.flags));
      if (verdict === undefined) continue;
      const stop = Math.min(maxPfn, pfn + verdict.pages);
      for (let p = pfn; p < stop; p += 1) excluded[p >> 3]! |= 1 << (p & 7);
      counts[verdict.kind] += stop - pfn;
      pfn = stop - 1;
    }
  }
  return { excluded, counts, structPageBytes };
}

/** The pfns up to the end of `ram` (its last page counted whole): the length, in bits, of a pfn bitmap. */
export function pfnsOf(ram: readonly RamRange[], pageSize: number): number {
  const size = BigInt(pageSize);
  const last = ram.at(-1);
  return last === undefined ? 0 : Number((last.start + last.size + size - 1n) / size);
}

/** The mem_map (first struct page) of a section, or undefined where the section has none. */
async function sectionMemMap(
  map: LinuxMemoryMap,
  reader: VirtualReader,
  section: number,
  perSection: number,
): Promise<bigint | undefined> {
  const { sections } = map;
  const perRoot = Math.floor(map.pageSize / sections.sectionSize);
  const root = Math.floor(section / perRoot);
  if (root >= sections.roots) return undefined;
  const rootPointer = await reader.u64(sections.rootsAddress + BigInt(root * 8), 'mem_section root');
  if (rootPointer === 0n) return undefined;
  const entry = rootPointer + BigInt((section % perRoot) * sections.sectionSize + sections.sectionMemMapOffset);
  const coded = await reader.u64(entry, `mem_section[${section}]`);
  if ((coded & SECTION_MARKED_PRESENT) === 0n || coded >> SECTION_FLAG_BITS === 0n) return undefined;
  // sparse_decode_mem_map(): the kernel stores mem_map minus the section's first pfn, in struct pages.
  const memMap = BigInt.asUintN(
    64,
    ((coded >> SECTION_FLAG_BITS) << SECTION_FLAG_BITS) + BigInt(section * perSection) * BigInt(map.page.size),
  );
  return memMap;
}

/** Whether a pfn has a byte of the kept RAM (ranges ascending). */
function pfnMembership(ram: readonly RamRange[], pageSize: number): (pfn: number) => boolean {
  const size = BigInt(pageSize);
  const spans = ram.map((r) => [Number(r.start / size), Number((r.start + r.size + size - 1n) / size)] as const);
  let at = 0;
  return (pfn) => {
    // The walk asks in ascending order, so a cursor suffices.
    while (at < spans.length && spans[at]![1] <= pfn) at += 1;
    const span = spans[at];
    return span !== undefined && span[0] <= pfn && pfn < span[1];
  };
}

/** Kernel virtual memory read page by page through the kernel's tables. */
class VirtualReader {
  constructor(
    private readonly space: KernelAddressSpace,
    private readonly memory: GuestMemory,
    private readonly little: boolean,
  ) {}

  async u64(virtual: bigint, what: string): Promise<bigint> {
    const bytes = new Uint8Array(8);
    await this.read(virtual, bytes, what);
    return new DataView(bytes.buffer).getBigUint64(0, this.little);
  }

  /** Fills `into` from `virtual`; physically contiguous pages are read in one go. */
  async read(virtual: bigint, into: Uint8Array, what: string): Promise<void> {
    const page = 4096n;
    let done = 0;
    while (done < into.length) {
      const at = virtual + BigInt(done);
      const physical = await this.space.physical(at);
      if (physical === undefined) throw unreadable(what, at, 'no page maps it');
      let length = Math.min(into.length - done, Number(page - (at % page)));
      while (done + length < into.length && (await this.space.physical(at + BigInt(length))) === physical + BigInt(length)) {
        length = Math.min(into.length - done, length + 4096);
      }
      if (!(await this.memory.read(physical, into.subarray(done, done + length), 'refuse')))
        throw unreadable(what, at, `physical ${hex(physical)} is not RAM`);
      done += length;
    }
  }
}

function unreadable(what: string, virtual: bigint, why: string): VmdumpError {
  return new VmdumpError(
    'bad-input',
    `cannot read the kernel's ${what} at ${hex(virtual)} (${why}): the memory map VMCOREINFO describes is not in this RAM`,
  );
}
