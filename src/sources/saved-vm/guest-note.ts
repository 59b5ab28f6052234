/**
 * The guest's VMCOREINFO note, found the way QEMU's dump finds it (elf-vmcore.md §7.6): the
 * `vmcoreinfo` device holds what the guest wrote to fw_cfg `etc/vmcoreinfo` (format, size,
 * guest-physical address); the note is read from guest memory there. QEMU only warns about a
 * bad note and dumps without it; so do we, returning the reason.
 */
import type { ElfNote, RamRange } from '../../model/guest.js';
import { hex } from '../../model/errors.js';
import type { DeviceState } from './vmdesc.js';

const FORMAT_ELF = 1n;
const MAX_NOTE = 1n << 20n;
const align4 = (n: number): number => (n + 3) & ~3;

export type GuestNoteResult = { readonly note: ElfNote } | { readonly skipped: string } | undefined;

async function readPhysical(ram: readonly RamRange[], address: bigint, length: number): Promise<Uint8Array | undefined> {
  const range = ram.find((r) => r.start <= address && address + BigInt(length) <= r.start + r.size);
  if (range === undefined) return undefined;
  const bytes = new Uint8Array(length);
  await range.read(address - range.start, bytes);
  return bytes;
}

export async function readGuestNote(devices: readonly DeviceState[], ram: readonly RamRange[]): Promise<GuestNoteResult> {
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
  const view = new DataView(bytes.buffer);
  const [namesz, descsz, type] = [view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true)];
  if (BigInt(namesz) > MAX_NOTE || BigInt(descsz) > MAX_NOTE || 12 + align4(namesz) + align4(descsz) > bytes.length) {
    return { skipped: 'Invalid guest note header' };
  }
  const name = new TextDecoder('latin1').decode(bytes.subarray(12, 12 + Math.max(0, namesz - 1)));
  const descAt = 12 + align4(namesz);
  return { note: { name, type, desc: bytes.slice(descAt, descAt + descsz) } };
}
