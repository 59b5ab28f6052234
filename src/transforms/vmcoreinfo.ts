/**
 * VMCOREINFO text → the facts a layout needs. Linux prints SYMBOL()s in hex and NUMBER()s in
 * decimal (NUMBER(phys_base) is negative under KASLR), and KERNELOFFSET in hex.
 */
import { vmcoreinfoFields } from '../model/vmcoreinfo-fields.js';

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
