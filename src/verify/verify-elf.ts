/**
 * Structural check of an ELF core: identification, the program header table (PN_XNUM
 * included), every PT_LOAD's bytes inside the file, and each note inside PT_NOTE
 * (elf-vmcore.md §2–§7). The field layouts are the encoder's own tables, read instead of written.
 */
import { ET_CORE, PN_XNUM, PT_LOAD, PT_NOTE, machineNames } from '../model/elf-constants.js';
import { VmdumpError, hex } from '../model/errors.js';
import {
  NOT_IN_FILE, align4, elfHeaderFields, elfHeaderSize, programHeaderFields, programHeaderSize, sectionHeaderFields, sectionHeaderSize,
  type ElfHeader, type ElfTarget, type FieldLayout, type ProgramHeader, type SectionHeader,
} from '../transforms/elf-structs.js';
import type { DumpBytes } from './dump-bytes.js';

export interface ElfReport {
  readonly format: 'elf';
  readonly summary: string;
}

function decode<T>(bytes: Buffer, at: number, layout: FieldLayout<T>, target: ElfTarget): T {
  const little = target.endian === 'little';
  const value: Record<string, bigint | number> = {};
  let cursor = at;
  for (const [name, type] of layout) {
    const width = type === 'u16' ? 2 : type === 'u32' || target.elfClass === 32 ? 4 : 8;
    if (width === 2) value[name] = little ? bytes.readUInt16LE(cursor) : bytes.readUInt16BE(cursor);
    else if (width === 4) value[name] = type === 'word' ? BigInt(little ? bytes.readUInt32LE(cursor) : bytes.readUInt32BE(cursor)) : (little ? bytes.readUInt32LE(cursor) : bytes.readUInt32BE(cursor));
    else value[name] = little ? bytes.readBigUInt64LE(cursor) : bytes.readBigUInt64BE(cursor);
    cursor += width;
  }
  return value as T;
}

export async function verifyElf(bytes: DumpBytes, file: string): Promise<ElfReport> {
  const fail = (message: string): never => { throw new VmdumpError('bad-input', message, file); };
  const ident = await bytes.read(0, 64);
  if (ident.length < 52) fail(`truncated: ${ident.length} bytes cannot hold an ELF header`);
  const elfClass = ident[4] === 1 ? 32 : ident[4] === 2 ? 64 : fail(`EI_CLASS ${ident[4]} is neither ELFCLASS32 nor ELFCLASS64`);
  const endian = ident[5] === 1 ? 'little' : ident[5] === 2 ? 'big' : fail(`EI_DATA ${ident[5]} is neither little- nor big-endian`);
  if (ident[6] !== 1) fail(`EI_VERSION ${ident[6]} is not 1`);
  if (ident.length < elfHeaderSize(elfClass)) fail(`truncated: ${ident.length} bytes cannot hold an ELF${elfClass} header`);
  const target: ElfTarget = { elfClass, endian, machine: 0 };
  const header = decode<ElfHeader>(ident, 16, elfHeaderFields, target);
  if (header.type !== ET_CORE) fail(`e_type ${header.type} is not ET_CORE (4)`);
  if (header.phentsize !== programHeaderSize(elfClass)) fail(`e_phentsize ${header.phentsize} is not ${programHeaderSize(elfClass)} (ELF${elfClass})`);
  if (header.shnum > 0) {
    if (header.shentsize !== sectionHeaderSize(elfClass)) fail(`e_shentsize ${header.shentsize} is not ${sectionHeaderSize(elfClass)} (ELF${elfClass})`);
    const sectionsEnd = header.shoff + BigInt(header.shnum * header.shentsize);
    if (sectionsEnd > BigInt(bytes.size)) fail(`the section header table [${hex(header.shoff)}, ${hex(sectionsEnd)}) runs past the end of the file (${hex(bytes.size)})`);
  }
  const count = await programHeaderCount(bytes, header, target, fail);
  const tableEnd = header.phoff + BigInt(count * header.phentsize);
  if (tableEnd > BigInt(bytes.size)) fail(`the program header table [${hex(header.phoff)}, ${hex(tableEnd)}) runs past the end of the file (${hex(bytes.size)})`);
  const table = await bytes.read(Number(header.phoff), count * header.phentsize);
  const phdrs = Array.from({ length: count }, (_, i) => decode<ProgramHeader>(table, i * header.phentsize, programHeaderFields[elfClass], target));
  let memory = 0n;
  let loads = 0;
  const notes: string[] = [];
  for (const [i, ph] of phdrs.entries()) {
    const inFile = ph.filesz > 0n && ph.offset !== NOT_IN_FILE && !(elfClass === 32 && ph.offset === 0xffff_ffffn);
    if (inFile && ph.offset + ph.filesz > BigInt(bytes.size)) {
      fail(`program header ${i} (${ph.type === PT_LOAD ? 'PT_LOAD' : ph.type === PT_NOTE ? 'PT_NOTE' : `type ${ph.type}`}): bytes [${hex(ph.offset)}, ${hex(ph.offset + ph.filesz)}) run past the end of the file (${hex(bytes.size)})`);
    }
    if (ph.type === PT_LOAD) {
      if (ph.filesz > ph.memsz) fail(`PT_LOAD ${i}: p_filesz ${hex(ph.filesz)} exceeds p_memsz ${hex(ph.memsz)}`);
      loads += 1;
      memory += ph.filesz;
    } else if (ph.type === PT_NOTE && inFile) {
      notes.push(...checkNotes(await bytes.read(Number(ph.offset), Number(ph.filesz)), endian, `PT_NOTE ${i}`, fail));
    }
  }
  const machine = machineNames[header.machine] ?? `machine ${header.machine}`;
  const prstatus = notes.filter((n) => n === 'CORE/1').length;
  return {
    format: 'elf',
    summary: `ELF${elfClass} ${endian}-endian ${machine} core: ${count} program headers, ${loads} PT_LOAD (${memory} bytes of memory), `
      + `${notes.length} notes (${prstatus} NT_PRSTATUS${notes.includes('VMCOREINFO/0') ? ', VMCOREINFO' : ''})`,
  };
}

/** e_phnum, or with PN_XNUM the real count from section header 0's sh_info (elf-vmcore.md §5). */
async function programHeaderCount(bytes: DumpBytes, header: ElfHeader, target: ElfTarget, fail: (m: string) => never): Promise<number> {
  if (header.phnum !== PN_XNUM) return header.phnum;
  const size = sectionHeaderSize(target.elfClass);
  if (header.shnum === 0 && header.shoff === 0n) fail('e_phnum is PN_XNUM but there is no section header 0 to hold the count');
  if (header.shoff + BigInt(size) > BigInt(bytes.size)) fail(`section header 0 at ${hex(header.shoff)} runs past the end of the file (${hex(bytes.size)})`);
  const section = decode<SectionHeader>(await bytes.read(Number(header.shoff), size), 0, sectionHeaderFields, target);
  return section.info;
}

/**
 * Each note's header and padded name and desc must end inside `segment`, the last exactly at its
 * end; returns `name/type` per note. Shared by the ELF and kdump checks (`where` names the area).
 */
export function checkNotes(segment: Buffer, endian: 'little' | 'big', where: string, fail: (m: string) => never): string[] {
  const names: string[] = [];
  for (let at = 0; at < segment.length;) {
    if (at + 12 > segment.length) fail(`${where}: ${segment.length - at} bytes left at offset ${at}, too few for a note header`);
    const u32 = (o: number): number => (endian === 'little' ? segment.readUInt32LE(at + o) : segment.readUInt32BE(at + o));
    const [namesz, descsz, type] = [u32(0), u32(4), u32(8)];
    const end = at + 12 + align4(namesz) + align4(descsz);
    if (end > segment.length) {
      fail(`${where}: note ${names.length} (n_namesz ${namesz}, n_descsz ${descsz}) ends at ${end}, past the segment's ${segment.length} bytes`);
    }
    names.push(`${segment.toString('latin1', at + 12, at + 12 + Math.max(0, namesz - 1))}/${type}`);
    at = end;
  }
  return names;
}
