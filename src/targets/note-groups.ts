/**
 * Helpers every architecture's notes → state parser shares: grouping QEMU's notes per vCPU and
 * asking for one note of a group by name, type and least size.
 */
import { NT_PRSTATUS } from '../formats/elf/elf-constants.js';
import { EndianReader, type DecodedNote } from '../formats/elf/elf-decode.js';
import { VmdumpError } from '../guest/errors.js';
import type { Endian } from '../guest/guest.js';

/** Per-vCPU groups, each starting at an NT_PRSTATUS (the aarch64 and s390x order); VMCOREINFO is no vCPU's. */
export function notesPerVcpu(notes: readonly DecodedNote[]): DecodedNote[][] {
  const groups: DecodedNote[][] = [];
  for (const note of notes) {
    if (note.name === 'VMCOREINFO') continue;
    if (note.name === 'CORE' && note.type === NT_PRSTATUS) groups.push([]);
    groups.at(-1)?.push(note);
  }
  return groups;
}

/** The group's note `name`/`type`, read in `endian`; refused when missing or shorter than `size`. */
export function requireNote(
  group: readonly DecodedNote[],
  name: string,
  type: number,
  size: number,
  endian: Endian,
): EndianReader {
  const note = group.find((n) => n.name === name && n.type === type);
  if (note === undefined || note.desc.length < size)
    throw new VmdumpError('bad-input', `QEMU's notes lack a ${size}-byte ${name} note of type ${type}`);
  return new EndianReader(note.desc, endian);
}
