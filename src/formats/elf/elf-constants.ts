/**
 * ELF constants under the names the specifications use (System V gABI, Linux elf.h,
 * QEMU include/elf.h). One module, so that a name means one number everywhere.
 */

/** e_ident[0..3]. */
export const ELF_MAGIC: readonly number[] = [0x7f, 0x45, 0x4c, 0x46];
export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const EV_CURRENT = 1;
export const ET_CORE = 4;

export const EM_386 = 3;
export const EM_PPC = 20;
export const EM_PPC64 = 21;
export const EM_S390 = 22;
export const EM_ARM = 40;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_RISCV = 243;

export const PT_LOAD = 1;
export const PT_NOTE = 4;

export const SHT_NULL = 0;
export const SHT_STRTAB = 3;

/** e_phnum value meaning "the real count is in section header 0's sh_info" (gABI, docs/elf-vmcore.md §3). */
export const PN_XNUM = 0xffff;

export const NT_PRSTATUS = 1;
/** Type of QEMU's CPU-state note (name "QEMU"), docs/elf-vmcore.md §7.2. */
export const NT_QEMU_CPUSTATE = 0;
/** Type Linux gives its VMCOREINFO note. */
export const NT_VMCOREINFO = 0;
/** Linux's core-note types (include/uapi/linux/elf.h) the aarch64 and s390x notes use (docs/other-arches.md §4). */
export const NT_PRFPREG = 2;
export const NT_ARM_SVE = 0x405;
export const NT_S390_TIMER = 0x301;
export const NT_S390_TODCMP = 0x302;
export const NT_S390_TODPREG = 0x303;
export const NT_S390_CTRS = 0x304;
export const NT_S390_PREFIX = 0x305;
export const NT_S390_VXRS_LOW = 0x309;
export const NT_S390_VXRS_HIGH = 0x30a;
export const NT_S390_GS_CB = 0x30b;

export const machineNames: Readonly<Record<number, string>> = {
  [EM_386]: 'EM_386',
  [EM_PPC]: 'EM_PPC',
  [EM_PPC64]: 'EM_PPC64',
  [EM_S390]: 'EM_S390',
  [EM_ARM]: 'EM_ARM',
  [EM_X86_64]: 'EM_X86_64',
  [EM_AARCH64]: 'EM_AARCH64',
  [EM_RISCV]: 'EM_RISCV',
};
