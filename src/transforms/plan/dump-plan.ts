/**
 * The plan of a dump: every record with its file offset and size, and the exact total,
 * computed before the first byte is written. Records hold values; encoding is separate.
 *
 * `qemu` layout (QEMU 7.2, docs/elf-vmcore.md §1):      `portable` layout (docs/elf-vmcore.md §9.1):
 *   0      ELF header (e_ehsize 8)                  0      ELF header (correct e_ehsize)
 *   64/52  section headers: NULL, .shstrtab         64/52  program headers: PT_NOTE, PT_LOAD...
 *   +      program headers: PT_NOTE, PT_LOAD...     +      notes
 *   +      notes                                     +      memory payload
 *   +      memory payload                            +      [section header 0, only for PN_XNUM]
 *   +      .shstrtab bytes (11)
 */
import { PN_XNUM, PT_LOAD, PT_NOTE, SHT_NULL, SHT_STRTAB, ET_CORE, EV_CURRENT } from '../../formats/elf/elf-constants.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import {
  checkRamRanges,
  systemRamOf,
  type RamRange,
  type ElfClass,
  type ElfNote,
  type Endian,
  type GuestModel,
  type MemoryMapping,
} from '../../guest/guest.js';
import { targetFor, type DumpLayout, type LinuxMappingFacts } from '../../targets/index.js';
import { U32_MAX, fileOffset, type FileOffset } from '../../guest/units.js';
import { noteSize } from '../../formats/elf/elf-encode.js';
import { buildNotes } from './notes.js';
import { planFilteredSegments, type FilteredSegment } from './filtered-segments.js';
import {
  NOT_IN_FILE,
  elfHeaderSize,
  programHeaderSize,
  sectionHeaderSize,
  type ElfHeader,
  type ElfTarget,
  type ProgramHeader,
  type SectionHeader,
} from '../../formats/elf/elf-structs.js';
import {
  checkMemoryFilter,
  filterMappings,
  locateMapping,
  planLinuxMappings,
  planMemoryPayload,
  planPhysicalMappings,
  type MemoryFilter,
  type PayloadPiece,
} from './memory-mapping.js';

export interface DumpOptions {
  /** Default `portable`. */
  readonly layout?: DumpLayout;
  readonly filter?: MemoryFilter;
  /**
   * With the portable layout: lay the dump out as Linux's /proc/vmcore (direct-map and kernel
   * image virtual addresses), which every Linux dump reader opens; prepareDump discovers them.
   */
  readonly linux?: LinuxMappingFacts;
  /** A mapping list planned from the guest's page tables (planPagingMappings); replaces the others. */
  readonly mappings?: readonly MemoryMapping[];
  /**
   * A dump level's pages (bit p set: pfn p is dumped): system RAM only, cut into the segments
   * `makedumpfile -E -d` writes (filtered-segments.ts, docs/dump-levels.md §5).
   */
  readonly kept?: { readonly bitmap: Uint8Array; readonly pageSize: number };
}

interface Placed {
  readonly offset: FileOffset;
  readonly size: bigint;
}

/** The records of an ELF dump in file order (a discriminated union on `kind`). */
export type DumpRecord =
  | (Placed & { readonly kind: 'elf-header'; readonly header: ElfHeader })
  | (Placed & { readonly kind: 'section-headers'; readonly headers: readonly SectionHeader[] })
  | (Placed & { readonly kind: 'program-headers'; readonly headers: readonly ProgramHeader[] })
  | (Placed & { readonly kind: 'notes'; readonly notes: readonly ElfNote[] })
  | (Placed & { readonly kind: 'memory'; readonly piece: PayloadPiece })
  | (Placed & { readonly kind: 'string-table'; readonly bytes: Uint8Array });

export interface DumpPlan {
  readonly format: 'elf';
  readonly layout: DumpLayout;
  readonly target: ElfTarget;
  /** In file order; offsets ascending and contiguous from 0 to `totalSize`. */
  readonly records: readonly DumpRecord[];
  readonly segmentCount: number;
  readonly memoryBytes: bigint;
  readonly totalSize: bigint;
}

/** `\0.shstrtab\0`, the only section name QEMU 7.2 writes on x86 (docs/elf-vmcore.md §3). */
const SHSTRTAB = new Uint8Array([0, ...new TextEncoder().encode('.shstrtab'), 0]);

/** Everything a layout needs, independent of where it puts things. */
interface Contents {
  readonly target: ElfTarget;
  readonly notes: readonly ElfNote[];
  readonly noteBytes: bigint;
  readonly mappings: readonly MemoryMapping[];
  /** A filtered dump's segments (then `mappings` are these, and each has its own bytes in `pieces`). */
  readonly segments?: readonly FilteredSegment[];
  readonly pieces: readonly PayloadPiece[];
  readonly memoryBytes: bigint;
  /** QEMU writes the physical address where a mapping has virtual address 0; /proc/vmcore writes 0. */
  readonly zeroVirtualIs: 'physical' | 'zero';
  /** How QEMU writes the `.shstrtab` section header (the target's quirk), for the qemu layout. */
  readonly shstrtabOrder: Endian | undefined;
}

export function planDump(guest: Pick<GuestModel, 'arch' | 'vcpus' | 'ram' | 'vmcoreinfo'>, options: DumpOptions = {}): DumpPlan {
  const layout = options.layout ?? 'portable';
  checkRamRanges(guest.ram);
  if (options.filter !== undefined) checkMemoryFilter(options.filter);
  const { kept } = options;
  const ram = kept === undefined ? guest.ram : systemRamOf(guest.ram);
  const linux = layout === 'portable' ? options.linux : undefined;
  const unfiltered = options.mappings ?? (linux === undefined ? planPhysicalMappings(ram) : planLinuxMappings(ram, linux));
  const mappings = filterMappings(unfiltered, options.filter);
  const segments =
    kept === undefined
      ? undefined
      : planFilteredSegments(mappings, (pfn) => ((kept.bitmap[pfn >> 3] ?? 0) & (1 << (pfn & 7))) !== 0, kept.pageSize);
  const pieces = segments === undefined ? planMemoryPayload(ram, options.filter) : segmentPieces(segments, ram);
  const memoryBytes = pieces.reduce((sum, p) => sum + p.length, 0n);
  if (memoryBytes === 0n) {
    // QEMU's message for an empty guest or a filter that falls in a hole (docs/memory-mapping.md §7).
    throw new VmdumpError(options.filter === undefined ? 'bad-input' : 'usage', 'no guest memory to dump');
  }
  const notes = buildNotes(guest, layout);
  const noteBytes = BigInt(notes.reduce((sum, n) => sum + noteSize(n), 0));
  const shstrtabOrder = targetFor(guest.arch).qemuShstrtabOrder;
  const base = {
    notes,
    noteBytes,
    mappings: segments ?? mappings,
    ...(segments === undefined ? {} : { segments }),
    pieces,
    memoryBytes,
    shstrtabOrder,
    zeroVirtualIs: linux === undefined || options.mappings !== undefined ? ('physical' as const) : ('zero' as const),
  };
  const target = (elfClass: ElfClass): ElfTarget => ({ elfClass, endian: guest.arch.endian, machine: guest.arch.machine });
  if (layout === 'qemu') return checkFits(planQemuLayout({ ...base, target: target(guest.arch.elfClass) }));
  const narrow = planPortableLayout({ ...base, target: target(guest.arch.elfClass) });
  // Readers take EM_386 in ELF64 (QEMU itself writes it, §6): widen rather than fail.
  return fits32(narrow) ? narrow : planPortableLayout({ ...base, target: target(64) });
}

function programHeaders(c: Contents, noteOffset: bigint, memoryOffset: bigint): ProgramHeader[] {
  const note: ProgramHeader = {
    type: PT_NOTE,
    flags: 0,
    offset: noteOffset,
    vaddr: 0n,
    paddr: 0n,
    filesz: c.noteBytes,
    memsz: c.noteBytes,
    align: 0n,
  };
  if (c.segments !== undefined) return [note, ...segmentHeaders(c, c.segments, memoryOffset)];
  return [
    note,
    ...c.mappings.map((m): ProgramHeader => {
      const located = locateMapping(m, c.pieces);
      return {
        type: PT_LOAD,
        flags: 0,
        offset: located === undefined ? NOT_IN_FILE : memoryOffset + located.payloadOffset,
        // QEMU writes the physical address where the mapping has no virtual one (docs/elf-vmcore.md §4).
        vaddr: m.virt === 0n && c.zeroVirtualIs === 'physical' ? m.phys : m.virt,
        paddr: m.phys,
        filesz: located?.filesz ?? 0n,
        memsz: m.length,
        align: 0n,
      };
    }),
  ];
}

/**
 * A filtered dump's PT_LOADs: each segment's bytes follow the previous one's. makedumpfile gives a
 * segment without bytes offset 0, except the last of its mapping, which gets where the next bytes go.
 */
function segmentHeaders(c: Contents, segments: readonly FilteredSegment[], memoryOffset: bigint): ProgramHeader[] {
  let payload = 0n;
  return segments.map((segment): ProgramHeader => {
    const at = payload;
    payload += segment.filesz;
    return {
      type: PT_LOAD,
      flags: 0,
      offset: segment.filesz > 0n || segment.lastOfMapping ? memoryOffset + at : 0n,
      vaddr: segment.virt === 0n && c.zeroVirtualIs === 'physical' ? segment.phys : segment.virt,
      paddr: segment.phys,
      filesz: segment.filesz,
      memsz: segment.length,
      align: 0n,
    };
  });
}

/** Each segment's own bytes, in segment order (a page two mappings alias is written for each). */
function segmentPieces(segments: readonly FilteredSegment[], ram: readonly RamRange[]): PayloadPiece[] {
  let payloadOffset = 0n;
  return segments.flatMap((segment) => {
    if (segment.filesz === 0n) return [];
    const range = ram.find((r) => r.start <= segment.phys && segment.phys + segment.filesz <= r.start + r.size);
    if (range === undefined)
      throw new VmdumpError(
        'internal',
        `a filtered segment at ${hex(segment.phys)} (${hex(segment.filesz)} bytes) lies in no RAM range`,
      );
    const piece = { range, rangeOffset: segment.phys - range.start, length: segment.filesz, payloadOffset };
    payloadOffset += segment.filesz;
    return [piece];
  });
}

function elfHeader(
  c: Contents,
  fields: Pick<ElfHeader, 'phoff' | 'shoff' | 'ehsize' | 'phnum' | 'shentsize' | 'shnum' | 'shstrndx'>,
): ElfHeader {
  return {
    type: ET_CORE,
    machine: c.target.machine,
    version: EV_CURRENT,
    entry: 0n,
    flags: 0,
    phentsize: programHeaderSize(c.target.elfClass),
    ...fields,
  };
}

/** Section header 0 carries the real segment count under PN_XNUM (gABI extended numbering). */
function nullSection(segmentCount: number): SectionHeader {
  return {
    name: 0,
    type: SHT_NULL,
    flags: 0n,
    addr: 0n,
    offset: 0n,
    size: 0n,
    link: 0,
    info: segmentCount >= PN_XNUM ? segmentCount : 0,
    addralign: 0n,
    entsize: 0n,
  };
}

/** Places parts back to back from offset 0 and returns them with their offsets. */
function placeInOrder<T extends { size: bigint }>(parts: readonly T[]): (T & { offset: FileOffset })[] {
  let offset = 0n;
  return parts.map((part) => {
    const placed = { ...part, offset: fileOffset(offset) };
    offset += part.size;
    return placed;
  });
}

function memoryRecords(c: Contents, memoryOffset: bigint): DumpRecord[] {
  return c.pieces.map((piece) => ({
    kind: 'memory',
    offset: fileOffset(memoryOffset + piece.payloadOffset),
    size: piece.length,
    piece,
  }));
}

function finish(layout: DumpLayout, c: Contents, records: DumpRecord[]): DumpPlan {
  const last = records[records.length - 1]!;
  return {
    format: 'elf',
    layout,
    target: c.target,
    records,
    segmentCount: 1 + c.mappings.length,
    memoryBytes: c.memoryBytes,
    totalSize: last.offset + last.size,
  };
}

function planQemuLayout(c: Contents): DumpPlan {
  const { elfClass } = c.target;
  const segmentCount = 1 + c.mappings.length;
  const ehdr = BigInt(elfHeaderSize(elfClass));
  const shdrs = 2n * BigInt(sectionHeaderSize(elfClass));
  const phdrs = BigInt(segmentCount * programHeaderSize(elfClass));
  const noteOffset = ehdr + shdrs + phdrs;
  const memoryOffset = noteOffset + c.noteBytes;
  const strtabOffset = memoryOffset + c.memoryBytes;
  const header = elfHeader(c, {
    phoff: ehdr + shdrs,
    shoff: ehdr,
    ehsize: 8,
    phnum: segmentCount,
    shentsize: sectionHeaderSize(elfClass),
    shnum: 2,
    shstrndx: 1,
  });
  const strtab: SectionHeader = {
    ...nullSection(0),
    name: 1,
    type: SHT_STRTAB,
    offset: strtabOffset,
    size: BigInt(SHSTRTAB.length),
    ...(c.shstrtabOrder === undefined ? {} : { writtenAs: c.shstrtabOrder }),
  };
  const [h, s, p, n] = placeInOrder([{ size: ehdr }, { size: shdrs }, { size: phdrs }, { size: c.noteBytes }]);
  return finish('qemu', c, [
    { kind: 'elf-header', ...h!, header },
    { kind: 'section-headers', ...s!, headers: [nullSection(segmentCount), strtab] },
    { kind: 'program-headers', ...p!, headers: programHeaders(c, noteOffset, memoryOffset) },
    { kind: 'notes', ...n!, notes: c.notes },
    ...memoryRecords(c, memoryOffset),
    { kind: 'string-table', offset: fileOffset(strtabOffset), size: BigInt(SHSTRTAB.length), bytes: SHSTRTAB },
  ]);
}

function planPortableLayout(c: Contents): DumpPlan {
  const { elfClass } = c.target;
  const segmentCount = 1 + c.mappings.length;
  const extended = segmentCount >= PN_XNUM;
  const ehdr = BigInt(elfHeaderSize(elfClass));
  const phdrs = BigInt(segmentCount * programHeaderSize(elfClass));
  const noteOffset = ehdr + phdrs;
  const memoryOffset = noteOffset + c.noteBytes;
  const shOffset = memoryOffset + c.memoryBytes;
  const header = elfHeader(c, {
    phoff: ehdr,
    ehsize: Number(ehdr),
    phnum: segmentCount,
    // Section header 0 only when PN_XNUM needs it, after everything else, as Linux core dumps place it.
    shoff: extended ? shOffset : 0n,
    shentsize: extended ? sectionHeaderSize(elfClass) : 0,
    shnum: extended ? 1 : 0,
    shstrndx: 0,
  });
  const records: DumpRecord[] = [
    { kind: 'elf-header', offset: fileOffset(0n), size: ehdr, header },
    { kind: 'program-headers', offset: fileOffset(ehdr), size: phdrs, headers: programHeaders(c, noteOffset, memoryOffset) },
    { kind: 'notes', offset: fileOffset(noteOffset), size: c.noteBytes, notes: c.notes },
    ...memoryRecords(c, memoryOffset),
  ];
  if (extended) {
    records.push({
      kind: 'section-headers',
      offset: fileOffset(shOffset),
      size: BigInt(sectionHeaderSize(elfClass)),
      headers: [nullSection(segmentCount)],
    });
  }
  return finish('portable', c, records);
}

/**
 * Whether every header value fits its ELF32 word (the encoder refuses the rest): offsets,
 * addresses and sizes; NOT_IN_FILE is written as all ones in either class.
 */
function fits32(plan: DumpPlan): boolean {
  if (plan.target.elfClass === 64) return true;
  const fits = (value: bigint): boolean => value <= U32_MAX || value === NOT_IN_FILE;
  return plan.records.every((record) => {
    switch (record.kind) {
      case 'elf-header':
        return [record.header.entry, record.header.phoff, record.header.shoff].every(fits);
      case 'program-headers':
        return record.headers.every((h) => [h.offset, h.vaddr, h.paddr, h.filesz, h.memsz, h.align].every(fits));
      case 'section-headers':
        return record.headers.every((h) => [h.flags, h.addr, h.offset, h.size, h.addralign, h.entsize].every(fits));
      default:
        return true;
    }
  });
}

function checkFits(plan: DumpPlan): DumpPlan {
  if (!fits32(plan)) {
    throw new VmdumpError(
      'unrepresentable',
      `an ELF32 dump cannot hold this guest (file size ${hex(plan.totalSize)}); QEMU would truncate offsets here. ` +
        'Use --layout portable, which widens to ELF64 when it must',
    );
  }
  return plan;
}
