/**
 * The guest's VMCOREINFO note, found the way QEMU's dump finds it (docs/elf-vmcore.md §7.6): the
 * `vmcoreinfo` device holds what the guest wrote to fw_cfg `etc/vmcoreinfo` (format, size,
 * guest-physical address); the note is read from guest memory there. QEMU only warns about a
 * bad note and dumps without it; so do we, returning the reason. Where there is no such device
 * (s390x), the kernel keeps the note's address at a fixed place (docs/other-arches.md §4.3).
 */
import { EndianReader, decodeFirstNote, noteSizeFromHeader } from '../formats/elf/elf-decode.js';
import { NOTE_HEADER_SIZE } from '../formats/elf/elf-structs.js';
import type { DeviceState } from '../formats/migration/vmdesc.js';
import { hex } from '../guest/errors.js';
import { GuestMemory } from '../guest/guest-memory.js';
import type { ElfNote, Endian, RamRange } from '../guest/guest.js';

const FORMAT_ELF = 1n;
/** QEMU refuses guest notes over 1 MiB (docs/elf-vmcore.md §7.6). */
export const MAX_GUEST_NOTE = 1 << 20;

export type GuestNoteResult = { readonly note: ElfNote } | { readonly skipped: string } | undefined;

function asResult(bytes: Uint8Array, endian: Endian): GuestNoteResult {
  const note = decodeFirstNote(bytes, endian);
  if (note === undefined || note.desc.length > MAX_GUEST_NOTE) return { skipped: 'Invalid guest note header' };
  return { note: { name: note.name, type: note.type, desc: note.desc.slice() } };
}

export async function readGuestNote(
  devices: readonly DeviceState[],
  ram: readonly RamRange[],
  endian: Endian = 'little',
): Promise<GuestNoteResult> {
  const device = devices.find((d) => d.name === 'vmcoreinfo');
  if (device === undefined) return undefined;
  if (device.uint('has_vmcoreinfo') === 0n) return { skipped: 'guest note is not present' };
  const format = device.uint('vmcoreinfo.guest_format');
  const size = device.uint('vmcoreinfo.size');
  const address = device.uint('vmcoreinfo.paddr');
  if (size < BigInt(NOTE_HEADER_SIZE) || size > BigInt(MAX_GUEST_NOTE)) return { skipped: `guest note size is invalid: ${size}` };
  if (format !== FORMAT_ELF) return { skipped: `guest note format is unsupported: ${format}` };
  const bytes = await new GuestMemory(ram).bytes(address, Number(size));
  if (bytes === undefined) return { skipped: `guest note at ${hex(address)} is outside guest RAM` };
  return asResult(bytes, endian);
}

/**
 * The note whose address the guest stored as a u64 at `pointer` (s390x lowcore 0xe0c): 0 means
 * the kernel has not published one (it had not booted that far, or is not Linux).
 */
export async function readPointedNote(ram: readonly RamRange[], pointer: bigint, endian: Endian): Promise<GuestNoteResult> {
  const memory = new GuestMemory(ram);
  const slot = await memory.bytes(pointer, 8);
  if (slot === undefined) return undefined;
  const address = new EndianReader(slot, endian).u64(0);
  if (address === 0n) return { skipped: `the guest published no VMCOREINFO address at ${hex(pointer)}` };
  const header = await memory.bytes(address, NOTE_HEADER_SIZE);
  if (header === undefined)
    return { skipped: `the VMCOREINFO address ${hex(address)} (from ${hex(pointer)}) is outside guest RAM` };
  const size = noteSizeFromHeader(header, endian);
  if (size > MAX_GUEST_NOTE) return { skipped: 'Invalid guest note header' };
  const bytes = await memory.bytes(address, size);
  if (bytes === undefined) return { skipped: `the VMCOREINFO note at ${hex(address)} runs outside guest RAM` };
  return asResult(bytes, endian);
}
