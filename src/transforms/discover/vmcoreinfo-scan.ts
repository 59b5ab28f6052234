/**
 * Copies of VMCOREINFO in guest RAM (docs/vmcoreinfo-discovery.md §2). A Linux kernel built with
 * CONFIG_CRASH_CORE keeps two, each at the start of a page it allocated at boot: the text
 * (`vmcoreinfo_data`, beginning `OSRELEASE=`) and the ELF note the vmcoreinfo device would report
 * (`vmcoreinfo_note`: name VMCOREINFO, the text as its desc). Only the first bytes of each page are
 * looked at, but every page is read: in large sequential chunks, two in flight, so the scan runs at
 * the speed the source reads and its memory is two chunks whatever the guest's size.
 */
import { NT_VMCOREINFO } from '../../formats/elf/elf-constants.js';
import { VMCOREINFO_HEAD_BYTES, vmcoreinfoFormAt } from '../../formats/vmcoreinfo.js';
import { cancelled } from '../../guest/errors.js';
import { GuestMemory, readRange } from '../../guest/guest-memory.js';
import type { ElfNote, Endian, RamRange } from '../../guest/guest.js';

/** One copy found: where it starts and the note it amounts to (a text copy becomes the note Linux would write). */
export interface VmcoreinfoCopy {
  readonly physical: bigint;
  readonly form: 'note' | 'text';
  readonly note: ElfNote;
}

export interface VmcoreinfoScan {
  readonly copies: readonly VmcoreinfoCopy[];
  /** Copies seen beyond `MAX_COPIES` (hostile or odd RAM): counted, not kept. */
  readonly dropped: number;
  readonly bytesRead: number;
  /** `settle` said stop before the end of RAM. */
  readonly stoppedEarly: boolean;
}

/** Looks at the copies found since its last call (after each chunk); true ends the scan. */
export type SettleCopies = (found: readonly VmcoreinfoCopy[]) => Promise<boolean>;

/** Every page boundary is a candidate: 4 KiB divides every page size Linux uses. */
const STEP = 4096;
const CHUNK = 4 << 20;
/** VMCOREINFO_BYTES is one kernel page; 64 KiB covers every page size. */
const MAX_TEXT = 64 << 10;
export const MAX_COPIES = 64;
/** How much of a range read in passes is searched in one-off spans first (where the kernel's copy usually is: §2). */
const SPAN_LIMIT = 64n << 20n;
const NAME = 'VMCOREINFO';
/** namesz 11 ("VMCOREINFO\0"), then descsz and type, then the name padded to 12: the desc starts at 24. */
const NOTE_DESC_AT = 24;

/** System RAM only: the kernel allocates VMCOREINFO there, never in video RAM or a ROM. */
export async function scanForVmcoreinfo(
  ram: readonly RamRange[],
  endian: Endian,
  settle: SettleCopies,
  signal?: AbortSignal,
): Promise<VmcoreinfoScan> {
  const memory = new GuestMemory(ram);
  const copies: VmcoreinfoCopy[] = [];
  let hits: { physical: bigint; form: 'note' | 'text' }[] = [];
  let seen = 0;
  let bytesRead = 0;
  const settleHits = async (): Promise<boolean> => {
    const found: VmcoreinfoCopy[] = [];
    for (const hit of hits) {
      const note = await (hit.form === 'note' ? noteAt(memory, hit.physical, endian) : textAt(memory, hit.physical));
      if (note !== undefined) found.push({ ...hit, note });
    }
    hits = [];
    copies.push(...found);
    return found.length > 0 && settle(found);
  };
  const look = (chunk: Uint8Array, physical: bigint): void => {
    bytesRead += chunk.length;
    for (
      let at = Number((BigInt(STEP) - (physical % BigInt(STEP))) % BigInt(STEP));
      at + VMCOREINFO_HEAD_BYTES <= chunk.length;
      at += STEP
    ) {
      const form = vmcoreinfoFormAt(chunk, at, endian);
      if (form === undefined) continue;
      seen += 1;
      if (copies.length + hits.length < MAX_COPIES) hits.push({ physical: physical + BigInt(at), form });
    }
  };
  const stop = () => ({ copies, dropped: seen - copies.length, bytesRead, stoppedEarly: true });
  for (const range of highestFirst(ram)) {
    const candidates = range.vmcoreinfoCandidates?.();
    if (candidates !== undefined) {
      // The source looked at every page already: only these can hold a copy (re-checked here).
      for (const offset of candidates) {
        const head = await readRangeBytes(range, offset, VMCOREINFO_HEAD_BYTES);
        if (head !== undefined) look(head, range.start + offset);
      }
      if (await settleHits()) return stop();
      continue;
    }
    // Where `read` streams whole passes, the start is read in spans (each chunk settled as it
    // comes), the rest in one pass settled at its end: no read may come in the middle of a pass.
    const spans = range.readSpan === undefined ? range.size : SPAN_LIMIT < range.size ? SPAN_LIMIT : range.size;
    const settleChunk = async (chunk: Uint8Array, physical: bigint): Promise<boolean> => {
      look(chunk, physical);
      return settleHits();
    };
    if (await eachChunk(range, 0n, spans, 'span', signal, settleChunk)) return stop();
    if (spans === range.size) continue;
    await eachChunk(range, 0n, range.size, 'pass', signal, async (chunk, physical) => {
      if (physical + BigInt(chunk.length) > range.start + spans) look(chunk, physical);
      return false;
    });
    if (await settleHits()) return stop();
  }
  return { copies, dropped: seen - copies.length, bytesRead, stoppedEarly: false };
}

/**
 * System RAM, the range that starts highest first: the kernel allocates its boot-time pages from
 * its highest zone, from the bottom up (measured: 18 MiB into a 512 MiB or 2 GiB guest, 4 MiB above
 * 4 GiB in a 4 GiB one), so a search that ends at the running kernel's copy ends early.
 */
function highestFirst(ram: readonly RamRange[]): RamRange[] {
  return ram.filter((range) => range.systemRam !== false).sort((a, b) => (a.start < b.start ? 1 : a.start > b.start ? -1 : 0));
}

/**
 * Reads [from, to) of `range` in page-aligned chunks, the next read in flight while `visit` looks
 * at the last, until `visit` says stop.
 */
async function eachChunk(
  range: RamRange,
  from: bigint,
  to: bigint,
  how: 'span' | 'pass',
  signal: AbortSignal | undefined,
  visit: (chunk: Uint8Array, physical: bigint) => Promise<boolean>,
): Promise<boolean> {
  const buffers = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
  const read = (offset: bigint, buffer: Uint8Array): Promise<Uint8Array> | undefined => {
    if (offset >= to) return undefined;
    const into = buffer.subarray(0, Number(to - offset < BigInt(CHUNK) ? to - offset : BigInt(CHUNK)));
    return readRange(range, offset, into, how).then(() => into);
  };
  // A pass starts at the range's start; chunks of a span scan start on a guest page.
  let offset = how === 'pass' ? from : from + ((BigInt(STEP) - ((range.start + from) % BigInt(STEP))) % BigInt(STEP));
  let pending = read(offset, buffers[0]!);
  for (let turn = 1; pending !== undefined; turn += 1) {
    if (signal?.aborted) throw cancelled(signal);
    const chunk = await pending;
    const next = offset + BigInt(chunk.length);
    pending = read(next, buffers[turn % 2]!);
    if (await visit(chunk, range.start + offset)) {
      // The read ahead is not wanted; it must not end unobserved.
      await pending?.catch(() => undefined);
      return true;
    }
    offset = next;
  }
  return false;
}

function readU32(bytes: Uint8Array, at: number, endian: Endian): number {
  return new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, endian === 'little');
}

async function noteAt(memory: GuestMemory, physical: bigint, endian: Endian): Promise<ElfNote | undefined> {
  const header = await memory.bytes(physical, NOTE_DESC_AT);
  if (header === undefined) return undefined;
  const descsz = readU32(header, 4, endian);
  if (descsz === 0 || descsz > MAX_TEXT) return undefined;
  const desc = await memory.bytes(physical + BigInt(NOTE_DESC_AT), descsz);
  return desc === undefined ? undefined : { name: NAME, type: NT_VMCOREINFO, desc };
}

/** The text up to its first NUL, within one (largest) kernel page and within RAM. */
async function textAt(memory: GuestMemory, physical: bigint): Promise<ElfNote | undefined> {
  for (let length = MAX_TEXT; length >= STEP; length /= 2) {
    const bytes = await memory.bytes(physical, length);
    if (bytes === undefined) continue;
    const end = bytes.indexOf(0);
    return { name: NAME, type: NT_VMCOREINFO, desc: bytes.slice(0, end === -1 ? bytes.length : end) };
  }
  return undefined;
}

/** `length` bytes of `range` at `offset`, or undefined past its end. */
async function readRangeBytes(range: RamRange, offset: bigint, length: number): Promise<Uint8Array | undefined> {
  if (offset + BigInt(length) > range.size) return undefined;
  const bytes = new Uint8Array(length);
  await readRange(range, offset, bytes, 'span');
  return bytes;
}
