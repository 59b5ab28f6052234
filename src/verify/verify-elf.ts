/**
 * Structural check of an ELF core: identification, the program header table (PN_XNUM
 * included), every PT_LOAD's bytes inside the file, and each note inside PT_NOTE
 * (docs/elf-vmcore.md §2–§7). The field layouts are the encoder's own tables, read instead of written.
 */
import { ET_CORE, PN_XNUM, PT_LOAD, PT_NOTE, machineNames } from '../formats/elf/elf-constants.js';
import { VmdumpError, hex } from '../guest/errors.js';
import {
  NOT_IN_FILE,
  elfHeaderFields,
  elfHeaderSize,
  programHeaderFields,
  programHeaderSize,
  sectionHeaderFields,
  sectionHeaderSize,
  type ElfHeader,
  type ElfTarget,
  type ProgramHeader,
  type SectionHeader,
} from '../formats/elf/elf-structs.js';
import { decodeNotes, decodeStruct } from '../formats/elf/elf-decode.js';
import type { DumpBytes } from './dump-bytes.js';

export interface ElfReport {
  readonly format: 'elf';
  readonly summary: string;
  readonly warnings: readonly string[];
}

export async function verifyElf(bytes: DumpBytes, file: string): Promise<ElfReport> {
  const fail = (message: string): never => {
    throw new VmdumpError('bad-input', message, file);
  };
  const ident = await bytes.read(0, 64);
  if (ident.length < 52) fail(`truncated: ${ident.length} bytes cannot hold an ELF header`);
  const elfClass = ident[4] === 1 ? 32 : ident[4] === 2 ? 64 : fail(`EI_CLASS ${ident[4]} is neither ELFCLASS32 nor ELFCLASS64`);
  const endian =
    ident[5] === 1 ? 'little' : ident[5] === 2 ? 'big' : fail(`EI_DATA ${ident[5]} is neither little- nor big-endian`);
  if (ident[6] !== 1) fail(`EI_VERSION ${ident[6]} is not 1`);
  if (ident.length < elfHeaderSize(elfClass)) fail(`truncated: ${ident.length} bytes cannot hold an ELF${elfClass} header`);
  const target: ElfTarget = { elfClass, endian, machine: 0 };
  const header = decodeStruct<ElfHeader>(ident, 16, elfHeaderFields, target);
  if (header.type !== ET_CORE) fail(`e_type ${header.type} is not ET_CORE (4)`);
  if (header.phentsize !== programHeaderSize(elfClass))
    fail(`e_phentsize ${header.phentsize} is not ${programHeaderSize(elfClass)} (ELF${elfClass})`);
  if (header.shnum > 0) {
    if (header.shentsize !== sectionHeaderSize(elfClass))
      fail(`e_shentsize ${header.shentsize} is not ${sectionHeaderSize(elfClass)} (ELF${elfClass})`);
    const sectionsEnd = header.shoff + BigInt(header.shnum * header.shentsize);
    if (sectionsEnd > BigInt(bytes.size))
      fail(
        `the section header table [${hex(header.shoff)}, ${hex(sectionsEnd)}) runs past the end of the file (${hex(bytes.size)})`,
      );
  }
  const count = await programHeaderCount(bytes, header, target, fail);
  const tableEnd = header.phoff + BigInt(count * header.phentsize);
  if (tableEnd > BigInt(bytes.size))
    fail(`the program header table [${hex(header.phoff)}, ${hex(tableEnd)}) runs past the end of the file (${hex(bytes.size)})`);
  const table = await bytes.read(Number(header.phoff), count * header.phentsize);
  const phdrs = Array.from({ length: count }, (_, i) =>
    decodeStruct<ProgramHeader>(table, i * header.phentsize, programHeaderFields[elfClass], target),
  );
  let memory = 0n;
  let loads = 0;
  const notes: string[] = [];
  for (const [i, ph] of phdrs.entries()) {
    const inFile = ph.filesz > 0n && ph.offset !== NOT_IN_FILE && !(elfClass === 32 && ph.offset === 0xffff_ffffn);
    if (inFile && ph.offset + ph.filesz > BigInt(bytes.size)) {
      fail(
        `program header ${i} (${ph.type === PT_LOAD ? 'PT_LOAD' : ph.type === PT_NOTE ? 'PT_NOTE' : `type ${ph.type}`}): bytes [${hex(ph.offset)}, ${hex(ph.offset + ph.filesz)}) run past the end of the file (${hex(bytes.size)})`,
      );
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
    warnings: [],
    summary:
      `ELF${elfClass} ${endian}-endian ${machine} core: ${count} program headers, ${loads} PT_LOAD (${memory} bytes of memory), ` +
      `${notes.length} notes (${prstatus} NT_PRSTATUS${notes.includes('VMCOREINFO/0') ? ', VMCOREINFO' : ''})`,
  };
}

/** e_phnum, or with PN_XNUM the real count from section header 0's sh_info (docs/elf-vmcore.md §5). */
async function programHeaderCount(
  bytes: DumpBytes,
  header: ElfHeader,
  target: ElfTarget,
  fail: (m: string) => never,
): Promise<number> {
  if (header.phnum !== PN_XNUM) return header.phnum;
  const size = sectionHeaderSize(target.elfClass);
  if (header.shnum === 0 && header.shoff === 0n) fail('e_phnum is PN_XNUM but there is no section header 0 to hold the count');
  if (header.shoff + BigInt(size) > BigInt(bytes.size))
    fail(`section header 0 at ${hex(header.shoff)} runs past the end of the file (${hex(bytes.size)})`);
  const section = decodeStruct<SectionHeader>(await bytes.read(Number(header.shoff), size), 0, sectionHeaderFields, target);
  return section.info;
}

/**
 * Each note's header and padded name and desc must end inside `segment`, the last exactly at its
 * end; returns `name/type` per note. Shared by the ELF and kdump checks (`where` names the area).
 */
export function checkNotes(segment: Buffer, endian: 'little' | 'big', where: string, fail: (m: string) => never): string[] {
  const { notes, damage } = decodeNotes(segment, endian);
  if (damage?.kind === 'short-header')
    fail(`${where}: ${damage.left} bytes left at offset ${damage.at}, too few for a note header`);
  if (damage?.kind === 'overrun') {
    fail(
      `${where}: note ${damage.index} (n_namesz ${damage.namesz}, n_descsz ${damage.descsz}) ends at ${damage.end}, past the segment's ${segment.length} bytes`,
    );
  }
  return notes.map((note) => `${note.name}/${note.type}`);
}
