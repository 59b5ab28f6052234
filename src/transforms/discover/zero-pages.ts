/**
 * Zero pages found by reading them, for a filtered ELF dump: its program headers come first and
 * must already leave the zero pages out, so every page still kept is read once before the dump
 * and again while it is written, as makedumpfile -E does (exclude_zero_pages_cyclic,
 * docs/dump-levels.md §5). A kdump file needs no such pass: its zero pages share one page.
 */
import { GuestMemory } from '../../guest/guest-memory.js';
import type { RamRange } from '../../guest/guest.js';

/** Pages read at a time. */
const CHUNK_PAGES = 256;

/** Sets the bit of every all-zero page of `ram` not already set in `excluded`; returns how many. */
export async function excludeZeroPages(
  ram: readonly RamRange[],
  excluded: Uint8Array,
  pageSize: number,
  signal?: AbortSignal,
): Promise<number> {
  const memory = new GuestMemory(ram);
  const buffer = Buffer.alloc(CHUNK_PAGES * pageSize);
  const zeroPage = Buffer.alloc(pageSize);
  const size = BigInt(pageSize);
  let zero = 0;
  const isSet = (pfn: number): boolean => ((excluded[pfn >> 3]! >> (pfn & 7)) & 1) === 1;
  for (const range of ram) {
    const end = Number((range.start + range.size + size - 1n) / size);
    for (let pfn = Number(range.start / size); pfn < end;) {
      signal?.throwIfAborted();
      if (isSet(pfn)) {
        pfn += 1;
        continue;
      }
      let count = 1;
      while (count < CHUNK_PAGES && pfn + count < end && !isSet(pfn + count)) count += 1;
      await memory.read(BigInt(pfn) * size, buffer.subarray(0, count * pageSize), 'zero');
      for (let page = 0; page < count; page += 1) {
        // As the compression threads tell zero pages (compress-worker.ts): one native compare.
        if (zeroPage.compare(buffer, page * pageSize, (page + 1) * pageSize) !== 0) continue;
        excluded[(pfn + page) >> 3]! |= 1 << ((pfn + page) & 7);
        zero += 1;
      }
      pfn += count;
    }
  }
  return zero;
}
