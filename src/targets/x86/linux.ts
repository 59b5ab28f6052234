/**
 * Where a Linux x86_64 kernel maps memory (docs/elf-vmcore.md §9.1): VMCOREINFO says where its
 * image is and where its top page table sits; the direct-map base (page_offset_base) is found in
 * the guest's own page tables, so KASLR is handled: the lowest kernel-half virtual address that
 * maps physical 0. KASLR moves the base per boot in 1 GiB steps, so each 1 GiB-aligned candidate
 * is translated; no constant is assumed.
 */
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import { GuestMemory } from '../../guest/guest-memory.js';
import type { GuestModel } from '../../guest/guest.js';
import type { KernelAddressSpaceResult, LinuxLayoutDecision, LinuxMappingFacts } from '../target.js';
import { EFER_LMA, pagingEnabled } from './architecture.js';
import { CR4_LA57, topLevelPresent, topLevelShift, translate } from './paging.js';

export interface LinuxKernelInfo {
  readonly osRelease: string;
  readonly stext: bigint;
  readonly initTopPgt: bigint;
  readonly physBase: bigint;
  readonly kernelOffset: bigint;
  readonly fiveLevel: boolean;
  /** NUMBER(KERNEL_IMAGE_SIZE): the kernel image mapping spans [__START_KERNEL_map, + this). */
  readonly kernelImageSize: bigint;
}

/** __START_KERNEL_map: where x86_64 maps the kernel image (arch/x86/include/asm/page_64_types.h). */
export const START_KERNEL_MAP = 0xffffffff80000000n;
const U64 = 1n << 64n;
const GIB = 1n << 30n;

/** undefined when the note is not an x86_64 Linux VMCOREINFO with what the layout needs. */
export function parseLinuxVmcoreinfo(desc: Uint8Array): LinuxKernelInfo | undefined {
  const info = VmcoreinfoText.of(desc);
  const osRelease = info.string('OSRELEASE');
  const stext = info.hex('SYMBOL(_stext)');
  const initTopPgt = info.hex('SYMBOL(init_top_pgt)');
  const physBase = info.decimal('NUMBER(phys_base)');
  if (osRelease === undefined || stext === undefined || initTopPgt === undefined || physBase === undefined) return undefined;
  return {
    osRelease,
    stext,
    initTopPgt,
    physBase,
    kernelOffset: info.hex('KERNELOFFSET') ?? 0n,
    fiveLevel: info.decimal('NUMBER(pgtable_l5_enabled)') === 1n,
    kernelImageSize: info.decimal('NUMBER(KERNEL_IMAGE_SIZE)') ?? GIB,
  };
}

/** __pa_symbol(): a kernel-image virtual address → physical, modulo 2^64 (phys_base may be negative). */
export function kernelImagePhysical(info: LinuxKernelInfo, virtual: bigint): bigint {
  return (((virtual - START_KERNEL_MAP + info.physBase) % U64) + U64) % U64;
}

/** The lowest kernel-half virtual address that maps physical 0 under the tables at `topTable`. */
export async function findDirectMapBase(memory: GuestMemory, topTable: bigint, fiveLevel: boolean): Promise<bigint | undefined> {
  const levels = fiveLevel ? 5 : 4;
  // The kernel half starts at 0xff00000000000000 (5-level) or 0xffff800000000000 (4-level).
  const start = fiveLevel ? 0xff00_0000_0000_0000n : 0xffff_8000_0000_0000n;
  const shift = topLevelShift(levels);
  for (let candidate = start; candidate < START_KERNEL_MAP; candidate += GIB) {
    if (!(await topLevelPresent(memory, topTable, candidate, levels))) {
      candidate = (((candidate >> shift) + 1n) << shift) - GIB;
      continue;
    }
    if ((await translate(memory, topTable, candidate, levels)) === 0n) return candidate;
  }
  return undefined;
}

/** The kernel's top page table, checked: it must map _stext where phys_base puts it (a stale or foreign VMCOREINFO does not). */
interface KernelTables {
  readonly info: LinuxKernelInfo;
  readonly memory: GuestMemory;
  readonly topTable: bigint;
  readonly levels: 4 | 5;
}

async function kernelTables(guest: GuestModel): Promise<KernelTables | { readonly reason: string }> {
  if (guest.arch.name !== 'x86_64') return { reason: `the guest is ${guest.arch.name}, not x86_64 in long mode` };
  if (guest.vmcoreinfo === undefined || guest.vmcoreinfo.name !== 'VMCOREINFO') return { reason: 'the guest gave no VMCOREINFO' };
  const info = parseLinuxVmcoreinfo(guest.vmcoreinfo.desc);
  if (info === undefined) return { reason: 'VMCOREINFO lacks _stext, init_top_pgt or phys_base' };
  const memory = new GuestMemory(guest.ram);
  const topTable = kernelImagePhysical(info, info.initTopPgt);
  const levels = info.fiveLevel ? 5 : 4;
  if ((await translate(memory, topTable, info.stext, levels)) !== kernelImagePhysical(info, info.stext))
    return { reason: "VMCOREINFO's init_top_pgt does not map _stext where phys_base puts it" };
  return { info, memory, topTable, levels };
}

export async function x86LinuxLayout(guest: GuestModel): Promise<LinuxLayoutDecision> {
  const tables = await kernelTables(guest);
  if ('reason' in tables) return { kind: 'unavailable', reason: tables.reason };
  const { info, memory, topTable } = tables;
  const directMapBase = await findDirectMapBase(memory, topTable, info.fiveLevel);
  if (directMapBase === undefined)
    return { kind: 'unavailable', reason: "no direct map of physical 0 in the kernel's page tables" };
  return {
    kind: 'mapped',
    osRelease: info.osRelease,
    facts: {
      directMapBase,
      kernelTextVirtual: info.stext,
      kernelTextPhysical: kernelImagePhysical(info, info.stext),
      kernelImageEnd: START_KERNEL_MAP + info.kernelImageSize,
    },
  };
}

/**
 * Whether a vCPU runs the kernel these facts describe: its CR3 (PCID bits masked) maps _stext to
 * the same physical page. Tells the running kernel from another one whose memory is still intact
 * (the kernel a kdump kernel took over from, or one kexec replaced).
 */
export async function x86KernelOnVcpus(guest: GuestModel, facts: LinuxMappingFacts): Promise<boolean> {
  const memory = new GuestMemory(guest.ram);
  for (const vcpu of guest.vcpus) {
    const state = vcpu.state;
    if (state.kind !== 'x86' || !pagingEnabled(state) || (state.efer & EFER_LMA) === 0n) continue;
    const levels = (state.cr4 & CR4_LA57) !== 0n ? 5 : 4;
    if ((await translate(memory, state.cr3, facts.kernelTextVirtual, levels)) === facts.kernelTextPhysical) return true;
  }
  return false;
}

/** Kernel virtual addresses through init_top_pgt, as the kernel maps them: the direct map, vmemmap, its image. */
export async function x86KernelAddressSpace(guest: GuestModel): Promise<KernelAddressSpaceResult> {
  const tables = await kernelTables(guest);
  if ('reason' in tables) return { kind: 'unavailable', reason: tables.reason };
  const { memory, topTable, levels } = tables;
  return { kind: 'mapped', space: { physical: (virtual) => translate(memory, topTable, virtual, levels) } };
}
