/**
 * A VMCOREINFO file is either a complete ELF note (as the guest wrote it, e.g. extracted from
 * a vmcore) or just its text (`OSRELEASE=...` lines, as /sys/kernel/vmcoreinfo's target or
 * `makedumpfile -g` gives it). Either way it becomes the note Linux writes: name "VMCOREINFO",
 * type 0. QEMU rejects guest notes over 1 MiB (docs/elf-vmcore.md §7.6); so do we.
 */
import * as fs from 'node:fs';
import { NT_VMCOREINFO } from '../formats/elf/elf-constants.js';
import { decodeFirstNote } from '../formats/elf/elf-decode.js';
import { VmdumpError, errnoText } from '../guest/errors.js';
import type { ElfNote, Endian } from '../guest/guest.js';
import { MAX_GUEST_NOTE } from './guest-note.js';

const NAME = 'VMCOREINFO';

export function parseVmcoreinfo(bytes: Uint8Array, endian: Endian, file: string): ElfNote {
  if (bytes.length > MAX_GUEST_NOTE)
    throw new VmdumpError('bad-input', `VMCOREINFO is ${bytes.length} bytes; the limit is 1 MiB`, file);
  const note = decodeFirstNote(bytes, endian);
  // Text that happens to start like a note header is still text: only a note named VMCOREINFO counts.
  if (note !== undefined && note.name === NAME && bytes[12 + NAME.length] === 0) {
    return { name: NAME, type: note.type, desc: note.desc.slice() };
  }
  return { name: NAME, type: NT_VMCOREINFO, desc: bytes };
}

/** A VMCOREINFO file's bytes; `field` names where it was given (a description's field, an option). */
export async function readVmcoreinfoFile(file: string, field: string): Promise<Uint8Array> {
  return fs.promises.readFile(file).catch((error: Error) => {
    throw new VmdumpError('bad-input', `cannot read the VMCOREINFO file ${file}: ${errnoText(error)}`, field, { cause: error });
  });
}
