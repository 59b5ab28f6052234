/**
 * Small reads of guest-physical memory through a guest model's ranges, a 4 KiB page at a time,
 * with a bounded page cache: page-table walks read the same tables many times.
 */
import type { RamRange } from '../model/guest.js';
import type { PhysicalMemory } from '../transforms/x86-paging.js';

const MAX_CACHED_PAGES = 4096;

export class PhysicalReader implements PhysicalMemory {
  private readonly cache = new Map<bigint, DataView>();
  constructor(private readonly ram: readonly RamRange[]) {}

  isMemory(address: bigint): boolean {
    return this.ram.some((r) => r.start <= address && address < r.start + r.size);
  }

  private async page(address: bigint): Promise<DataView | undefined> {
    const page = address & ~0xfffn;
    const cached = this.cache.get(page);
    if (cached !== undefined) return cached;
    const range = this.ram.find((r) => r.start <= page && page + 4096n <= r.start + r.size);
    if (range === undefined) return undefined;
    const bytes = new Uint8Array(4096);
    await range.read(page - range.start, bytes);
    if (this.cache.size >= MAX_CACHED_PAGES) this.cache.clear();
    const view = new DataView(bytes.buffer);
    this.cache.set(page, view);
    return view;
  }

  /** Little-endian u64 at a guest-physical address (8-byte aligned in page tables), or undefined outside RAM. */
  async u64(address: bigint): Promise<bigint | undefined> {
    return (await this.page(address))?.getBigUint64(Number(address & 0xfffn), true);
  }

  async u32(address: bigint): Promise<number | undefined> {
    return (await this.page(address))?.getUint32(Number(address & 0xfffn), true);
  }
}
