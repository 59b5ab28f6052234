/**
 * VMCOREINFO text → the facts a layout needs. Linux prints SYMBOL()s in hex and NUMBER()s in
 * decimal (NUMBER(phys_base) is negative under KASLR), and KERNELOFFSET in hex.
 */
import { vmcoreinfoFields } from '../model/vmcoreinfo-fields.js';
import type { LinuxMappingFacts } from './memory-mapping.js';

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

export { vmcoreinfoField } from '../model/vmcoreinfo-fields.js';

/** undefined when the note is not an x86_64 Linux VMCOREINFO with what the layout needs. */
export function parseLinuxVmcoreinfo(desc: Uint8Array): LinuxKernelInfo | undefined {
  const f = vmcoreinfoFields(new TextDecoder('latin1').decode(desc));
  const hexOf = (key: string): bigint | undefined => { const v = f.get(key); return v !== undefined && /^[0-9a-f]+$/i.test(v) ? BigInt(`0x${v}`) : undefined; };
  const decOf = (key: string): bigint | undefined => { const v = f.get(key); return v !== undefined && /^-?\d+$/.test(v) ? BigInt(v) : undefined; };
  const osRelease = f.get('OSRELEASE');
  const stext = hexOf('SYMBOL(_stext)');
  const initTopPgt = hexOf('SYMBOL(init_top_pgt)');
  const physBase = decOf('NUMBER(phys_base)');
  if (osRelease === undefined || stext === undefined || initTopPgt === undefined || physBase === undefined) return undefined;
  return {
    osRelease, stext, initTopPgt, physBase,
    kernelOffset: hexOf('KERNELOFFSET') ?? 0n,
    fiveLevel: decOf('NUMBER(pgtable_l5_enabled)') === 1n,
    kernelImageSize: decOf('NUMBER(KERNEL_IMAGE_SIZE)') ?? 1n << 30n,
  };
}

/** __pa_symbol(): a kernel-image virtual address → physical, modulo 2^64 (phys_base may be negative). */
export function kernelImagePhysical(info: LinuxKernelInfo, virtual: bigint): bigint {
  return (((virtual - START_KERNEL_MAP + info.physBase) % U64) + U64) % U64;
}

/**
 * Where a Linux aarch64 kernel maps memory, from its VMCOREINFO alone (other-arches.md §7
 * experiment): the linear map puts physical PHYS_OFFSET at PAGE_OFFSET = -2^VA_BITS, the image
 * is at physical + kimage_voffset. The image's end is not in VMCOREINFO; the highest image
 * symbol it names (clear_seq, in .bss, ~0.6 MiB before _end on 6.1) rounded up to 2 MiB bounds it.
 */
export function aarch64LinuxFacts(desc: Uint8Array): { facts: LinuxMappingFacts; osRelease: string } | { reason: string } {
  const f = vmcoreinfoFields(new TextDecoder('latin1').decode(desc));
  const hexOf = (key: string): bigint | undefined => {
    const v = f.get(key)?.replace(/^0x/i, '');
    return v !== undefined && /^[0-9a-f]+$/i.test(v) ? BigInt(`0x${v}`) : undefined;
  };
  const vaBits = f.get('NUMBER(VA_BITS)');
  const [stext, kimageVoffset, physOffset] = [hexOf('SYMBOL(_stext)'), hexOf('NUMBER(kimage_voffset)'), hexOf('NUMBER(PHYS_OFFSET)')];
  if (vaBits === undefined || !/^\d+$/.test(vaBits) || stext === undefined || kimageVoffset === undefined || physOffset === undefined) {
    return { reason: 'VMCOREINFO lacks VA_BITS, _stext, kimage_voffset or PHYS_OFFSET' };
  }
  const pageOffset = BigInt.asUintN(64, -(1n << BigInt(vaBits)));
  const imageSymbols = [...f].filter(([key]) => key.startsWith('SYMBOL(')).map(([key]) => hexOf(key) ?? 0n)
    .filter((address) => address >= stext && address - stext < 1n << 30n);
  const highest = imageSymbols.reduce((a, b) => (a > b ? a : b), stext);
  const twoMiB = 2n << 20n;
  return {
    osRelease: f.get('OSRELEASE') ?? '',
    facts: {
      directMapBase: BigInt.asUintN(64, pageOffset - physOffset),
      kernelTextVirtual: stext,
      kernelTextPhysical: BigInt.asUintN(64, stext - kimageVoffset),
      kernelImageEnd: ((highest / twoMiB) + 1n) * twoMiB,
    },
  };
}
