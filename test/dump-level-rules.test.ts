/**
 * The dump-level rules on hand-built memory (docs/dump-levels.md): struct pages written by hand
 * into a "Linux" guest's mem_map (from the 6.1 kernel's VMCOREINFO numbers), the pages each level
 * leaves out worked out from makedumpfile 1.7's rules; the ELF cut worked out by hand; and the
 * refusals, each with the reason a user needs.
 */
import { describe, expect, it } from 'vitest';
import { EM_AARCH64, EM_RISCV } from '../src/formats/elf/elf-constants.js';
import type { Architecture, GuestModel } from '../src/guest/guest.js';
import { physAddr, virtAddr } from '../src/guest/units.js';
import { prepareDump } from '../src/transforms/prepare-dump.js';
import { startDump } from '../src/pipeline/run-dump.js';
import { writableSink } from '../src/sinks/sink.js';
import { PassThrough } from 'node:stream';
import { keptRuns, type KdumpPlan } from '../src/transforms/plan/kdump-plan.js';
import { planFilteredSegments } from '../src/transforms/plan/filtered-segments.js';
import { bufferRange, guestOf, zeroRange } from './helpers/guests.js';
import { DIRECT_MAP, MiB, mapKernel, vmcoreinfoText } from './helpers/linux-like.js';

const PAGE = 4096;
/** Where the hand-built kernel keeps its memory map (physical; the direct map reaches it). */
const MEM_MAP = 40 * MiB;
const ROOTS = 48 * MiB;
const SECTION_ARRAY = ROOTS + PAGE;
const STRUCT_PAGE = 64;
/** The 6.1 kernel's numbers (the test guest's VMCOREINFO). */
const MM_VMCOREINFO = [
  `SYMBOL(mem_section)=${(DIRECT_MAP + BigInt(ROOTS)).toString(16)}`,
  'LENGTH(mem_section)=2048',
  'SIZE(mem_section)=16',
  'OFFSET(mem_section.section_mem_map)=0',
  'NUMBER(SECTION_SIZE_BITS)=27',
  'SIZE(page)=64',
  'OFFSET(page.flags)=0',
  'OFFSET(page.compound_head)=8',
  'OFFSET(page.compound_dtor)=16',
  'OFFSET(page.compound_order)=17',
  'OFFSET(page.mapping)=24',
  'OFFSET(page.private)=40',
  'OFFSET(page._mapcount)=48',
  'NUMBER(PG_lru)=4',
  'NUMBER(PG_private)=13',
  'NUMBER(PG_slab)=9',
  'NUMBER(PG_swapcache)=10',
  'NUMBER(PG_swapbacked)=19',
  'NUMBER(PG_head_mask)=65536',
  'NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129',
  'NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-257',
  'NUMBER(HUGETLB_PAGE_DTOR)=2',
];

const LRU = 1n << 4n;
const PRIVATE = 1n << 13n;
const SLAB = 1n << 9n;
const SWAPCACHE = 1n << 10n;
const SWAPBACKED = 1n << 19n;
const HEAD = 1n << 16n;
const FILE_MAPPING = DIRECT_MAP + 0x123_4000n;
const ANON_MAPPING = DIRECT_MAP + 0x567_8001n;

interface StructPage {
  flags?: bigint;
  mapping?: bigint;
  private?: bigint;
  mapcount?: number;
  compoundHead?: bigint;
  dtor?: number;
  order?: number;
}

/**
 * 64 MiB of "Linux" RAM in two ranges ([0, 640 KiB) and [1 MiB, 64 MiB), as a PC has), with one
 * memory section whose mem_map lies at MEM_MAP, and `pages` written into it.
 */
/** Guest-physical [start, end) of every read, when a test asks for them. */
type ReadSpans = [bigint, bigint][];

function linuxGuest(
  pages: Record<number, StructPage>,
  vmcoreinfo = [...MM_VMCOREINFO],
  release = '6.1.0-test',
  reads?: ReadSpans,
): GuestModel {
  const ram = Buffer.alloc(64 * MiB);
  mapKernel(ram, 0, release);
  ram.writeBigUInt64LE(DIRECT_MAP + BigInt(SECTION_ARRAY), ROOTS);
  // section 0's mem_map, encoded as the kernel does (minus its first pfn, 0) with SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP.
  ram.writeBigUInt64LE(DIRECT_MAP + BigInt(MEM_MAP) + 3n, SECTION_ARRAY);
  for (const [pfn, page] of Object.entries(pages)) {
    const at = MEM_MAP + Number(pfn) * STRUCT_PAGE;
    ram.writeBigUInt64LE(page.flags ?? 0n, at);
    ram.writeBigUInt64LE(page.compoundHead ?? 0n, at + 8);
    ram.writeUInt8(page.dtor ?? 0, at + 16);
    ram.writeUInt8(page.order ?? 0, at + 17);
    ram.writeBigUInt64LE(page.mapping ?? 0n, at + 24);
    ram.writeBigUInt64LE(page.private ?? 0n, at + 40);
    ram.writeUInt32LE(page.mapcount ?? 0xffffffff, at + 48);
  }
  const text = `${vmcoreinfoText(0, release)}${vmcoreinfo.join('\n')}\n`;
  const logged = (start: bigint, bytes: Buffer) => {
    const range = bufferRange(start, bytes);
    return {
      ...range,
      read: async (offset: bigint, into: Uint8Array) => {
        reads?.push([start + offset, start + offset + BigInt(into.length)]);
        await range.read(offset, into);
      },
    };
  };
  return guestOf({
    ram: [logged(0n, ram.subarray(0, 0xa0000)), logged(0x100000n, ram.subarray(0x100000))],
    vmcoreinfo: { name: 'VMCOREINFO', type: 0, desc: new TextEncoder().encode(text) },
  });
}

/** A head page of `order` with its first tail saying so, and its tails pointing at it. */
function compound(pfn: number, order: number, head: StructPage, dtor = 0): Record<number, StructPage> {
  const pages: Record<number, StructPage> = { [pfn]: { ...head, flags: (head.flags ?? 0n) | HEAD } };
  for (let tail = pfn + 1; tail < pfn + 2 ** order; tail += 1) {
    pages[tail] = { compoundHead: DIRECT_MAP + BigInt(MEM_MAP + pfn * STRUCT_PAGE) + 1n, mapping: 0x400n };
  }
  pages[pfn + 1] = { ...pages[pfn + 1], dtor, order };
  return pages;
}

const PAGES: Record<number, StructPage> = {
  0x200: { flags: LRU, mapping: FILE_MAPPING }, // page cache
  0x201: { flags: LRU | PRIVATE, mapping: FILE_MAPPING }, // page cache with buffers
  0x202: { flags: LRU | SWAPBACKED, mapping: ANON_MAPPING }, // anonymous
  0x203: { flags: SWAPCACHE | SWAPBACKED, mapping: FILE_MAPPING }, // swap cache (shmem): cache
  0x204: { flags: SWAPCACHE, mapping: FILE_MAPPING }, // PG_swapcache without PG_swapbacked: another use of the bit
  0x205: { flags: SLAB, mapcount: 0xffffff7f, private: 3n }, // a slab page: never buddy
  0x206: { mapcount: 0xfffffeff }, // logically offline: left out at every walked level
  0x400: { mapcount: 0xffffff7f, private: 3n }, // a free order-3 buddy block: 8 pages
  ...compound(0x600, 9, {}, 2), // a hugetlb page (destructor 2): 512 pages
  ...compound(0x800, 2, { flags: LRU | SWAPBACKED, mapping: ANON_MAPPING }), // an anonymous THP head of order 2
  0x80: { flags: LRU, mapping: FILE_MAPPING }, // below 640 KiB: in RAM
  0xb0: { flags: LRU, mapping: FILE_MAPPING }, // in the hole at 704 KiB: no RAM, not in any bitmap
};

async function keptBy(level: number, guest = linuxGuest(PAGES)): Promise<(pfn: number) => boolean> {
  const prepared = await prepareDump(guest, { format: 'kdump-zlib', dumpLevel: level });
  const plan = prepared.plan as KdumpPlan;
  return (pfn) => ((plan.kept![pfn >> 3]! >> (pfn & 7)) & 1) === 1;
}

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

describe("makedumpfile's page classes from struct page", () => {
  it.each([
    // level, pfns left out (of those written above), pfns kept
    [2, [0x80, 0x200, 0x203, 0x206], [0x201, 0x202, 0x204, 0x205, 0x400, 0x600, 0x800]],
    [4, [0x80, 0x200, 0x201, 0x203, 0x206], [0x202, 0x204, 0x205, 0x400, 0x600, 0x800]],
    [8, [0x202, 0x206, ...range(0x600, 512), ...range(0x800, 4)], [0x200, 0x201, 0x203, 0x204, 0x205, 0x400, 0x804]],
    [16, [...range(0x400, 8), 0x206], [0x200, 0x205, 0x408, 0x600, 0x601, 0x800]],
    [
      31,
      [0x80, 0x200, 0x201, 0x202, 0x203, 0x206, ...range(0x400, 8), ...range(0x600, 512), ...range(0x800, 4)],
      [0x204, 0x205, 0x408, 0x808],
    ],
  ])('-d %i', async (level, out, kept) => {
    const isKept = await keptBy(level);
    expect(out.filter(isKept)).toEqual([]);
    expect(kept.filter((pfn) => !isKept(pfn))).toEqual([]);
    expect(isKept(0xb0)).toBe(false);
  });

  it('the compound tails go with their head, whatever their own fields say', async () => {
    // Tails alone (their head not anonymous) are never left out by their own fields.
    const tails = compound(0x800, 2, { flags: LRU, mapping: FILE_MAPPING });
    for (const pfn of [0x801, 0x802, 0x803]) tails[pfn] = { ...tails[pfn], flags: LRU, mapping: ANON_MAPPING };
    const isKept = await keptBy(8, linuxGuest(tails));
    expect([0x800, 0x801, 0x802, 0x803].map(isKept)).toEqual([true, true, true, true]);
  });

  it('never reads a page it leaves out, from a source that can read anywhere', async () => {
    const reads: ReadSpans = [];
    const prepared = await prepareDump(linuxGuest(PAGES, MM_VMCOREINFO, '6.1.0-test', reads), {
      format: 'kdump-zstd',
      dumpLevel: 31,
    });
    await startDump(prepared, { kind: 'sequential', sink: writableSink(new PassThrough().resume()) }, { threads: 1 }).result;
    const pfnsRead = new Set(reads.flatMap(([from, to]) => range(Number(from / 4096n), Number((to - from + 4095n) / 4096n))));
    const leftOut = [0x80, 0x200, 0x201, 0x202, 0x203, 0x206, ...range(0x400, 8), ...range(0x600, 512), ...range(0x800, 4)];
    expect(leftOut.filter((pfn) => pfnsRead.has(pfn))).toEqual([]);
    // The kept pages were read: the dump is not empty by accident.
    expect([0x204, 0x205, 0x408, 0x808].filter((pfn) => !pfnsRead.has(pfn))).toEqual([]);
  });

  it('keeps only system RAM, and a level without struct page classes needs no VMCOREINFO', async () => {
    const ram = [
      zeroRange(0n, 0xa0000n),
      zeroRange(0x100000n, 0x3f00000n),
      { ...zeroRange(0xfd000000n, 0x1000000n), systemRam: false },
    ];
    const prepared = await prepareDump(guestOf({ ram }), { format: 'kdump-zlib', dumpLevel: 1 });
    const plan = prepared.plan as KdumpPlan;
    expect([...keptRuns(plan)]).toEqual([
      { first: 0, count: 0xa0 },
      { first: 0x100, count: 0x3f00 },
    ]);
    expect([plan.maxMapnr, plan.subHeader.dumpLevel, plan.pageCount]).toEqual([0x4000, 1, 0xa0 + 0x3f00]);
  });
});

describe('refusals', () => {
  const aarch64: Architecture = { name: 'aarch64', machine: EM_AARCH64, elfClass: 64, endian: 'little', pageSize: 4096 };
  const riscv64: Architecture = { name: 'riscv64', machine: EM_RISCV, elfClass: 64, endian: 'little', pageSize: 4096 };
  it.each([
    ['no VMCOREINFO', () => guestOf({ ram: [zeroRange(0n, 0x100000n)] }), 31, /VM gave no VMCOREINFO .*--vmcoreinfo FILE.*-d 1/],
    [
      'a key missing',
      () =>
        linuxGuest(
          {},
          MM_VMCOREINFO.filter((l) => !l.startsWith('SIZE(page)')),
        ),
      2,
      /lacks SIZE\(page\)/,
    ],
    [
      'free pages without the buddy type',
      () =>
        linuxGuest(
          {},
          MM_VMCOREINFO.filter((l) => !l.includes('BUDDY')),
        ),
      16,
      /PAGE_BUDDY_MAPCOUNT_VALUE/,
    ],
    ['a kernel before 4.16', () => linuxGuest({}, MM_VMCOREINFO, '4.15.0-test'), 8, /Linux 4\.15\.0-test .*4\.16 and later/],
    [
      'riscv64, whose tables vmdump does not walk',
      () => ({ ...linuxGuest({}), arch: riscv64 }),
      31,
      /x86_64, aarch64 and s390x only, not riscv64/,
    ],
    ['aarch64 without its tables in VMCOREINFO', () => ({ ...linuxGuest({}), arch: aarch64 }), 2, /lacks swapper_pg_dir/],
  ])('%s', async (_, guest, level, message) => {
    await expect(prepareDump(guest(), { format: 'kdump-zstd', dumpLevel: level })).rejects.toMatchObject({
      code: 'usage',
      message: expect.stringMatching(message),
    });
  });

  it.each([
    [{ dumpLevel: 32 }, /\(0 to 31\), not 32/],
    [{ dumpLevel: 2, layout: 'qemu' as const, format: 'kdump-zlib' as const }, /QEMU's layout writes every page/],
    [{ dumpLevel: 2, paging: true }, /--paging, --begin and --length do not go with it/],
  ])('%o', async (request, message) => {
    await expect(prepareDump(linuxGuest({}), request)).rejects.toMatchObject({
      code: 'usage',
      message: expect.stringMatching(message),
    });
  });
});

describe('the ELF cut makedumpfile -E makes', () => {
  const P = BigInt(PAGE);
  it('splits at 256 left-out pages, writes shorter runs, leaves a trailing run to memsz', () => {
    // 1000 pages: 0-9 kept, 10-19 out (10 < 256: written), 20-29 kept, 30-329 out (300: split),
    // 330-339 kept, 340-999 out (trailing).
    const kept = (pfn: number) => pfn < 10 || (pfn >= 20 && pfn < 30) || (pfn >= 330 && pfn < 340);
    const base = 0x100000n;
    const segments = planFilteredSegments(
      [{ phys: physAddr(base), virt: virtAddr(DIRECT_MAP + base), length: 1000n * P }],
      (pfn) => kept(pfn - 256),
      PAGE,
    );
    expect(segments).toEqual([
      { phys: base, virt: DIRECT_MAP + base, length: 330n * P, filesz: 30n * P, lastOfMapping: false },
      { phys: base + 330n * P, virt: DIRECT_MAP + base + 330n * P, length: 670n * P, filesz: 10n * P, lastOfMapping: true },
    ]);
  });

  it('a mapping that starts with 256 left-out pages gets a segment without bytes first', () => {
    const segments = planFilteredSegments(
      [{ phys: physAddr(0n), virt: virtAddr(0x1000n), length: 300n * P }],
      (pfn) => pfn >= 256,
      PAGE,
    );
    expect(segments).toEqual([
      { phys: 0n, virt: 0x1000n, length: 256n * P, filesz: 0n, lastOfMapping: false },
      { phys: 256n * P, virt: 0x1000n + 256n * P, length: 44n * P, filesz: 44n * P, lastOfMapping: true },
    ]);
  });
});
