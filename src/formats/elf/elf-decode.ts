/**
 * Reading ELF back: structures through the encoder's own field tables (elf-structs.ts), and
 * notes. The one note walker serves the live source (QEMU's notes dump), `vmdump verify`, the
 * guest's VMCOREINFO note in RAM and a VMCOREINFO file (docs/elf-vmcore.md §7.2).
 */
import { ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ELF_MAGIC, PT_NOTE } from './elf-constants.js';
import { VmdumpError } from '../../guest/errors.js';
import type { ElfClass, Endian } from '../../guest/guest.js';
import {
  NOTE_HEADER_SIZE,
  align4,
  elfHeaderFields,
  programHeaderFields,
  type ElfHeader,
  type ElfTarget,
  type FieldLayout,
  type ProgramHeader,
} from './elf-structs.js';

/** Integers of one byte order out of a buffer. */
export class EndianReader {
  private readonly view: DataView;
  private readonly little: boolean;
  constructor(
    readonly bytes: Uint8Array,
    endian: Endian,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.little = endian === 'little';
  }
  u16(at: number): number {
    return this.view.getUint16(at, this.little);
  }
  u32(at: number): number {
    return this.view.getUint32(at, this.little);
  }
  u64(at: number): bigint {
    return this.view.getBigUint64(at, this.little);
  }
  u64s(at: number, count: number): bigint[] {
    return Array.from({ length: count }, (_, i) => this.u64(at + 8 * i));
  }
}

/** The inverse of the encoder's encodeStruct: `word` fields come back as bigint. */
export function decodeStruct<T>(
  bytes: Uint8Array,
  at: number,
  layout: FieldLayout<T>,
  target: Pick<ElfTarget, 'elfClass' | 'endian'>,
): T {
  const reader = new EndianReader(bytes, target.endian);
  const value: Record<string, bigint | number> = {};
  let cursor = at;
  for (const [name, type] of layout) {
    if (type === 'u16') {
      value[name] = reader.u16(cursor);
      cursor += 2;
    } else if (type === 'u32') {
      value[name] = reader.u32(cursor);
      cursor += 4;
    } else if (target.elfClass === 32) {
      value[name] = BigInt(reader.u32(cursor));
      cursor += 4;
    } else {
      value[name] = reader.u64(cursor);
      cursor += 8;
    }
  }
  return value as T;
}

export interface DecodedNote {
  readonly name: string;
  readonly type: number;
  readonly desc: Uint8Array;
  /** Where its header starts in the walked bytes. */
  readonly at: number;
}

/** Why a walk stopped early: where, and what the header said. */
export type NoteDamage =
  | { readonly kind: 'short-header'; readonly at: number; readonly left: number }
  | {
      readonly kind: 'overrun';
      readonly index: number;
      readonly at: number;
      readonly namesz: number;
      readonly descsz: number;
      readonly end: number;
    };

/**
 * Every note in `bytes` (a PT_NOTE's contents), in order; stops at the first note whose header,
 * padded name or padded desc would end past `bytes`, and says so.
 */
export function decodeNotes(bytes: Uint8Array, endian: Endian): { notes: DecodedNote[]; damage?: NoteDamage } {
  const reader = new EndianReader(bytes, endian);
  const notes: DecodedNote[] = [];
  for (let at = 0; at < bytes.length;) {
    if (at + NOTE_HEADER_SIZE > bytes.length) return { notes, damage: { kind: 'short-header', at, left: bytes.length - at } };
    const [namesz, descsz, type] = [reader.u32(at), reader.u32(at + 4), reader.u32(at + 8)];
    const descAt = at + NOTE_HEADER_SIZE + align4(namesz);
    const end = descAt + align4(descsz);
    if (end > bytes.length) return { notes, damage: { kind: 'overrun', index: notes.length, at, namesz, descsz, end } };
    const name = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(
      'latin1',
      at + NOTE_HEADER_SIZE,
      at + NOTE_HEADER_SIZE + Math.max(0, namesz - 1),
    );
    notes.push({ name, type, desc: bytes.subarray(descAt, descAt + descsz), at });
    at = end;
  }
  return { notes };
}

/** The note at the start of `bytes` (which may hold more after it), or undefined if it runs past them. */
export function decodeFirstNote(bytes: Uint8Array, endian: Endian): DecodedNote | undefined {
  if (bytes.length < NOTE_HEADER_SIZE) return undefined;
  const reader = new EndianReader(bytes, endian);
  const size = NOTE_HEADER_SIZE + align4(reader.u32(0)) + align4(reader.u32(4));
  if (size > bytes.length) return undefined;
  return decodeNotes(bytes.subarray(0, size), endian).notes[0];
}

/** Size of the note whose 12-byte header is `header`, padding included. */
export function noteSizeFromHeader(header: Uint8Array, endian: Endian): number {
  const reader = new EndianReader(header, endian);
  return NOTE_HEADER_SIZE + align4(reader.u32(0)) + align4(reader.u32(4));
}

/** The identification bytes of an ELF file: class and byte order, or a reason it is not ELF. */
export function decodeIdent(ident: Uint8Array): { elfClass: ElfClass; endian: Endian } | { reason: string } {
  if (ident.length < 16 || !ELF_MAGIC.every((b, i) => ident[i] === b)) return { reason: 'no ELF magic' };
  const elfClass = ident[4] === ELFCLASS32 ? 32 : ident[4] === ELFCLASS64 ? 64 : undefined;
  if (elfClass === undefined) return { reason: `EI_CLASS ${ident[4]} is neither ELFCLASS32 nor ELFCLASS64` };
  const endian = ident[5] === ELFDATA2LSB ? 'little' : ident[5] === ELFDATA2MSB ? 'big' : undefined;
  if (endian === undefined) return { reason: `EI_DATA ${ident[5]} is neither little- nor big-endian` };
  return { elfClass, endian };
}

/** A small whole ELF core in memory (QEMU's 4 KiB notes dump): its machine, byte order and notes. */
export interface CoreNotes {
  readonly machine: number;
  readonly elfClass: ElfClass;
  readonly endian: Endian;
  readonly notes: readonly DecodedNote[];
}

export function decodeCoreNotes(core: Uint8Array): CoreNotes {
  const ident = decodeIdent(core);
  if ('reason' in ident || core.length < 64) throw new VmdumpError('bad-input', 'QEMU wrote no ELF core for the notes');
  const malformed = (what: string): never => {
    throw new VmdumpError('bad-input', `QEMU's notes dump is malformed: ${what}`);
  };
  const header = decodeStruct<ElfHeader>(core, 16, elfHeaderFields, ident);
  const entry = ident.elfClass === 64 ? 56 : 32;
  const phoff = Number(header.phoff);
  if (phoff + header.phnum * entry > core.length)
    malformed(`${header.phnum} program headers at ${phoff} run past its ${core.length} bytes`);
  const notes: DecodedNote[] = [];
  for (let i = 0; i < header.phnum; i += 1) {
    const ph = decodeStruct<ProgramHeader>(core, phoff + i * entry, programHeaderFields[ident.elfClass], ident);
    if (ph.type !== PT_NOTE) continue;
    const [offset, size] = [Number(ph.offset), Number(ph.filesz)];
    if (offset + size > core.length) malformed(`PT_NOTE [${offset}, +${size}) runs past its ${core.length} bytes`);
    const walked = decodeNotes(core.subarray(offset, offset + size), ident.endian);
    const damage = walked.damage;
    if (damage?.kind === 'short-header') malformed(`a note header at ${offset + damage.at} runs past PT_NOTE`);
    if (damage?.kind === 'overrun')
      malformed(`the note at ${offset + damage.at} (n_namesz ${damage.namesz}, n_descsz ${damage.descsz}) runs past PT_NOTE`);
    notes.push(...walked.notes);
  }
  return { machine: header.machine, elfClass: ident.elfClass, endian: ident.endian, notes };
}
