/**
 * A VMCOREINFO file is either a complete ELF note (as the guest wrote it, e.g. extracted from
 * a vmcore) or just its text (`OSRELEASE=...` lines, as /sys/kernel/vmcoreinfo's target or
 * `makedumpfile -g` gives it). Either way it becomes the note Linux writes: name "VMCOREINFO",
 * type 0. QEMU rejects guest notes over 1 MiB (elf-vmcore.md §7.6); so do we.
 */
import { NT_VMCOREINFO } from '../model/elf-constants.js';
import { VmdumpError } from '../model/errors.js';
import type { ElfNote, Endian } from '../model/guest.js';
import { align4 } from '../transforms/elf-structs.js';

const MAX_NOTE = 1 << 20;
const NAME = 'VMCOREINFO';

export function parseVmcoreinfo(bytes: Uint8Array, endian: Endian, file: string): ElfNote {
  if (bytes.length > MAX_NOTE) throw new VmdumpError('bad-input', `VMCOREINFO is ${bytes.length} bytes; the limit is 1 MiB`, file);
  return asNote(bytes, endian) ?? { name: NAME, type: NT_VMCOREINFO, desc: bytes };
}

function asNote(bytes: Uint8Array, endian: Endian): ElfNote | undefined {
  if (bytes.length < 12 + 12) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = endian === 'little';
  const namesz = view.getUint32(0, little);
  const descsz = view.getUint32(4, little);
  if (namesz !== NAME.length + 1) return undefined;
  const name = new TextDecoder().decode(bytes.subarray(12, 12 + NAME.length));
  if (name !== NAME || bytes[12 + NAME.length] !== 0) return undefined;
  const descAt = 12 + align4(namesz);
  if (descAt + descsz > bytes.length) return undefined;
  return { name: NAME, type: view.getUint32(8, little), desc: bytes.slice(descAt, descAt + descsz) };
}
