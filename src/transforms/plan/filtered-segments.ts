/**
 * The PT_LOADs of a filtered ELF dump, as `makedumpfile -E -d N` cuts them (docs/dump-levels.md §5):
 * each mapping of the full layout is walked page by page; a run of 256 or more left-out pages
 * ends a segment (its memsz still covers them) and the next kept page starts one, at the virtual
 * and physical address the run ends at. Shorter runs stay in the file: splitting for them would
 * cost more headers than it saves. Left-out pages at a segment's end count in memsz, not filesz.
 */
import type { MemoryMapping } from '../../guest/guest.js';
import { physAddr, virtAddr } from '../../guest/units.js';

/** makedumpfile's PFN_EXCLUDED: fewer left-out pages in a row than this are written anyway. */
export const SPLIT_AT_EXCLUDED_PAGES = 256;

export interface FilteredSegment extends MemoryMapping {
  /** Bytes of the segment in the file, from its start; `length` (p_memsz) may be larger. */
  readonly filesz: bigint;
  /** The last segment cut from its mapping (makedumpfile gives it a file offset even when it has no bytes). */
  readonly lastOfMapping: boolean;
}

/** Cuts each mapping into segments; `kept(pfn)` says whether a page is dumped. */
export function planFilteredSegments(
  mappings: readonly MemoryMapping[],
  kept: (pfn: number) => boolean,
  pageSize: number,
): FilteredSegment[] {
  return mappings.flatMap((mapping) => cutMapping(mapping, kept, BigInt(pageSize)));
}

function cutMapping(mapping: MemoryMapping, kept: (pfn: number) => boolean, page: bigint): FilteredSegment[] {
  const end = mapping.phys + mapping.length;
  const headPart = mapping.phys % page === 0n ? 0n : page - (mapping.phys % page);
  const tailPart = end % page;
  let firstPfn = Number(mapping.phys / page);
  let endPfn = Number(end / page);
  // A first page that is not whole is counted as it is, kept or not; a last one by its part.
  let memsz = headPart;
  let filesz = headPart;
  if (headPart !== 0n) firstPfn += 1;
  if (tailPart !== 0n) endPfn += 1;
  const segments: FilteredSegment[] = [];
  let phys: bigint = mapping.phys;
  let virt: bigint = mapping.virt;
  let leftOut = 0;
  for (let pfn = firstPfn; pfn < endPfn; pfn += 1) {
    const size = pfn === endPfn - 1 && tailPart !== 0n ? tailPart : page;
    if (!kept(pfn)) {
      leftOut += 1;
      memsz += size;
    } else if (leftOut < SPLIT_AT_EXCLUDED_PAGES) {
      memsz += size;
      filesz += size + BigInt(leftOut) * page;
      leftOut = 0;
    } else {
      segments.push({ phys: physAddr(phys), virt: virtAddr(virt), length: memsz, filesz, lastOfMapping: false });
      phys += memsz;
      virt += memsz;
      leftOut = 0;
      memsz = page;
      filesz = page;
    }
  }
  segments.push({ phys: physAddr(phys), virt: virtAddr(virt), length: memsz, filesz, lastOfMapping: true });
  return segments;
}
