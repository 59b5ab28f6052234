/**
 * The layout of a kdump-compressed dump, computed from block geometry, vCPUs and notes before
 * any page is read (docs/kdump-compressed.md §1, §10). Everything up to the first page record is
 * fixed here; only the page data offsets wait for the compressor.
 *
 *   0                       disk_dump_header (rest of block 0 stays zero)
 *   B                       kdump_sub_header, then the ELF notes
 *   (1 + sub_hdr_size)·B    1st bitmap, then the 2nd (identical)
 *   + bitmap_blocks·B       page descriptors, 24 bytes per dumpable page
 *   + 24·pages              the shared zero page, then each page's data in pfn order
 */
import { VmdumpError } from '../../guest/errors.js';
import { checkRamRanges, systemRamOf, type ElfNote, type GuestModel, type RamRange } from '../../guest/guest.js';
import type { DumpLayout } from '../../targets/index.js';
import { encodeNotes, noteSize } from '../../formats/elf/elf-encode.js';
import { NOTE_HEADER_SIZE, align4 } from '../../formats/elf/elf-structs.js';
import {
  PAGE_DESCRIPTOR_SIZE,
  codecFlags,
  countSetBits,
  machineOnlyUtsname,
  subHeaderSize,
  type DiskDumpHeader,
  type KdumpCodec,
  type KdumpSubHeader,
  type KdumpTarget,
  type Utsname,
} from '../../formats/kdump/kdump-format.js';
import { targetFor } from '../../targets/index.js';
import { buildNotes } from './notes.js';

/** Consecutive dumpable pfns (a pfn is dumpable when any byte of it is guest RAM, §4). */
export interface PfnRun {
  readonly first: number;
  readonly count: number;
}

/**
 * A dump level applied while dumping (docs/dump-levels.md): the dump keeps the guest's system RAM
 * only, as makedumpfile does reading /proc/vmcore, and leaves out the pages `excluded` marks.
 */
export interface KdumpFilter {
  /** makedumpfile's dump level (0-31), written to the sub-header. */
  readonly level: number;
  /** Bit p set: pfn p is left out (discover/page-classes.ts); absent: no page is. */
  readonly excluded?: Uint8Array;
}

export interface KdumpOptions {
  readonly codec: KdumpCodec;
  /** `qemu`: QEMU 7.2's choices, 16 KiB records and its phys_base reading; `portable` (default): 1 MiB records, the real phys_base. */
  readonly layout?: DumpLayout;
  /** The guest kernel's own utsname (discover/utsname.ts), for the portable layout's header; QEMU's layout writes `machine` alone. */
  readonly utsname?: Utsname;
  readonly filter?: KdumpFilter;
}

export interface KdumpPlan {
  readonly format: 'kdump';
  readonly codec: KdumpCodec;
  readonly layout: DumpLayout;
  readonly target: KdumpTarget;
  readonly blockSize: number;
  readonly header: DiskDumpHeader;
  readonly subHeader: KdumpSubHeader;
  /** The encoded notes, the same bytes as an ELF dump's PT_NOTE payload. */
  readonly notes: Uint8Array;
  /** The 1st bitmap: every pfn with RAM. */
  readonly runs: readonly PfnRun[];
  /** The 2nd bitmap where a dump level leaves pages out (bit p: pfn p is dumped); absent: the same as `runs`. */
  readonly kept?: Uint8Array;
  /** What the sub-header says: 1 (zero pages shared, nothing left out) unless a dump level was asked for. */
  readonly dumpLevel: number;
  /** num_dumpable: one descriptor each, zero pages included. */
  readonly pageCount: number;
  readonly maxMapnr: number;
  readonly bitmapOffset: number;
  /** len_bitmap: the size of each of the two bitmaps. */
  readonly bitmapLength: number;
  readonly descriptorOffset: number;
  readonly zeroPageOffset: number;
  /** The size of the descriptor and data caches, hence of the records written for them. */
  readonly recordBytes: number;
  /** The RAM dumped (a filtered dump's is system RAM only). */
  readonly ram: readonly RamRange[];
  /** Sum of the RAM ranges' sizes. */
  readonly memoryBytes: bigint;
}

/** BUFSIZE_DATA_CACHE in QEMU: four pages (§5). */
const QEMU_CACHE_PAGES = 4;
const PORTABLE_RECORD_BYTES = 1 << 20;

export function planKdump(guest: GuestModel, options: KdumpOptions): KdumpPlan {
  checkRamRanges(guest.ram);
  const { filter } = options;
  const ram = filter === undefined ? guest.ram : systemRamOf(guest.ram);
  const layout = options.layout ?? 'portable';
  const { arch } = guest;
  const choices = targetFor(arch).kdump;
  const blockSize = choices.blockSize(arch, layout);
  const target: KdumpTarget = { elfClass: arch.elfClass, endian: arch.endian };
  const noteList = buildNotes(guest, layout);
  const notes = encodeNotes(noteList, { ...target, machine: arch.machine });
  const runs = pfnRuns(ram, blockSize);
  const last = runs.at(-1);
  if (last === undefined) throw new VmdumpError('bad-input', 'the guest has no RAM to dump');
  const maxMapnr = last.first + last.count;
  const kept = filter === undefined ? undefined : keptBitmap(runs, maxMapnr, filter.excluded);
  const pageCount = kept === undefined ? runs.reduce((sum, run) => sum + run.count, 0) : countSetBits(kept);
  const subHdrSize = Math.ceil((subHeaderSize(arch.elfClass) + notes.length) / blockSize);
  const bitmapLength = Math.ceil(Math.ceil(maxMapnr / 8) / blockSize) * blockSize;
  const bitmapBlocks = (2 * bitmapLength) / blockSize;
  const bitmapOffset = (1 + subHdrSize) * blockSize;
  const descriptorOffset = bitmapOffset + 2 * bitmapLength;
  const offsetNote = blockSize + subHeaderSize(arch.elfClass);
  return {
    format: 'kdump',
    codec: options.codec,
    layout,
    target,
    blockSize,
    notes,
    runs,
    ...(kept === undefined ? {} : { kept }),
    dumpLevel: filter?.level ?? 1,
    pageCount,
    maxMapnr,
    bitmapOffset,
    bitmapLength,
    descriptorOffset,
    zeroPageOffset: descriptorOffset + PAGE_DESCRIPTOR_SIZE * pageCount,
    recordBytes: layout === 'qemu' ? QEMU_CACHE_PAGES * blockSize : PORTABLE_RECORD_BYTES,
    header: {
      utsname:
        layout === 'portable' && options.utsname !== undefined
          ? options.utsname
          : machineOnlyUtsname(choices.unameMachine(arch, layout)),
      status: codecFlags[options.codec],
      blockSize,
      subHdrSize,
      bitmapBlocks,
      maxMapnr: Math.min(maxMapnr, 0xffff_ffff),
      nrCpus: guest.vcpus.length,
    },
    subHeader: {
      physBase: choices.physBase(guest, layout),
      dumpLevel: filter?.level ?? 1,
      ...vmcoreinfoPlace(noteList, offsetNote, notes.length),
      offsetNote: BigInt(offsetNote),
      noteSize: BigInt(notes.length),
      maxMapnr64: BigInt(maxMapnr),
    },
    ram,
    memoryBytes: ram.reduce((sum, range) => sum + range.size, 0n),
  };
}

/** Every pfn with a byte of RAM, merged where ranges share or touch a page. */
export function pfnRuns(ram: readonly RamRange[], blockSize: number): PfnRun[] {
  const size = BigInt(blockSize);
  const runs: { first: number; count: number }[] = [];
  for (const range of ram) {
    const first = Number(range.start / size);
    const end = Number((range.start + range.size + size - 1n) / size);
    const previous = runs.at(-1);
    if (previous !== undefined && first <= previous.first + previous.count) {
      previous.count = Math.max(previous.count, end - previous.first);
    } else {
      runs.push({ first, count: end - first });
    }
  }
  return runs;
}

/** The 2nd bitmap: the RAM pfns of `runs` less the `excluded` ones. */
export function keptBitmap(runs: readonly PfnRun[], maxMapnr: number, excluded: Uint8Array | undefined): Uint8Array {
  const kept = bitmapBytes(runs, 0, Math.ceil(maxMapnr / 8));
  if (excluded !== undefined) {
    for (let i = 0; i < kept.length; i += 1) kept[i]! &= ~(excluded[i] ?? 0);
  }
  return kept;
}

/** The dumped pfns in runs, in pfn order: the 2nd bitmap read back. */
export function* keptRuns(plan: Pick<KdumpPlan, 'runs' | 'kept'>): Generator<PfnRun> {
  const { kept } = plan;
  if (kept === undefined) {
    yield* plan.runs;
    return;
  }
  let first = -1;
  for (let byte = 0; byte < kept.length; byte += 1) {
    const value = kept[byte]!;
    if ((value === 0 && first < 0) || (value === 0xff && first >= 0)) continue;
    for (let b = 0; b < 8; b += 1) {
      const pfn = byte * 8 + b;
      const on = ((value >> b) & 1) === 1;
      if (on && first < 0) first = pfn;
      else if (!on && first >= 0) {
        yield { first, count: pfn - first };
        first = -1;
      }
    }
  }
  if (first >= 0) yield { first, count: kept.length * 8 - first };
}

/** Bytes [start, start + length) of the bitmap: bit p % 8 of byte p / 8 for each pfn p of `runs`. */
export function bitmapBytes(runs: readonly PfnRun[], start: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const low = start * 8;
  const high = (start + length) * 8;
  for (const run of runs) {
    const from = Math.max(run.first, low);
    const to = Math.min(run.first + run.count, high);
    for (let pfn = from; pfn < to;) {
      const bit = pfn - low;
      if (bit % 8 === 0 && pfn + 8 <= to) {
        const whole = Math.floor((to - pfn) / 8);
        bytes.fill(0xff, bit / 8, bit / 8 + whole);
        pfn += whole * 8;
      } else {
        bytes[bit >> 3]! |= 1 << (bit & 7);
        pfn += 1;
      }
    }
  }
  return bytes;
}

/** Where the VMCOREINFO desc lies when it is the last note (§3): after its 12-byte header and padded name. */
function vmcoreinfoPlace(
  notes: readonly ElfNote[],
  offsetNote: number,
  noteBytes: number,
): Pick<KdumpSubHeader, 'offsetVmcoreinfo' | 'sizeVmcoreinfo'> {
  const note = notes.at(-1);
  if (note === undefined || note.name !== 'VMCOREINFO') return { offsetVmcoreinfo: 0n, sizeVmcoreinfo: 0n };
  const descAt =
    offsetNote + noteBytes - noteSize(note) + NOTE_HEADER_SIZE + align4(new TextEncoder().encode(note.name).length + 1);
  return { offsetVmcoreinfo: BigInt(descAt), sizeVmcoreinfo: BigInt(note.desc.length) };
}
