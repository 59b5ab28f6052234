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
import { checkRamRanges, type ElfNote, type GuestModel, type RamRange } from '../../guest/guest.js';
import type { DumpLayout } from '../../targets/index.js';
import { encodeNotes, noteSize } from '../../formats/elf/elf-encode.js';
import { NOTE_HEADER_SIZE, align4 } from '../../formats/elf/elf-structs.js';
import {
  PAGE_DESCRIPTOR_SIZE,
  codecFlags,
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

export interface KdumpOptions {
  readonly codec: KdumpCodec;
  /** `qemu`: QEMU 7.2's choices, 16 KiB records and its phys_base reading; `portable` (default): 1 MiB records, the real phys_base. */
  readonly layout?: DumpLayout;
  /** The guest kernel's own utsname (discover/utsname.ts), for the portable layout's header; QEMU's layout writes `machine` alone. */
  readonly utsname?: Utsname;
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
  readonly runs: readonly PfnRun[];
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
  readonly ram: readonly RamRange[];
  /** Sum of the RAM ranges' sizes. */
  readonly memoryBytes: bigint;
}

/** BUFSIZE_DATA_CACHE in QEMU: four pages (§5). */
const QEMU_CACHE_PAGES = 4;
const PORTABLE_RECORD_BYTES = 1 << 20;

export function planKdump(guest: GuestModel, options: KdumpOptions): KdumpPlan {
  checkRamRanges(guest.ram);
  const layout = options.layout ?? 'portable';
  const { arch } = guest;
  const choices = targetFor(arch).kdump;
  const blockSize = choices.blockSize(arch, layout);
  const target: KdumpTarget = { elfClass: arch.elfClass, endian: arch.endian };
  const noteList = buildNotes(guest, layout);
  const notes = encodeNotes(noteList, { ...target, machine: arch.machine });
  const runs = pfnRuns(guest.ram, blockSize);
  const last = runs.at(-1);
  if (last === undefined) throw new VmdumpError('bad-input', 'the guest has no RAM to dump');
  const maxMapnr = last.first + last.count;
  const pageCount = runs.reduce((sum, run) => sum + run.count, 0);
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
      dumpLevel: 1,
      ...vmcoreinfoPlace(noteList, offsetNote, notes.length),
      offsetNote: BigInt(offsetNote),
      noteSize: BigInt(notes.length),
      maxMapnr64: BigInt(maxMapnr),
    },
    ram: guest.ram,
    memoryBytes: guest.ram.reduce((sum, range) => sum + range.size, 0n),
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
