/**
 * Finds the kernel's direct-map base (page_offset_base) by walking the guest's own page tables
 * from init_top_pgt: the lowest kernel-half virtual address that maps physical address 0. KASLR
 * randomises the base per boot in 1 GiB steps, so each 1 GiB-aligned candidate is translated;
 * no constant is assumed. Tables are read through the guest model, one 4 KiB page at a time.
 */
import type { RamRange } from '../model/guest.js';
import { PhysicalReader } from './physical-reader.js';

const ADDRESS_MASK = 0x000f_ffff_ffff_f000n;
const PRESENT = 1n;
const HUGE = 1n << 7n;
const GIB = 1n << 30n;

/** Physical address `virtual` maps to under the tables at `root`, or undefined. */
async function translate(reader: PhysicalReader, root: bigint, virtual: bigint, levels: 4 | 5): Promise<bigint | undefined> {
  let table = root & ADDRESS_MASK;
  for (let level: number = levels; level >= 1; level -= 1) {
    const shift = BigInt(12 + 9 * (level - 1));
    const entry = await reader.u64(table + ((virtual >> shift) & 0x1ffn) * 8n);
    if (entry === undefined || (entry & PRESENT) === 0n) return undefined;
    if (level === 1 || ((level === 2 || level === 3) && (entry & HUGE) !== 0n)) {
      const pageMask = (1n << shift) - 1n;
      return ((entry & ADDRESS_MASK) & ~pageMask) | (virtual & pageMask);
    }
    table = entry & ADDRESS_MASK;
  }
  return undefined;
}

export async function findDirectMapBase(ram: readonly RamRange[], topTable: bigint, fiveLevel: boolean): Promise<bigint | undefined> {
  const reader = new PhysicalReader(ram);
  const levels = fiveLevel ? 5 : 4;
  // The kernel half starts at 0xff00000000000000 (5-level) or 0xffff800000000000 (4-level).
  const start = fiveLevel ? 0xff00_0000_0000_0000n : 0xffff_8000_0000_0000n;
  const kernelImage = 0xffff_ffff_8000_0000n;
  const topShift = BigInt(12 + 9 * (levels - 1));
  for (let candidate = start; candidate < kernelImage; candidate += GIB) {
    // Skip a whole top-level slot that is not present.
    const topEntry = await reader.u64((topTable & ADDRESS_MASK) + ((candidate >> topShift) & 0x1ffn) * 8n);
    if (topEntry === undefined || (topEntry & PRESENT) === 0n) {
      candidate = ((candidate >> topShift) + 1n << topShift) - GIB;
      continue;
    }
    if (await translate(reader, topTable, candidate, levels) === 0n) return candidate;
  }
  return undefined;
}
