/**
 * QEMU 7.2's paging=true mapping list (memory-mapping.md §3.2-§4): each vCPU's page tables are
 * walked from the first vCPU with CR0.PG on, every present leaf is merge-inserted the way
 * QEMU's memory_mapping_list_add_merge_sorted does, quirks included (the 0xFFFF prefix on every
 * 4-level address, leaf addresses keeping bits 62:52 and then failing the I/O check).
 */
import type { RamRange, Vcpu } from '../model/guest.js';
import { physAddr, virtAddr } from '../model/units.js';
import type { MemoryMapping } from './memory-mapping.js';

/** Guest-physical memory as the walk needs it. Tables outside RAM read as not present. */
export interface PhysicalMemory {
  u64(address: bigint): Promise<bigint | undefined>;
  u32(address: bigint): Promise<number | undefined>;
  /** The leaf "I/O check": does `address` lie in RAM or ROM (memory-mapping.md §4)? */
  isMemory(address: bigint): boolean;
}

const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const NX = 1n << 63n;
const PRESENT = 1n;
const PS = 1n << 7n;
const CR0_PG = 1n << 31n;
const CR4_PSE = 1n << 4n;
const CR4_PAE = 1n << 5n;
const CR4_LA57 = 1n << 12n;
const EFER_LMA = 1n << 10n;

/** Refuse page tables that would make the list explode (QEMU warns paging can allocate gigabytes). */
export const MAX_MAPPINGS = 1_000_000;

interface Entry { phys: bigint; virt: bigint; length: bigint }

/** memory_mapping_list_add_merge_sorted (§3.3), with QEMU's cursor (`last`) and scan order. */
export class MappingList {
  readonly list: Entry[] = [];
  private last: Entry | undefined;

  add(phys: bigint, virt: bigint, length: bigint): void {
    const last = this.last;
    if (last !== undefined && phys === last.phys + last.length && virt === last.virt + last.length) {
      last.length += length;
      return;
    }
    let index = 0;
    for (; index < this.list.length; index += 1) {
      const m = this.list[index]!;
      if (phys === m.phys + m.length && virt === m.virt + m.length) { m.length += length; this.last = m; return; }
      if (phys + length < m.phys) break;
      if (!(phys + length < m.phys || phys >= m.phys + m.length)) {
        if (virt - m.virt !== phys - m.phys) continue;
        // QEMU extends downwards without moving phys (a latent bug only reachable when prepending).
        if (virt < m.virt) { m.length += m.virt - virt; m.virt = virt; }
        if (virt + length > m.virt + m.length) m.length = virt + length - m.virt;
        this.last = m;
        return;
      }
    }
    if (this.list.length >= MAX_MAPPINGS) throw new Error(`more than ${MAX_MAPPINGS} mappings`);
    const created = { phys, virt, length };
    // Inserted before the first entry whose phys >= P (so after the scan position's predecessors).
    const at = this.list.findIndex((m) => m.phys >= phys);
    if (at < 0) this.list.push(created); else this.list.splice(at, 0, created);
    this.last = created;
  }
}

type Add = (phys: bigint, virt: bigint, length: bigint) => void;

async function walkPte(memory: PhysicalMemory, table: bigint, line: bigint, add: Add, wide: boolean): Promise<void> {
  for (let j = 0n; j < (wide ? 512n : 1024n); j += 1n) {
    const pte = wide ? await memory.u64(table + j * 8n) : BigInt(await memory.u32(table + j * 4n) ?? 0);
    if (pte === undefined || (pte & PRESENT) === 0n) continue;
    const phys = wide ? (pte & ~0xfffn) & ~NX : pte & ~0xfffn;
    if (memory.isMemory(phys)) add(phys, line | (j << 12n), 0x1000n);
  }
}

/** PD of PAE and IA-32e (512 × u64): 2 MiB leaves or page tables. */
async function walkPde(memory: PhysicalMemory, table: bigint, parent: bigint, add: Add): Promise<void> {
  for (let i = 0n; i < 512n; i += 1n) {
    const pde = await memory.u64(table + i * 8n);
    if (pde === undefined || (pde & PRESENT) === 0n) continue;
    const line = parent | (i << 21n);
    if ((pde & PS) !== 0n) {
      const phys = (pde & ~0x1f_ffffn) & ~NX;
      if (memory.isMemory(phys)) add(phys, line, 0x20_0000n);
    } else {
      await walkPte(memory, pde & ADDR_MASK, line, add, true);
    }
  }
}

async function walkPdpte4(memory: PhysicalMemory, table: bigint, parent: bigint, add: Add): Promise<void> {
  for (let i = 0n; i < 512n; i += 1n) {
    const pdpte = await memory.u64(table + i * 8n);
    if (pdpte === undefined || (pdpte & PRESENT) === 0n) continue;
    const line = parent | (i << 30n);
    if ((pdpte & PS) !== 0n) {
      const phys = (pdpte & ~0x3fff_ffffn) & ~NX;
      if (memory.isMemory(phys)) add(phys, line, 0x4000_0000n);
    } else {
      await walkPde(memory, pdpte & ADDR_MASK, line, add);
    }
  }
}

async function walkPml4(memory: PhysicalMemory, table: bigint, prefix: bigint, add: Add): Promise<void> {
  for (let i = 0n; i < 512n; i += 1n) {
    const pml4e = await memory.u64(table + i * 8n);
    if (pml4e === undefined || (pml4e & PRESENT) === 0n) continue;
    await walkPdpte4(memory, pml4e & ADDR_MASK, prefix | (i << 39n), add);
  }
}

async function walkVcpu(memory: PhysicalMemory, vcpu: Vcpu, add: Add): Promise<void> {
  const { cr3, cr4, efer } = vcpu.state;
  if ((cr4 & CR4_PAE) === 0n) {
    const pd = cr3 & ~0xfffn;
    for (let i = 0n; i < 1024n; i += 1n) {
      const pde = BigInt(await memory.u32(pd + i * 4n) ?? 0);
      if ((pde & PRESENT) === 0n) continue;
      const line = i << 22n;
      if ((pde & PS) !== 0n && (cr4 & CR4_PSE) !== 0n) {
        const phys = (pde & 0xffc0_0000n) | ((pde & 0x001f_e000n) << 19n); // PSE-36: bits 20:13 → 39:32
        if (memory.isMemory(phys)) add(phys, line, 0x40_0000n);
      } else {
        await walkPte(memory, pde & ~0xfffn, line, add, false);
      }
    }
  } else if ((efer & EFER_LMA) === 0n) {
    const pdpt = cr3 & ~0x1fn;
    for (let i = 0n; i < 4n; i += 1n) {
      const pdpte = await memory.u64(pdpt + i * 8n);
      if (pdpte === undefined || (pdpte & PRESENT) === 0n) continue;
      await walkPde(memory, pdpte & ~0xfffn, i << 30n, add);
    }
  } else if ((cr4 & CR4_LA57) === 0n) {
    await walkPml4(memory, cr3 & ADDR_MASK, 0xffff_0000_0000_0000n, add);
  } else {
    const pml5 = cr3 & ADDR_MASK;
    for (let i = 0n; i < 512n; i += 1n) {
      const pml5e = await memory.u64(pml5 + i * 8n);
      if (pml5e === undefined || (pml5e & PRESENT) === 0n) continue;
      await walkPml4(memory, pml5e & ADDR_MASK, 0xfe00_0000_0000_0000n | (i << 48n), add);
    }
  }
}

/**
 * The paging=true list: from the first vCPU with paging on, that vCPU and every later one
 * (earlier ones are skipped); with no such vCPU, identity mappings (virt = phys) per range.
 */
export async function planPagingMappings(ram: readonly RamRange[], vcpus: readonly Vcpu[], memory: PhysicalMemory): Promise<MemoryMapping[]> {
  const first = vcpus.findIndex((v) => (v.state.cr0 & CR0_PG) !== 0n);
  if (first < 0) return ram.map((r) => ({ phys: r.start, virt: virtAddr(r.start), length: r.size }));
  const list = new MappingList();
  const add: Add = (phys, virt, length) => list.add(phys, virt, length);
  for (const vcpu of vcpus.slice(first)) {
    if ((vcpu.state.cr0 & CR0_PG) !== 0n) await walkVcpu(memory, vcpu, add);
  }
  return list.list.map((m) => ({ phys: physAddr(m.phys), virt: virtAddr(m.virt), length: m.length }));
}
