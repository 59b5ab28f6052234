/**
 * Which guest memory a dump describes and where its bytes sit in the file
 * (docs/memory-mapping.md §3.1, §7; docs/elf-vmcore.md §4.1, §5). Pure functions over RAM ranges.
 */
import type { MemoryMapping, RamRange } from '../../guest/guest.js';
import type { LinuxMappingFacts } from '../../targets/target.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import { U64_MAX, maxBig, minBig, physAddr, virtAddr } from '../../guest/units.js';

/** QEMU's begin/length filter, restricted to what it handles consistently: begin ≥ 0, length > 0. */
export interface MemoryFilter {
  readonly begin: bigint;
  readonly length: bigint;
}

/** A run of one RAM range's bytes written to the memory payload. */
export interface PayloadPiece {
  readonly range: RamRange;
  /** Offset of the first written byte inside `range`. */
  readonly rangeOffset: bigint;
  readonly length: bigint;
  /** Offset of the first written byte inside the memory payload (not the file). */
  readonly payloadOffset: bigint;
}

/** Rejects the filter inputs QEMU 7.2 turns into errors or inconsistent files (docs/memory-mapping.md §7 quirks). */
export function checkMemoryFilter(filter: MemoryFilter): void {
  if (filter.length === 0n) throw new VmdumpError('usage', "Invalid parameter 'length': it must be greater than 0");
  if (filter.begin < 0n || filter.length < 0n) {
    throw new VmdumpError('usage', `begin (${filter.begin}) and length (${filter.length}) must not be negative`);
  }
  if (filter.begin + filter.length - 1n > U64_MAX) {
    throw new VmdumpError('usage', `begin + length (${hex(filter.begin + filter.length)}) is beyond the 64-bit address space`);
  }
}

/** paging=false: one mapping per range, virtual address 0 (docs/memory-mapping.md §3.1). */
export function planPhysicalMappings(ram: readonly RamRange[]): MemoryMapping[] {
  return ram.map((range) => ({ phys: range.start, virt: virtAddr(0n), length: range.size }));
}

/**
 * The /proc/vmcore mappings: the kernel image first (from _stext to the end of the RAM range
 * holding it, aliasing those bytes), then every range, system RAM at its direct-map address and
 * the rest (VRAM, ROMs) with no virtual address.
 */
export function planLinuxMappings(ram: readonly RamRange[], facts: LinuxMappingFacts): MemoryMapping[] {
  const holder = ram.find((r) => r.start <= facts.kernelTextPhysical && facts.kernelTextPhysical < r.start + r.size);
  // The image mapping ends where the RAM holding it ends or where the kernel's image window does,
  // whichever is first (a 2 GiB guest would otherwise run the segment past 2^64).
  const image: MemoryMapping[] =
    holder === undefined
      ? []
      : [
          {
            phys: physAddr(facts.kernelTextPhysical),
            virt: virtAddr(facts.kernelTextVirtual),
            length: minBig(holder.start + holder.size - facts.kernelTextPhysical, facts.kernelImageEnd - facts.kernelTextVirtual),
          },
        ];
  return [
    ...image,
    ...ram.map((range) => ({
      phys: range.start,
      length: range.size,
      virt: virtAddr(range.systemRam === false ? 0n : facts.directMapBase + range.start),
    })),
  ];
}

/**
 * Drops mappings outside the filter and trims the rest to it; a mapping cut at its start
 * moves its virtual address along only when it has one (docs/memory-mapping.md §7).
 */
export function filterMappings(mappings: readonly MemoryMapping[], filter: MemoryFilter | undefined): MemoryMapping[] {
  if (filter === undefined) return [...mappings];
  const end = filter.begin + filter.length;
  const kept: MemoryMapping[] = [];
  for (const m of mappings) {
    if (m.phys >= end || m.phys + m.length <= filter.begin) continue;
    const cut = m.phys < filter.begin ? filter.begin - m.phys : 0n;
    const phys = m.phys + cut;
    const virt = m.virt === 0n ? m.virt : virtAddr(m.virt + cut);
    kept.push({ phys: physAddr(phys), virt, length: minBig(m.phys + m.length, end) - phys });
  }
  return kept;
}

/** The memory payload: each range (cut to the filter) in ascending order, concatenated (docs/elf-vmcore.md §5). */
export function planMemoryPayload(ram: readonly RamRange[], filter: MemoryFilter | undefined): PayloadPiece[] {
  const pieces: PayloadPiece[] = [];
  let payloadOffset = 0n;
  for (const range of ram) {
    const end = range.start + range.size;
    const from = filter === undefined ? range.start : maxBig(range.start, filter.begin);
    const to = filter === undefined ? end : minBig(end, filter.begin + filter.length);
    if (to <= from) continue;
    pieces.push({ range, rangeOffset: from - range.start, length: to - from, payloadOffset });
    payloadOffset += to - from;
  }
  return pieces;
}

/**
 * p_offset (relative to the payload) and p_filesz of one mapping: the piece holding its first
 * byte decides, and p_filesz is clamped to that piece's end even when the next piece continues
 * the memory (docs/elf-vmcore.md §4.1). A mapping in no piece has no bytes in the file.
 */
export function locateMapping(
  mapping: MemoryMapping,
  pieces: readonly PayloadPiece[],
): { payloadOffset: bigint; filesz: bigint } | undefined {
  let low = 0;
  let high = pieces.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const piece = pieces[mid]!;
    const start = piece.range.start + piece.rangeOffset;
    if (mapping.phys < start) high = mid - 1;
    else if (mapping.phys >= start + piece.length) low = mid + 1;
    else {
      const into = mapping.phys - start;
      return { payloadOffset: piece.payloadOffset + into, filesz: minBig(mapping.length, piece.length - into) };
    }
  }
  return undefined;
}
