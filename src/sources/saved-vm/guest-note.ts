/**
 * The guest's VMCOREINFO note, found the way QEMU's dump finds it (elf-vmcore.md §7.6): the
 * `vmcoreinfo` device holds what the guest wrote to fw_cfg `etc/vmcoreinfo` (format, size,
 * guest-physical address); the note is read from guest memory there. QEMU only warns about a
 * bad note and dumps without it; so do we, returning the reason. Where there is no such device
 * (s390x), the kernel keeps the note's address at a fixed place (other-arches.md §4.3).
 */
import type { ElfNote, Endian, RamRange } from '../../model/guest.js';
import { hex } from '../../model/errors.js';
import { align4 } from '../../transforms/elf-structs.js';
import type { DeviceState } from './vmdesc.js';

const FORMAT_ELF = 1n;
const MAX_NOTE = 1n << 20n;

export type GuestNoteResult = { readonly note: ElfNote } | { readonly skipped: string } | undefined;

async function readPhysical(ram: readonly RamRange[], address: bigint, length: number): Promise<Uint8Array | undefined> {
  const range = ram.find((r) => r.start <= address && address + BigInt(length) <= r.start + r.size);
  if (range === undefined) return undefined;
  const bytes = new Uint8Array(length);
  await range.read(address - range.start, bytes);
  return bytes;
}

export async function readGuestNote(devices: readonly DeviceState[], ram: readonly RamRange[], endian: Endian = 'little'): Promise<GuestNoteResult> {
  const device = devices.find((d) => d.name === 'vmcoreinfo');
  if (device === undefined) return undefined;
  if (device.uint('has_vmcoreinfo') === 0n) return { skipped: 'guest note is not present' };
  const format = device.uint('vmcoreinfo.guest_format');
  const size = device.uint('vmcoreinfo.size');
  const address = device.uint('vmcoreinfo.paddr');
  if (size < 12n || size > MAX_NOTE) return { skipped: `guest note size is invalid: ${size}` };
  if (format !== FORMAT_ELF) return { skipped: `guest note format is unsupported: ${format}` };
  const bytes = await readPhysical(ram, address, Number(size));
  if (bytes === undefined) return { skipped: `guest note at ${hex(address)} is outside guest RAM` };
  return decodeNote(bytes, endian);
}

function decodeNote(bytes: Uint8Array, endian: Endian): GuestNoteResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = endian === 'little';
  const [namesz, descsz, type] = [view.getUint32(0, little), view.getUint32(4, little), view.getUint32(8, little)];
  if (BigInt(namesz) > MAX_NOTE || BigInt(descsz) > MAX_NOTE || 12 + align4(namesz) + align4(descsz) > bytes.length) {
    return { skipped: 'Invalid guest note header' };
  }
  const name = new TextDecoder('latin1').decode(bytes.subarray(12, 12 + Math.max(0, namesz - 1)));
  const descAt = 12 + align4(namesz);
  return { note: { name, type, desc: bytes.slice(descAt, descAt + descsz) } };
}

/**
 * The note whose address the guest stored as a u64 at `pointer` (s390x lowcore 0xe0c): 0 means
 * the kernel has not published one (it had not booted that far, or is not Linux).
 */
export async function readPointedNote(ram: readonly RamRange[], pointer: bigint, endian: Endian): Promise<GuestNoteResult> {
  const slot = await readPhysical(ram, pointer, 8);
  if (slot === undefined) return undefined;
  const address = new DataView(slot.buffer).getBigUint64(0, endian === 'little');
  if (address === 0n) return { skipped: `the guest published no VMCOREINFO address at ${hex(pointer)}` };
  const header = await readPhysical(ram, address, 12);
  if (header === undefined) return { skipped: `the VMCOREINFO address ${hex(address)} (from ${hex(pointer)}) is outside guest RAM` };
  const view = new DataView(header.buffer);
  const little = endian === 'little';
  const size = 12 + align4(view.getUint32(0, little)) + align4(view.getUint32(4, little));
  if (BigInt(size) > MAX_NOTE) return { skipped: 'Invalid guest note header' };
  const bytes = await readPhysical(ram, address, size);
  if (bytes === undefined) return { skipped: `the VMCOREINFO note at ${hex(address)} runs outside guest RAM` };
  return decodeNote(bytes, endian);
}
