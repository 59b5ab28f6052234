/**
 * ELF structures as values, and their field layouts as data. The encoder (elf-encode.ts)
 * is the only place that knows sizes and byte order; records carry native values.
 */
import type { ElfClass, Endian } from '../../guest/guest.js';

/** What every encoded byte depends on: class and byte order (and the machine, for the header). */
export interface ElfTarget {
  readonly elfClass: ElfClass;
  readonly endian: Endian;
  readonly machine: number;
}

export interface ElfHeader {
  readonly type: number;
  readonly machine: number;
  readonly version: number;
  readonly entry: bigint;
  readonly phoff: bigint;
  readonly shoff: bigint;
  readonly flags: number;
  /** Normally the header's own size; QEMU 7.2 writes 8 (docs/elf-vmcore.md §2). */
  readonly ehsize: number;
  readonly phentsize: number;
  /** The real count; the encoder writes PN_XNUM from 0xffff up (the count then lives in section header 0's sh_info). */
  readonly phnum: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
}

export interface ProgramHeader {
  readonly type: number;
  readonly flags: number;
  /** NOT_IN_FILE for a segment with no bytes in the file (QEMU writes all ones). */
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly paddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
  readonly align: bigint;
}

export interface SectionHeader {
  readonly name: number;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: bigint;
  readonly size: bigint;
  readonly link: number;
  readonly info: number;
  readonly addralign: bigint;
  readonly entsize: bigint;
  /** Only to reproduce QEMU 7.2 writing a header in its host's byte order (docs/other-arches.md §4.3 bug 1). */
  readonly writtenAs?: Endian;
}

/** All-ones file offset: "this segment has no bytes in the file" (docs/elf-vmcore.md §4). Encodes as 0xFFFFFFFF in ELF32. */
export const NOT_IN_FILE = 0xffff_ffff_ffff_ffffn;

/** u16/u32 are fixed; `word` is 4 bytes in ELF32 and 8 in ELF64 (addresses, offsets, sizes). */
export type FieldType = 'u16' | 'u32' | 'word';
export type FieldLayout<T> = readonly (readonly [keyof T & string, FieldType])[];

export const ELF_IDENT_SIZE = 16;

/** Fields after e_ident; identical order in both classes, only `word` widths differ. */
export const elfHeaderFields: FieldLayout<ElfHeader> = [
  ['type', 'u16'],
  ['machine', 'u16'],
  ['version', 'u32'],
  ['entry', 'word'],
  ['phoff', 'word'],
  ['shoff', 'word'],
  ['flags', 'u32'],
  ['ehsize', 'u16'],
  ['phentsize', 'u16'],
  ['phnum', 'u16'],
  ['shentsize', 'u16'],
  ['shnum', 'u16'],
  ['shstrndx', 'u16'],
];

/** Elf64_Phdr moves p_flags up next to p_type; Elf32_Phdr keeps it after p_memsz. */
export const programHeaderFields: Readonly<Record<ElfClass, FieldLayout<ProgramHeader>>> = {
  64: [
    ['type', 'u32'],
    ['flags', 'u32'],
    ['offset', 'word'],
    ['vaddr', 'word'],
    ['paddr', 'word'],
    ['filesz', 'word'],
    ['memsz', 'word'],
    ['align', 'word'],
  ],
  32: [
    ['type', 'u32'],
    ['offset', 'word'],
    ['vaddr', 'word'],
    ['paddr', 'word'],
    ['filesz', 'word'],
    ['memsz', 'word'],
    ['flags', 'u32'],
    ['align', 'word'],
  ],
};

export const sectionHeaderFields: FieldLayout<Omit<SectionHeader, 'writtenAs'>> = [
  ['name', 'u32'],
  ['type', 'u32'],
  ['flags', 'word'],
  ['addr', 'word'],
  ['offset', 'word'],
  ['size', 'word'],
  ['link', 'u32'],
  ['info', 'u32'],
  ['addralign', 'word'],
  ['entsize', 'word'],
];

export function elfHeaderSize(elfClass: ElfClass): number {
  return elfClass === 64 ? 64 : 52;
}
export function programHeaderSize(elfClass: ElfClass): number {
  return elfClass === 64 ? 56 : 32;
}
export function sectionHeaderSize(elfClass: ElfClass): number {
  return elfClass === 64 ? 64 : 40;
}

/** Note header (3 × u32) is 12 bytes in both classes; name and desc pad to 4 (docs/elf-vmcore.md §7.2). */
export const NOTE_HEADER_SIZE = 12;
/** Arithmetic, not `& ~3`: a 32-bit field read from a damaged file may exceed 2^31. */
export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
export function encodedNoteSize(nameBytesWithNul: number, descBytes: number): number {
  return NOTE_HEADER_SIZE + align4(nameBytesWithNul) + align4(descBytes);
}
