/**
 * Kernel virtual addresses of an s390x Linux guest through its own DAT tables (docs/dump-levels.md
 * §2; z/Architecture Principles of Operation, "Dynamic Address Translation"): swapper_pg_dir, a
 * region or segment table of 2048 big-endian entries, whose type each valid entry carries in its
 * TT bits (0x0c: 11 region-first, 10 region-second, 01 region-third, 00 segment). The kernel's
 * identity map makes its own addresses physical ones; vmemmap is mapped through these tables.
 */
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { GuestModel } from '../../guest/guest.js';
import type { KernelAddressSpaceResult } from '../target.js';

/** The invalid bit of region and segment entries, and the large-page (format-control) bit of region-third and segment entries. */
const ENTRY_INVALID = 0x20n;
const LARGE = 0x400n;
const PAGE_INVALID = 0x400n;
const TABLE_TYPE = 0x0cn;
const ENTRIES = 2048n;
/** Index shifts: region-first, region-second, region-third, segment (11 bits each), then the page (8 bits). */
const SHIFT = [53n, 42n, 31n, 20n] as const;

/** The level (0 region-first … 3 segment) of the table at `origin`, from its first valid entry. */
async function tableLevel(memory: GuestMemory, origin: bigint): Promise<number | undefined> {
  for (let index = 0n; index < ENTRIES; index += 1n) {
    const entry = await memory.u64(origin + index * 8n, 'big');
    if (entry === undefined) return undefined;
    if ((entry & ENTRY_INVALID) === 0n) return 3 - Number((entry & TABLE_TYPE) >> 2n);
  }
  return undefined;
}

/** The physical address of `virtual` under the table at `origin` of `level`, or undefined. */
export async function translateS390x(
  memory: GuestMemory,
  origin: bigint,
  level: number,
  virtual: bigint,
): Promise<bigint | undefined> {
  let table = origin;
  for (let at = level; at <= 3; at += 1) {
    const shift = SHIFT[at]!;
    const entry = await memory.u64(table + ((virtual >> shift) & 0x7ffn) * 8n, 'big');
    if (entry === undefined || (entry & ENTRY_INVALID) !== 0n) return undefined;
    if (at >= 2 && (entry & LARGE) !== 0n) {
      const span = (1n << shift) - 1n;
      return (entry & ~span) | (virtual & span);
    }
    table = at === 3 ? entry & ~0x7ffn : entry & ~0xfffn;
  }
  const pte = await memory.u64(table + ((virtual >> 12n) & 0xffn) * 8n, 'big');
  if (pte === undefined || (pte & PAGE_INVALID) !== 0n) return undefined;
  return (pte & ~0xfffn) | (virtual & 0xfffn);
}

export async function s390xKernelAddressSpace(guest: GuestModel): Promise<KernelAddressSpaceResult> {
  const desc = guest.vmcoreinfo?.name === 'VMCOREINFO' ? guest.vmcoreinfo.desc : undefined;
  if (desc === undefined) return { kind: 'unavailable', reason: 'the guest gave no VMCOREINFO' };
  const info = VmcoreinfoText.of(desc);
  const [origin, stext] = [info.hex('SYMBOL(swapper_pg_dir)'), info.hex('SYMBOL(_stext)')];
  if (origin === undefined || stext === undefined)
    return { kind: 'unavailable', reason: 'VMCOREINFO lacks swapper_pg_dir or _stext' };
  const memory = new GuestMemory(guest.ram);
  const level = await tableLevel(memory, origin);
  // The tables must map _stext onto itself (the identity map): a stale or foreign VMCOREINFO does not.
  if (level === undefined || (await translateS390x(memory, origin, level, stext)) !== stext)
    return { kind: 'unavailable', reason: 'swapper_pg_dir does not map _stext onto itself' };
  return { kind: 'mapped', space: { physical: (virtual) => translateS390x(memory, origin, level, virtual) } };
}
