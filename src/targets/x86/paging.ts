/**
 * QEMU 7.2's paging=true mapping list (docs/memory-mapping.md §3.2-§4): each vCPU's page tables are
 * walked from the first vCPU with CR0.PG on, every present leaf is merge-inserted the way
 * QEMU's memory_mapping_list_add_merge_sorted does, quirks included (the 0xFFFF prefix on every
 * 4-level address, leaf addresses keeping bits 62:52 and then failing the I/O check).
 */
import { VmdumpError } from '../../guest/errors.js';
import type { PhysicalMemory } from '../../guest/guest-memory.js';
import type { MemoryMapping, RamRange, Vcpu } from '../../guest/guest.js';
import { physAddr, virtAddr } from '../../guest/units.js';
import type { WalkRules } from '../target.js';
import { EFER_LMA, pagingEnabled } from './architecture.js';

const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const NX = 1n << 63n;
const PRESENT = 1n;
const PS = 1n << 7n;
const CR4_PSE = 1n << 4n;
const CR4_PAE = 1n << 5n;
export const CR4_LA57 = 1n << 12n;

/**
 * Limits that keep hostile or corrupt tables (loops, every entry present) bounded in time and
 * memory; QEMU itself warns paging can make it allocate gigabytes. Insertion is QEMU's linear
 * scan, so the mapping cap also bounds the quadratic worst case.
 */
export const MAX_MAPPINGS = 262_144;
export const MAX_PRESENT_ENTRIES = 16_000_000;
/**
 * Entries QEMU's merge-insert may scan in one walk, summed over all insertions: about a minute
 * of bigint comparisons at worst; the Linux test guest's tables need a few thousand.
 */
export const MAX_SCAN_STEPS = 50_000_000;

interface Entry {
  phys: bigint;
  virt: bigint;
  length: bigint;
}

/** memory_mapping_list_add_merge_sorted (§3.3), with QEMU's cursor (`last`) and scan order. */
export class MappingList {
  readonly list: Entry[] = [];
  private last: Entry | undefined;
  private steps = 0;

  constructor(private readonly maxSteps = MAX_SCAN_STEPS) {}

  add(phys: bigint, virt: bigint, length: bigint): void {
    const last = this.last;
    if (last !== undefined && phys === last.phys + last.length && virt === last.virt + last.length) {
      last.length += length;
      return;
    }
    let index = 0;
    for (; index < this.list.length; index += 1) {
      if ((this.steps += 1) > this.maxSteps) {
        throw new VmdumpError(
          'bad-input',
          `merging the page-table mappings took more than ${this.maxSteps} steps (${this.list.length} mappings so far); dump without --paging`,
        );
      }
      const m = this.list[index]!;
      if (phys === m.phys + m.length && virt === m.virt + m.length) {
        m.length += length;
        this.last = m;
        return;
      }
      if (phys + length < m.phys) break;
      if (!(phys + length < m.phys || phys >= m.phys + m.length)) {
        if (virt - m.virt !== phys - m.phys) continue;
        // QEMU extends downwards without moving phys (a latent bug only reachable when prepending).
        if (virt < m.virt) {
          m.length += m.virt - virt;
          m.virt = virt;
        }
        if (virt + length > m.virt + m.length) m.length = virt + length - m.virt;
        this.last = m;
        return;
      }
    }
    if (this.list.length >= MAX_MAPPINGS) {
      throw new VmdumpError(
        'bad-input',
        `the page tables give more than ${MAX_MAPPINGS} separate mappings; dump without --paging`,
      );
    }
    const created = { phys, virt, length };
    // Inserted before the first entry whose phys >= P (so after the scan position's predecessors).
    const at = this.list.findIndex((m) => m.phys >= phys);
    if (at < 0) this.list.push(created);
    else this.list.splice(at, 0, created);
    this.last = created;
  }
}

/*
 * QEMU's quirks (docs/memory-mapping.md §4.3-4.5), reproduced for --layout qemu and fixed otherwise
 * (WalkRules.qemuQuirks): every 4-level address gets the 0xFFFF prefix (canonical: sign-extend
 * bit 47, or 56 for 5-level), and a leaf keeps bits 62:52 of its entry as "physical" bits, so a
 * page with software-available bits set fails the I/O check and vanishes (fixed: the
 * architectural mask).
 */

/** One walk over one guest's tables into one mapping list. */
class PageWalker {
  readonly mappings: MappingList;
  private visited = 0;
  constructor(
    private readonly memory: PhysicalMemory,
    private readonly rules: WalkRules,
  ) {
    this.mappings = new MappingList(rules.maxScanSteps);
  }

  /** Counts a present entry; loops and all-present tables end here instead of running for hours. */
  private count(): void {
    this.visited += 1;
    if (this.visited > (this.rules.maxPresentEntries ?? MAX_PRESENT_ENTRIES)) {
      throw new VmdumpError(
        'bad-input',
        `the page tables have more than ${this.rules.maxPresentEntries ?? MAX_PRESENT_ENTRIES} present entries (a loop or corrupt tables?); dump without --paging`,
      );
    }
  }

  private leaf(entry: bigint, size: bigint, virt: bigint): void {
    const phys = this.rules.qemuQuirks ? entry & ~(size - 1n) & ~NX : entry & ADDR_MASK & ~(size - 1n);
    if (this.memory.isMemory(phys)) this.mappings.add(phys, virt, size);
  }

  private async pte(table: bigint, line: bigint, wide: boolean): Promise<void> {
    for (let j = 0n; j < (wide ? 512n : 1024n); j += 1n) {
      const entry = wide ? await this.memory.u64(table + j * 8n) : BigInt((await this.memory.u32(table + j * 4n)) ?? 0);
      if (entry === undefined || (entry & PRESENT) === 0n) continue;
      this.count();
      this.leaf(entry, 0x1000n, line | (j << 12n)); // a 32-bit entry has no bits that either mask would clear
    }
  }

  /** PD of PAE and IA-32e (512 × u64): 2 MiB leaves or page tables. */
  private async pde(table: bigint, parent: bigint): Promise<void> {
    for (let i = 0n; i < 512n; i += 1n) {
      const entry = await this.memory.u64(table + i * 8n);
      if (entry === undefined || (entry & PRESENT) === 0n) continue;
      this.count();
      const line = parent | (i << 21n);
      if ((entry & PS) !== 0n) this.leaf(entry, 0x20_0000n, line);
      else await this.pte(entry & ADDR_MASK, line, true);
    }
  }

  private async pdpte(table: bigint, parent: bigint): Promise<void> {
    for (let i = 0n; i < 512n; i += 1n) {
      const entry = await this.memory.u64(table + i * 8n);
      if (entry === undefined || (entry & PRESENT) === 0n) continue;
      this.count();
      const line = parent | (i << 30n);
      if ((entry & PS) !== 0n) this.leaf(entry, 0x4000_0000n, line);
      else await this.pde(entry & ADDR_MASK, line);
    }
  }

  /** `prefix` undefined: 4-level, where the high bits are QEMU's 0xFFFF or the canonical sign extension. */
  private async pml4(table: bigint, prefix: bigint | undefined): Promise<void> {
    for (let i = 0n; i < 512n; i += 1n) {
      const entry = await this.memory.u64(table + i * 8n);
      if (entry === undefined || (entry & PRESENT) === 0n) continue;
      this.count();
      const high = prefix ?? (this.rules.qemuQuirks || i >= 256n ? 0xffff_0000_0000_0000n : 0n);
      await this.pdpte(entry & ADDR_MASK, high | (i << 39n));
    }
  }

  async vcpu(vcpu: Vcpu): Promise<void> {
    if (vcpu.state.kind !== 'x86') return; // pagingEnabled() is false for every other architecture
    const { cr3, cr4, efer } = vcpu.state;
    if ((cr4 & CR4_PAE) === 0n) {
      await this.legacy32(cr3 & ~0xfffn, (cr4 & CR4_PSE) !== 0n);
    } else if ((efer & EFER_LMA) === 0n) {
      for (let i = 0n; i < 4n; i += 1n) {
        const entry = await this.memory.u64((cr3 & ~0x1fn) + i * 8n);
        if (entry !== undefined && (entry & PRESENT) !== 0n) await this.pde(entry & ~0xfffn, i << 30n);
      }
    } else if ((cr4 & CR4_LA57) === 0n) {
      await this.pml4(cr3 & ADDR_MASK, undefined);
    } else {
      for (let i = 0n; i < 512n; i += 1n) {
        const entry = await this.memory.u64((cr3 & ADDR_MASK) + i * 8n);
        if (entry === undefined || (entry & PRESENT) === 0n) continue;
        const high = this.rules.qemuQuirks || i >= 256n ? 0xfe00_0000_0000_0000n : 0n;
        await this.pml4(entry & ADDR_MASK, high | (i << 48n));
      }
    }
  }

  /** 32-bit paging: 4 KiB pages, and 4 MiB pages with PSE (PSE-36: PDE bits 20:13 are physical bits 39:32). */
  private async legacy32(pd: bigint, pse: boolean): Promise<void> {
    for (let i = 0n; i < 1024n; i += 1n) {
      const entry = BigInt((await this.memory.u32(pd + i * 4n)) ?? 0);
      if ((entry & PRESENT) === 0n) continue;
      this.count();
      if ((entry & PS) !== 0n && pse) {
        const phys = (entry & 0xffc0_0000n) | ((entry & 0x001f_e000n) << 19n);
        if (this.memory.isMemory(phys)) this.mappings.add(phys, i << 22n, 0x40_0000n);
      } else {
        await this.pte(entry & ~0xfffn, i << 22n, false);
      }
    }
  }
}

/**
 * The paging=true list: from the first vCPU with paging on, that vCPU and every later one
 * (earlier ones are skipped); with no such vCPU, identity mappings (virt = phys) per range.
 */
export async function planPagingMappings(
  ram: readonly RamRange[],
  vcpus: readonly Vcpu[],
  memory: PhysicalMemory,
  rules: WalkRules = { qemuQuirks: true },
): Promise<MemoryMapping[]> {
  const first = vcpus.findIndex((v) => pagingEnabled(v.state));
  if (first < 0) return ram.map((r) => ({ phys: r.start, virt: virtAddr(r.start), length: r.size }));
  const walker = new PageWalker(memory, rules);
  for (const vcpu of vcpus.slice(first)) {
    if (pagingEnabled(vcpu.state)) await walker.vcpu(vcpu);
  }
  return walker.mappings.list.map((m) => ({ phys: physAddr(m.phys), virt: virtAddr(m.virt), length: m.length }));
}

/** The physical address `virtual` maps to under the IA-32e tables at `root` (4- or 5-level), or undefined. */
export async function translate(
  memory: PhysicalMemory,
  root: bigint,
  virtual: bigint,
  levels: 4 | 5,
): Promise<bigint | undefined> {
  let table = root & ADDR_MASK;
  for (let level: number = levels; level >= 1; level -= 1) {
    const shift = BigInt(12 + 9 * (level - 1));
    const entry = await memory.u64(table + ((virtual >> shift) & 0x1ffn) * 8n);
    if (entry === undefined || (entry & PRESENT) === 0n) return undefined;
    if (level === 1 || ((level === 2 || level === 3) && (entry & PS) !== 0n)) {
      const pageMask = (1n << shift) - 1n;
      return (entry & ADDR_MASK & ~pageMask) | (virtual & pageMask);
    }
    table = entry & ADDR_MASK;
  }
  return undefined;
}

/** Whether the top-level entry covering `virtual` is present (a whole absent slot can be skipped). */
export async function topLevelPresent(memory: PhysicalMemory, root: bigint, virtual: bigint, levels: 4 | 5): Promise<boolean> {
  const entry = await memory.u64((root & ADDR_MASK) + ((virtual >> topLevelShift(levels)) & 0x1ffn) * 8n);
  return entry !== undefined && (entry & PRESENT) !== 0n;
}

export function topLevelShift(levels: 4 | 5): bigint {
  return BigInt(12 + 9 * (levels - 1));
}
