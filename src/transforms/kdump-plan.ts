/**
 * The layout of a kdump-compressed dump, computed from block geometry, vCPUs and notes before
 * any page is read (kdump-compressed.md §1, §10). Everything up to the first page record is
 * fixed here; only the page data offsets wait for the compressor.
 *
 *   0                       disk_dump_header (rest of block 0 stays zero)
 *   B                       kdump_sub_header, then the ELF notes
 *   (1 + sub_hdr_size)·B    1st bitmap, then the 2nd (identical)
 *   + bitmap_blocks·B       page descriptors, 24 bytes per dumpable page
 *   + 24·pages              the shared zero page, then each page's data in pfn order
 */
import { EM_386, EM_X86_64 } from '../model/elf-constants.js';
import { VmdumpError } from '../model/errors.js';
import { checkRamRanges, type GuestModel, type RamRange } from '../model/guest.js';
import type { LayoutKind } from './dump-plan.js';
import { encodeNotes, noteSize } from './elf-encode.js';
import { NOTE_HEADER_SIZE, align4 } from './elf-structs.js';
import {
  PAGE_DESCRIPTOR_SIZE, codecFlags, subHeaderSize,
  type DiskDumpHeader, type KdumpCodec, type KdumpSubHeader, type KdumpTarget,
} from './kdump-format.js';
import { buildNotes } from './notes.js';
import { vmcoreinfoField } from './vmcoreinfo.js';

/** Consecutive dumpable pfns (a pfn is dumpable when any byte of it is guest RAM, §4). */
export interface PfnRun {
  readonly first: number;
  readonly count: number;
}

export interface KdumpOptions {
  readonly codec: KdumpCodec;
  /** `qemu`: QEMU 7.2's choices, 16 KiB records and its phys_base reading; `portable` (default): 1 MiB records, the real phys_base. */
  readonly layout?: LayoutKind;
}

export interface KdumpPlan {
  readonly format: 'kdump';
  readonly codec: KdumpCodec;
  readonly layout: LayoutKind;
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
  const blockSize = arch.pageSize;
  const target: KdumpTarget = { elfClass: arch.elfClass, endian: arch.endian };
  const notes = encodeNotes(buildNotes(guest), { ...target, machine: arch.machine });
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
    format: 'kdump', codec: options.codec, layout, target, blockSize, notes, runs, pageCount, maxMapnr,
    bitmapOffset, bitmapLength, descriptorOffset,
    zeroPageOffset: descriptorOffset + PAGE_DESCRIPTOR_SIZE * pageCount,
    recordBytes: layout === 'qemu' ? QEMU_CACHE_PAGES * blockSize : PORTABLE_RECORD_BYTES,
    header: {
      machine: unameMachine(guest, layout), status: codecFlags[options.codec], blockSize, subHdrSize, bitmapBlocks,
      maxMapnr: Math.min(maxMapnr, 0xffff_ffff), nrCpus: guest.vcpus.length,
    },
    subHeader: {
      physBase: physBase(guest, layout), dumpLevel: 1, ...vmcoreinfoPlace(guest, offsetNote, notes.length),
      offsetNote: BigInt(offsetNote), noteSize: BigInt(notes.length), maxMapnr64: BigInt(maxMapnr),
    },
    ram: guest.ram, memoryBytes: guest.ram.reduce((sum, range) => sum + range.size, 0n),
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

/**
 * utsname.machine: QEMU writes its build's ELF_MACHINE_UNAME, "x86_64" for qemu-system-x86_64
 * whatever the guest's mode (§2); crash checks it against its own build. The portable layout
 * names the guest's architecture.
 */
function unameMachine(guest: GuestModel, layout: LayoutKind): string {
  if (guest.arch.machine === EM_X86_64) return 'x86_64';
  if (guest.arch.machine === EM_386) return layout === 'qemu' ? 'x86_64' : 'i686';
  return guest.arch.name;
}

/**
 * NUMBER(phys_base) is decimal and negative under KASLR. QEMU parses it as hex (§3), which
 * breaks makedumpfile on its own output; only the qemu layout repeats that.
 */
function physBase(guest: GuestModel, layout: LayoutKind): bigint {
  if (guest.arch.machine !== EM_X86_64 || guest.vmcoreinfo === undefined) return 0n;
  const value = /^(-?)(\S+)$/.exec(vmcoreinfoField(guest.vmcoreinfo.desc, 'NUMBER(phys_base)') ?? '');
  if (value === null) return 0n;
  const [, sign, digits] = value as unknown as [string, string, string];
  const pattern = layout === 'qemu' ? /^[0-9a-f]+$/i : /^\d+$/;
  if (!pattern.test(digits)) return 0n;
  const magnitude = BigInt(layout === 'qemu' ? `0x${digits}` : digits);
  return BigInt.asUintN(64, sign === '-' ? -magnitude : magnitude);
}

/** Where the VMCOREINFO desc lies when it is the last note (§3): after its 12-byte header and padded name. */
function vmcoreinfoPlace(guest: GuestModel, offsetNote: number, noteBytes: number): Pick<KdumpSubHeader, 'offsetVmcoreinfo' | 'sizeVmcoreinfo'> {
  const note = guest.vmcoreinfo;
  if (note === undefined || note.name !== 'VMCOREINFO') return { offsetVmcoreinfo: 0n, sizeVmcoreinfo: 0n };
  const descAt = offsetNote + noteBytes - noteSize(note) + NOTE_HEADER_SIZE + align4(new TextEncoder().encode(note.name).length + 1);
  return { offsetVmcoreinfo: BigInt(descAt), sizeVmcoreinfo: BigInt(note.desc.length) };
}
