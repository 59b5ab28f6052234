/**
 * Kernel virtual addresses of an aarch64 Linux guest through its own translation tables
 * (docs/dump-levels.md §2; Arm ARM D8, 4 KiB granule): swapper_pg_dir, the TTBR1 tables, at the
 * physical address kimage_voffset gives, walked from the level NUMBER(VA_BITS) starts at. A
 * descriptor's bits 1:0 say invalid (x0), block (01, levels 1 and 2) or table/page (11); its
 * output address is bits 47:12. Only what vmemmap and the linear map need: 4 KiB pages, 48-bit
 * physical addresses.
 */
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { GuestModel } from '../../guest/guest.js';
import type { KernelAddressSpaceResult } from '../target.js';

const OUTPUT_ADDRESS = 0x0000_ffff_ffff_f000n;
const GRANULE_SHIFT = 12n;

/** The physical address of `virtual` under the tables at `root`, or undefined. */
export async function translateAarch64(
  memory: GuestMemory,
  root: bigint,
  virtual: bigint,
  vaBits: number,
): Promise<bigint | undefined> {
  const levels = Math.ceil((vaBits - 12) / 9);
  let table = root & OUTPUT_ADDRESS;
  for (let level = 4 - levels; level <= 3; level += 1) {
    const shift = GRANULE_SHIFT + 9n * BigInt(3 - level);
    const index = (virtual >> shift) & (level === 4 - levels ? (1n << BigInt(vaBits - Number(shift))) - 1n : 0x1ffn);
    const entry = await memory.u64(table + index * 8n);
    if (entry === undefined || (entry & 1n) === 0n) return undefined;
    const isTable = (entry & 2n) === 2n;
    if (level === 3 || !isTable) {
      if (level === 0 || (level === 3 && !isTable)) return undefined; // no level-0 blocks; level 3 needs 11
      const span = (1n << shift) - 1n;
      return (entry & OUTPUT_ADDRESS & ~span) | (virtual & span);
    }
    table = entry & OUTPUT_ADDRESS;
  }
  return undefined;
}

export async function aarch64KernelAddressSpace(guest: GuestModel): Promise<KernelAddressSpaceResult> {
  const desc = guest.vmcoreinfo?.name === 'VMCOREINFO' ? guest.vmcoreinfo.desc : undefined;
  if (desc === undefined) return { kind: 'unavailable', reason: 'the guest gave no VMCOREINFO' };
  const info = VmcoreinfoText.of(desc);
  const [pgd, voffset, stext] = [
    info.hex('SYMBOL(swapper_pg_dir)'),
    info.hex('NUMBER(kimage_voffset)'),
    info.hex('SYMBOL(_stext)'),
  ];
  const vaBits = info.decimal('NUMBER(VA_BITS)');
  if (pgd === undefined || voffset === undefined || stext === undefined || vaBits === undefined)
    return { kind: 'unavailable', reason: 'VMCOREINFO lacks swapper_pg_dir, kimage_voffset, _stext or VA_BITS' };
  if (info.decimal('PAGESIZE') !== 4096n || vaBits < 25n || vaBits > 48n)
    return { kind: 'unavailable', reason: `vmdump walks 4 KiB-page tables of up to 48-bit addresses (VA_BITS ${vaBits})` };
  const memory = new GuestMemory(guest.ram);
  const root = BigInt.asUintN(64, pgd - voffset);
  const bits = Number(vaBits);
  // The tables must map _stext where kimage_voffset says: a stale or foreign VMCOREINFO does not.
  if ((await translateAarch64(memory, root, stext, bits)) !== BigInt.asUintN(64, stext - voffset))
    return { kind: 'unavailable', reason: 'swapper_pg_dir does not map _stext where kimage_voffset puts it' };
  return { kind: 'mapped', space: { physical: (virtual) => translateAarch64(memory, root, virtual, bits) } };
}
