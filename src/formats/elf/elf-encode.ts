/**
 * The one ELF encoder: every structure, both classes, both byte orders, through a DataView.
 * Values that do not fit their field are an error here, never silently truncated (QEMU
 * truncates); the single exception is NOT_IN_FILE, all ones in either width.
 */
import { ELF_MAGIC, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, EV_CURRENT, PN_XNUM } from './elf-constants.js';
import type { ElfNote } from '../../guest/guest.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import { U32_MAX } from '../../guest/units.js';
import {
  ELF_IDENT_SIZE,
  NOT_IN_FILE,
  NOTE_HEADER_SIZE,
  align4,
  elfHeaderFields,
  elfHeaderSize,
  encodedNoteSize,
  programHeaderFields,
  programHeaderSize,
  sectionHeaderFields,
  sectionHeaderSize,
  type ElfHeader,
  type ElfTarget,
  type FieldLayout,
  type ProgramHeader,
  type SectionHeader,
} from './elf-structs.js';

function writeField(
  view: DataView,
  at: number,
  type: 'u16' | 'u32' | 'word',
  value: bigint | number,
  target: ElfTarget,
  field: string,
): number {
  const little = target.endian === 'little';
  const big = BigInt(value);
  const width = type === 'u16' ? 2 : type === 'u32' || target.elfClass === 32 ? 4 : 8;
  const limit = (1n << BigInt(width * 8)) - 1n;
  const fitted = width === 4 && big === NOT_IN_FILE ? U32_MAX : big;
  if (fitted < 0n || fitted > limit) {
    throw new VmdumpError('unrepresentable', `${field} = ${hex(big)} does not fit in ${width} bytes (ELF${target.elfClass})`);
  }
  if (width === 2) view.setUint16(at, Number(fitted), little);
  else if (width === 4) view.setUint32(at, Number(fitted), little);
  else view.setBigUint64(at, fitted, little);
  return at + width;
}

function encodeStruct<T extends object>(view: DataView, at: number, layout: FieldLayout<T>, value: T, target: ElfTarget): number {
  let cursor = at;
  for (const [name, type] of layout) {
    cursor = writeField(view, cursor, type, value[name] as bigint | number, target, name);
  }
  return cursor;
}

export function encodeElfHeader(header: ElfHeader, target: ElfTarget): Uint8Array {
  const bytes = new Uint8Array(elfHeaderSize(target.elfClass));
  bytes.set([
    ...ELF_MAGIC,
    target.elfClass === 64 ? ELFCLASS64 : ELFCLASS32,
    target.endian === 'little' ? ELFDATA2LSB : ELFDATA2MSB,
    EV_CURRENT,
  ]);
  // gABI extended numbering: e_phnum escapes to PN_XNUM, sh_info of section header 0 holds the count.
  encodeStruct(
    new DataView(bytes.buffer),
    ELF_IDENT_SIZE,
    elfHeaderFields,
    { ...header, phnum: Math.min(header.phnum, PN_XNUM) },
    target,
  );
  return bytes;
}

/** Encodes a run of program headers into one buffer (the caller decides the batch size). */
export function encodeProgramHeaders(headers: readonly ProgramHeader[], target: ElfTarget): Uint8Array {
  const size = programHeaderSize(target.elfClass);
  const bytes = new Uint8Array(size * headers.length);
  const view = new DataView(bytes.buffer);
  headers.forEach((h, i) => encodeStruct(view, i * size, programHeaderFields[target.elfClass], h, target));
  return bytes;
}

export function encodeSectionHeaders(headers: readonly SectionHeader[], target: ElfTarget): Uint8Array {
  const size = sectionHeaderSize(target.elfClass);
  const bytes = new Uint8Array(size * headers.length);
  const view = new DataView(bytes.buffer);
  headers.forEach((h, i) =>
    encodeStruct(view, i * size, sectionHeaderFields, h, { ...target, endian: h.writtenAs ?? target.endian }),
  );
  return bytes;
}

const textEncoder = new TextEncoder();

export function noteSize(note: ElfNote): number {
  return encodedNoteSize(textEncoder.encode(note.name).length + 1, note.desc.length);
}

/** n_namesz, n_descsz, n_type; NUL-terminated name and desc, each zero-padded to 4 bytes. */
export function encodeNotes(notes: readonly ElfNote[], target: ElfTarget): Uint8Array {
  const bytes = new Uint8Array(notes.reduce((sum, n) => sum + noteSize(n), 0));
  const view = new DataView(bytes.buffer);
  const little = target.endian === 'little';
  let at = 0;
  for (const note of notes) {
    const name = textEncoder.encode(note.name);
    view.setUint32(at, name.length + 1, little);
    view.setUint32(at + 4, note.desc.length, little);
    view.setUint32(at + 8, note.type, little);
    bytes.set(name, at + NOTE_HEADER_SIZE);
    const descAt = at + NOTE_HEADER_SIZE + align4(name.length + 1);
    bytes.set(note.desc, descAt);
    at = descAt + align4(note.desc.length);
  }
  return bytes;
}
