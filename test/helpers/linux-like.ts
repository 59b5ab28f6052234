/**
 * Hand-built x86_64 "Linux" memory for tests: a kernel's top page table, direct map, image
 * mapping and init_uts_ns where its VMCOREINFO says (docs/elf-vmcore.md §9.1), built from the
 * kernel's rules, not from vmdump's code.
 */
export const MiB = 1 << 20;
export const DIRECT_MAP = 0xffff_8880_0000_0000n;
/** __START_KERNEL_map + 32 MiB: init_top_pgt at physical 32 MiB (phys_base 0). */
export const INIT_TOP_PGT = 0xffff_ffff_8200_0000n;
/** init_uts_ns in the kernel image: physical 33 MiB; its `name` 4 bytes in (OFFSET(uts_namespace.name)). */
export const INIT_UTS_NS = 0xffff_ffff_8210_0000n;
export const UTSNAME = [
  'Linux',
  'vmdump-test',
  '6.1.0-test',
  '#1 SMP PREEMPT_DYNAMIC Debian 6.1.0-test (2026-12-02)',
  'x86_64',
  '(none)',
];

/** The VMCOREINFO of a kernel loaded `physBase` above its link address. */
export function vmcoreinfoText(physBase: number, release: string): string {
  return [
    `OSRELEASE=${release}`,
    'PAGESIZE=4096',
    `SYMBOL(_stext)=ffffffff81000000`,
    `SYMBOL(init_top_pgt)=${INIT_TOP_PGT.toString(16)}`,
    `NUMBER(phys_base)=${physBase}`,
    'NUMBER(KERNEL_IMAGE_SIZE)=1073741824',
    'KERNELOFFSET=0',
    `SYMBOL(init_uts_ns)=${INIT_UTS_NS.toString(16)}`,
    'OFFSET(uts_namespace.name)=4',
    '',
  ].join('\n');
}

/**
 * A kernel loaded `physBase` above its link address: its top page table (at init_top_pgt's
 * physical address) maps the direct map with a 1 GiB page at physical 0 and its image with
 * 2 MiB pages; its init_uts_ns says `release`.
 */
export function mapKernel(ram: Buffer, physBase: number, release: string = UTSNAME[2]!): number {
  const pml4 = 32 * MiB + physBase;
  const [pdpt, imagePdpt, imagePd] = [pml4 + 0x1000, pml4 + 0x2000, pml4 + 0x3000];
  ram.fill(0, pml4, pml4 + 0x4000);
  ram.writeBigUInt64LE(BigInt(pdpt) | 0x3n, pml4 + 8 * Number((DIRECT_MAP >> 39n) & 0x1ffn)); // present, writable
  ram.writeBigUInt64LE(0x83n, pdpt); // 1 GiB page at physical 0: present, writable, PS
  ram.writeBigUInt64LE(BigInt(imagePdpt) | 0x3n, pml4 + 8 * 511);
  ram.writeBigUInt64LE(BigInt(imagePd) | 0x3n, imagePdpt + 8 * 510); // 0xffffffff80000000
  for (let entry = 0; entry < 32; entry += 1) {
    ram.writeBigUInt64LE(BigInt(physBase + entry * 2 * MiB) | 0x83n, imagePd + 8 * entry);
  }
  const uts = 33 * MiB + physBase + 4;
  ram.fill(0, uts, uts + 6 * 65);
  [...UTSNAME.slice(0, 2), release, ...UTSNAME.slice(3)].forEach((field, i) => ram.write(field, uts + 65 * i, 'latin1'));
  return pml4;
}
