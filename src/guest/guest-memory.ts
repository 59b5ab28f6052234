/**
 * The one way to read guest memory. A guest model's RAM ranges are read either by range (the
 * dump's payload pieces know theirs) or by guest-physical address, where bytes no range covers
 * follow an explicit policy: `zero` (kdump pages that straddle a range edge, as QEMU's
 * get_next_page does: docs/kdump-compressed.md §6) or `refuse` (a note, a pointer or a page
 * table must lie wholly in RAM). Small reads go through a bounded page cache: page-table walks
 * read the same tables many times.
 */
import { VmdumpError, errnoText, hex } from './errors.js';
import type { RamRange, RomDevice } from './guest.js';

/** What a read does with bytes that no RAM range covers. */
export type HolePolicy = 'zero' | 'refuse';

/** Guest-physical memory as a page-table walk needs it (little-endian tables). */
export interface PhysicalMemory {
  u64(address: bigint): Promise<bigint | undefined>;
  u32(address: bigint): Promise<number | undefined>;
  /** The leaf "I/O check": does `address` lie in RAM, ROM or a ROM device (docs/memory-mapping.md §4)? */
  isMemory(address: bigint): boolean;
}

const PAGE = 4096n;
const MAX_CACHED_PAGES = 4096;

/**
 * range.read() (or, for `span`, the one-off readSpan() where the range has one), with a failure
 * that is not already a VmdumpError named as unreadable guest memory at its place.
 */
export async function readRange(range: RamRange, offset: bigint, into: Uint8Array, how: 'pass' | 'span' = 'pass'): Promise<void> {
  try {
    await (how === 'span' && range.readSpan !== undefined ? range.readSpan(offset, into) : range.read(offset, into));
  } catch (error) {
    if (error instanceof VmdumpError) throw error;
    throw new VmdumpError(
      'bad-input',
      `cannot read guest memory: ${errnoText(error)}`,
      `${range.label}, range offset ${hex(offset)}`,
      { cause: error },
    );
  }
}

export class GuestMemory implements PhysicalMemory {
  private readonly cache = new Map<bigint, DataView>();

  /** `romDevices` are memory to the I/O check, but their bytes cannot be read. */
  constructor(
    readonly ram: readonly RamRange[],
    private readonly romDevices: readonly RomDevice[] = [],
  ) {}

  isMemory(address: bigint): boolean {
    const inside = (r: { start: bigint; size: bigint }) => r.start <= address && address < r.start + r.size;
    return this.ram.some(inside) || this.romDevices.some(inside);
  }

  /**
   * Fills `into` with guest-physical [address, address + into.length). With `refuse`, nothing is
   * read and the answer is false unless RAM covers every byte; with `zero`, holes read as zeros.
   */
  async read(address: bigint, into: Uint8Array, holes: HolePolicy): Promise<boolean> {
    const end = address + BigInt(into.length);
    if (holes === 'refuse' && !this.covers(address, end)) return false;
    let covered = 0;
    for (const range of this.ram) {
      const from = range.start > address ? range.start : address;
      const rangeEnd = range.start + range.size;
      const to = rangeEnd < end ? rangeEnd : end;
      if (from >= to) continue;
      into.fill(0, covered, Number(from - address));
      await readRange(range, from - range.start, into.subarray(Number(from - address), Number(to - address)));
      covered = Number(to - address);
    }
    into.fill(0, covered);
    return true;
  }

  /** `length` bytes at `address`, or undefined unless RAM covers them all. */
  async bytes(address: bigint, length: number): Promise<Uint8Array | undefined> {
    const bytes = new Uint8Array(length);
    return (await this.read(address, bytes, 'refuse')) ? bytes : undefined;
  }

  /** u64 at a guest-physical address (8-byte aligned in page tables), little-endian unless said, or undefined outside RAM. */
  async u64(address: bigint, endian: 'little' | 'big' = 'little'): Promise<bigint | undefined> {
    return (await this.page(address))?.getBigUint64(Number(address % PAGE), endian === 'little');
  }

  async u32(address: bigint): Promise<number | undefined> {
    return (await this.page(address))?.getUint32(Number(address % PAGE), true);
  }

  private covers(start: bigint, end: bigint): boolean {
    let at = start;
    for (const range of this.ram) {
      if (range.start <= at && at < range.start + range.size) at = range.start + range.size;
      if (at >= end) return true;
    }
    return at >= end;
  }

  private async page(address: bigint): Promise<DataView | undefined> {
    const page = address - (address % PAGE);
    const cached = this.cache.get(page);
    if (cached !== undefined) return cached;
    const bytes = await this.bytes(page, Number(PAGE));
    if (bytes === undefined) return undefined;
    if (this.cache.size >= MAX_CACHED_PAGES) this.cache.clear();
    const view = new DataView(bytes.buffer);
    this.cache.set(page, view);
    return view;
  }
}
