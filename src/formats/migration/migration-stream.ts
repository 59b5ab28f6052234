/**
 * One pass over a QEMU migration stream (docs/qemu-migration-stream.md §3-5, §7): the header, the
 * configuration, the RAM section turned into a page index (payloads are skipped, not kept),
 * every device section decoded through the vmdesc trailer. Encodings vmdump does not decode are
 * refused by the capability that produces them. The page size is the stream's (vmdesc
 * page_size, checked against configuration/target-page-bits), not x86's (docs/other-arches.md §5).
 */
import { hex } from '../../guest/errors.js';
import type { ByteReader } from './byte-reader.js';
import { PageIndex } from './page-index.js';
import { VMCOREINFO_HEAD_BYTES, vmcoreinfoFormAt } from '../vmcoreinfo.js';
import { readDeviceState, type DeviceState, type Vmdesc, type VmdescEntry } from './vmdesc.js';

export const QEVM_MAGIC = 0x5145564d;

import { MigCommand, Rec, RamFlag } from './stream-grammar.js';

export interface RamBlock {
  readonly id: string;
  readonly usedLength: bigint;
  readonly pageSize: number;
  readonly pages: PageIndex;
  /**
   * Non-RAM iterative section chunks (e.g. s390-storage_attributes) between RAM chunks: the stream
   * offset of each chunk's record type byte → the offset just after it, so a re-read of RAM can
   * step over them. Shared by every block of the stream.
   */
  readonly foreignChunks: ReadonlyMap<number, number>;
  /** With the mapped-ram capability (9.0+): the block's pages are at fixed file offsets, not in records. */
  readonly mapped?: MappedRam;
  /**
   * Pages whose sent bytes began like a VMCOREINFO copy (formats/vmcoreinfo.ts), noted as pass 1
   * reads past them, in either byte order, any version of a re-sent page: `complete` when every
   * page sent was looked at and the list stayed under its cap (not for mapped-ram blocks).
   */
  readonly vmcoreinfoPages: { readonly pages: number[]; complete: boolean };
}

/** A mapped-ram block (docs/qemu-migration-stream.md §5.1, §11): page i is at pagesOffset + i·pageSize when bitmap bit i is set. */
export interface MappedRam {
  readonly bitmapOffset: number;
  readonly pagesOffset: number;
}

export interface MigrationStream {
  readonly machineType: string;
  readonly blocks: readonly RamBlock[];
  /** Every device section, in stream order. */
  readonly devices: readonly DeviceState[];
  /** From `globalstate`: the run state when saved, e.g. "paused". */
  readonly runState: string | undefined;
}

/** Capabilities whose streams vmdump cannot turn into memory (§1, §5). */
const refusedCapabilities: Readonly<Record<string, string>> = {
  'x-ignore-shared': 'pages of shared-memory blocks are not in the stream (x-ignore-shared); dump the running VM instead',
};

function unsupported(reader: ByteReader, capability: string, at: number): never {
  reader.fail(
    `the stream uses the "${capability}" migration capability, which vmdump does not decode; save the VM with it off`,
    at,
  );
}

/**
 * Parses the stream. The vmdesc trailer is asked for only once the header has shown that this
 * is a stream vmdump reads, so a wrong file is reported as such rather than as a missing trailer.
 */
export async function parseMigrationStream(
  reader: ByteReader,
  trailer: () => { vmdesc: Vmdesc; eofAt: number },
): Promise<MigrationStream> {
  await reader.ensure(8, 'the header');
  const magic = reader.be32();
  if (magic !== QEVM_MAGIC)
    reader.fail(`not a QEMU migration stream (magic ${hex(magic)}, expected 0x5145564d "QEVM")`, reader.position - 4);
  const version = reader.be32();
  if (version !== 3) reader.fail(`unsupported migration stream version ${version} (vmdump reads version 3)`, reader.position - 4);
  const { vmdesc, eofAt } = trailer();
  const pageSize = vmdesc.page_size;
  if (!(pageSize >= 1024 && pageSize <= 1 << 20 && (pageSize & (pageSize - 1)) === 0))
    reader.fail(`the vmdesc trailer gives page size ${pageSize}: the stream is corrupt`);
  const state: StreamState = {
    machineType: '',
    blocks: [],
    devices: [],
    current: undefined,
    ramSection: -1,
    mappedRam: false,
    pageSize,
    foreignSections: new Map(),
    foreignChunks: new Map(),
  };
  const pendingDevices = [...vmdesc.devices];
  for (;;) {
    await reader.ensure(1, 'a record type');
    const at = reader.position;
    const type = reader.u8();
    if (type === Rec.Eof) break;
    switch (type) {
      case Rec.Configuration:
        Object.assign(state, await readConfiguration(reader, pageSize));
        break;
      case Rec.SectionStart:
      case Rec.SectionFull: {
        await reader.ensure(4 + 1 + 255 + 8, 'a section header');
        const id = reader.be32();
        const name = reader.str8();
        const instance = reader.be32();
        const sectionVersion = reader.be32();
        if (name === 'ram' && type === Rec.SectionStart) {
          state.ramSection = id;
          await readRamChunk(reader, state);
        } else if (type === Rec.SectionFull) {
          const entry = takeEntry(reader, pendingDevices, name, instance, at);
          const device = await readDeviceState(reader, entry, name, instance, sectionVersion);
          state.devices.push(device);
          if (!device.complete) await skipToFooter(reader, id, pendingDevices[0]?.name, eofAt, at);
        } else {
          const grammar = iterativeGrammars[name];
          if (grammar === undefined)
            reader.fail(`section "${name}" is iterative and vmdump does not know its format (postcopy or block migration?)`, at);
          state.foreignSections.set(id, grammar);
          await grammar(reader);
        }
        await readFooter(reader, id);
        if (state.foreignSections.has(id)) state.foreignChunks.set(at, reader.position);
        break;
      }
      case Rec.SectionPart:
      case Rec.SectionEnd: {
        await reader.ensure(4, 'a section id');
        const id = reader.be32();
        const grammar = state.foreignSections.get(id);
        if (id === state.ramSection) {
          await readRamChunk(reader, state);
        } else if (grammar !== undefined) {
          await grammar(reader);
        } else {
          reader.fail(`section part for unknown section ${id}`, at);
        }
        await readFooter(reader, id);
        if (grammar !== undefined) state.foreignChunks.set(at, reader.position);
        break;
      }
      case Rec.Command: {
        await reader.ensure(4, 'a command');
        const command = reader.be16();
        const length = reader.be16();
        // SWITCHOVER_START says the source is about to stop: nothing for a reader of the saved state.
        if (command === MigCommand.SwitchoverStart && length === 0) break;
        unsupported(
          reader,
          command >= MigCommand.PostcopyAdvise && command <= MigCommand.PostcopyRamDiscard
            ? 'postcopy-ram'
            : `command ${command}`,
          at,
        );
        break;
      }
      default:
        reader.fail(`unknown record type ${hex(type)}: the stream is corrupt`, at);
    }
  }
  if (reader.position - 1 !== eofAt)
    reader.fail(
      `the device state ended at ${hex(reader.position - 1)} but the vmdesc trailer says ${hex(eofAt)}: the stream is corrupt`,
    );
  const global = state.devices.find((d) => d.name === 'globalstate');
  const runState = global?.has('runstate') === true ? global.raw('runstate').toString('latin1').replace(/\0.*$/s, '') : undefined;
  return { machineType: state.machineType, blocks: state.blocks, devices: state.devices, runState };
}

interface StreamState extends RamState {
  machineType: string;
  devices: DeviceState[];
  ramSection: number;
  readonly foreignSections: Map<number, (reader: ByteReader) => Promise<void>>;
}

/** s390-storage_attributes (§5): be64 words `gfn << 12 | flags`; MORE carries a be64 count and that many bytes; EOS ends the chunk. */
async function skipStorageAttributes(reader: ByteReader): Promise<void> {
  const EOS = 0x1n;
  const MORE = 0x2n;
  const ERROR = 0x4n;
  const DONE = 0x8n;
  for (;;) {
    await reader.ensure(8, 'a storage-attributes record');
    const at = reader.position;
    const flags = reader.be64() & 0xfffn;
    if (flags & EOS) return;
    if (flags & ERROR) reader.fail('QEMU marked the storage attributes as failed: the stream is incomplete', at);
    if (flags & MORE) {
      await reader.ensure(8, 'a storage-attributes count');
      const count = reader.be64();
      if (count > BigInt(reader.remaining))
        reader.fail(`storage-attributes record of ${count} bytes runs past the end: the stream is corrupt`, at);
      reader.skip(Number(count));
    } else if (!(flags & DONE)) {
      reader.fail(`storage-attributes flags ${hex(flags)}: the stream is corrupt`, at);
    }
  }
}

/** Iterative sections other than RAM that vmdump steps over, by their own grammar. */
const iterativeGrammars: Readonly<Record<string, (reader: ByteReader) => Promise<void>>> = {
  's390-storage_attributes': skipStorageAttributes,
};

async function readConfiguration(reader: ByteReader, pageSize: number): Promise<{ machineType: string; mappedRam: boolean }> {
  await reader.ensure(4, 'the configuration');
  const length = reader.be32();
  if (length > 255) reader.fail(`machine type name of ${length} bytes: the stream is corrupt`, reader.position - 4);
  await reader.ensure(length + 1);
  const machineType = reader.bytes(length).toString('latin1');
  let mappedRam = false;
  for (;;) {
    await reader.ensure(1 + 1 + 255 + 4 + 4);
    if (reader.peekU8() !== Rec.Subsection) return { machineType, mappedRam };
    const at = reader.position;
    reader.u8();
    const name = reader.str8();
    reader.be32();
    if (name === 'configuration/capabilities') {
      const count = reader.be32();
      for (let i = 0; i < count; i += 1) {
        await reader.ensure(256);
        const capability = reader.str8();
        const why = refusedCapabilities[capability];
        if (why !== undefined) reader.fail(why, at);
        if (capability === 'mapped-ram') mappedRam = true;
      }
    } else if (name === 'configuration/target-page-bits') {
      const bits = reader.be32();
      if (bits > 20 || 2 ** bits !== pageSize)
        reader.fail(`target page bits ${bits} disagree with the vmdesc page size ${pageSize}: the stream is corrupt`, at);
    } else if (name === 'configuration/uuid') {
      await reader.ensure(16);
      reader.skip(16);
    } else {
      reader.fail(`unknown configuration subsection "${name}"`, at);
    }
  }
}

function takeEntry(reader: ByteReader, pending: VmdescEntry[], name: string, instance: number, at: number): VmdescEntry {
  const entry = pending.shift();
  if (entry === undefined || entry.name !== name || entry.instance_id !== instance) {
    reader.fail(
      `device section ${name} (instance ${instance}) does not match the vmdesc trailer (expected ${entry?.name ?? 'nothing'}): the stream is corrupt`,
      at,
    );
  }
  return entry;
}

/**
 * Steps over the rest of a section the trailer cannot size, to its footer (7e, be32 id). A match
 * counts only when what follows is what must follow: the next device the trailer names, or the
 * stream's end where the trailer says it is.
 */
async function skipToFooter(
  reader: ByteReader,
  id: number,
  nextName: string | undefined,
  eofAt: number,
  sectionAt: number,
): Promise<void> {
  const footer = Buffer.from([Rec.Footer, id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff]);
  const next =
    nextName === undefined
      ? undefined
      : Buffer.concat([
          Buffer.from([Rec.SectionFull]),
          Buffer.alloc(4),
          Buffer.from([nextName.length]),
          Buffer.from(nextName, 'latin1'),
        ]);
  const window = 5 + (next?.length ?? 1);
  while (reader.position + 5 <= eofAt) {
    await reader.ensure(Math.min(window, reader.remaining), 'a section footer');
    const head = reader.peek(Math.min(window, reader.remaining));
    if (head.subarray(0, 5).equals(footer)) {
      const after = head.subarray(5);
      const endsStream = reader.position + 5 === eofAt && after[0] === Rec.Eof;
      const startsNext =
        next !== undefined && after.length === next.length && after[0] === next[0] && after.subarray(5).equals(next.subarray(5));
      if (endsStream || startsNext) return;
    }
    reader.skip(1);
  }
  reader.fail(`section ${id} cannot be sized from the vmdesc trailer and has no footer to find its end`, sectionAt);
}

async function readFooter(reader: ByteReader, id: number): Promise<void> {
  await reader.ensure(1, 'a section footer');
  if (reader.peekU8() !== Rec.Footer) return; // machine types before pc-*-2.4 send none
  const at = reader.position;
  await reader.ensure(5, 'a section footer');
  reader.u8();
  const footerId = reader.be32();
  if (footerId !== id) reader.fail(`section footer for section ${footerId} ends section ${id}: the stream is corrupt`, at);
}

interface RamState {
  blocks: RamBlock[];
  current: RamBlock | undefined;
  /** The configuration named the mapped-ram capability: each block header carries its file offsets. */
  mappedRam: boolean;
  readonly pageSize: number;
  readonly foreignChunks: Map<number, number>;
}

async function readRamChunk(reader: ByteReader, state: RamState): Promise<void> {
  for (;;) {
    await reader.ensure(8 + 1 + 255 + 1, 'a RAM record');
    const at = reader.position;
    const word = reader.be64();
    const flags = Number(word & 0xfffn);
    const address = word & ~0xfffn;
    if (flags & RamFlag.Eos) return;
    if (flags & RamFlag.MemSize) {
      await readBlockList(reader, state, address);
      continue;
    }
    if (flags & RamFlag.Xbzrle) unsupported(reader, 'xbzrle', at);
    if (flags & RamFlag.CompressPage) unsupported(reader, 'compress', at);
    if (flags & RamFlag.MultifdFlush) unsupported(reader, 'multifd', at);
    if (flags & (RamFlag.Hook | RamFlag.Full))
      reader.fail(`RAM record flags ${hex(flags)} (RDMA hook or obsolete FULL): the stream is corrupt`, at);
    if (!(flags & (RamFlag.Zero | RamFlag.Page))) reader.fail(`RAM record flags ${hex(flags)}: the stream is corrupt`, at);
    if (!(flags & RamFlag.Continue)) {
      const id = reader.str8();
      state.current = state.blocks.find((b) => b.id === id);
      if (state.current === undefined) reader.fail(`page for RAM block "${id}", which the block list does not name`, at);
    }
    const block = state.current;
    if (block === undefined) reader.fail('a CONTINUE page record before any block was named', at);
    if (address >= block.usedLength)
      reader.fail(`page at ${hex(address)} is beyond RAM block "${block.id}" (${hex(block.usedLength)} bytes)`, at);
    const page = Number(address) / state.pageSize;
    if (!Number.isInteger(page))
      reader.fail(`page at ${hex(address)} is not aligned to the ${state.pageSize}-byte page size`, at);
    if (flags & RamFlag.Zero) {
      block.pages.note(page, at, { kind: 'fill', byte: reader.u8() });
    } else {
      block.pages.note(page, at, { kind: 'data', offset: reader.position });
      if (reader.remaining >= state.pageSize) await noteVmcoreinfoPage(reader, block, page);
      reader.skip(state.pageSize);
    }
  }
}

/** More candidates than a kernel keeps (two) by far: past this the search reads the whole block. */
const MAX_VMCOREINFO_PAGES = 4096;

/** Looks at the head of a page about to be skipped: the bytes are in the reader's buffer anyway. */
async function noteVmcoreinfoPage(reader: ByteReader, block: RamBlock, page: number): Promise<void> {
  const candidates = block.vmcoreinfoPages;
  if (!candidates.complete) return;
  await reader.ensure(VMCOREINFO_HEAD_BYTES, 'a page');
  const head = reader.peek(VMCOREINFO_HEAD_BYTES);
  if ((vmcoreinfoFormAt(head, 0, 'little') ?? vmcoreinfoFormAt(head, 0, 'big')) === undefined) return;
  if (candidates.pages.length < MAX_VMCOREINFO_PAGES) candidates.pages.push(page);
  else candidates.complete = false;
}

/**
 * The mapped-ram header after a block's entry (be32 version 1, be64 page size, be64 bitmap offset,
 * be64 pages offset); the stream goes on after the block's pages region. Every offset is checked
 * against the file, so later reads of the block stay inside it.
 */
async function readMappedRamHeader(reader: ByteReader, id: string, usedLength: bigint, pageSize: number): Promise<MappedRam> {
  await reader.ensure(4 + 8 + 8 + 8, 'a mapped-ram header');
  const at = reader.position;
  const version = reader.be32();
  const headerPageSize = reader.be64();
  const bitmapOffset = reader.be64();
  const pagesOffset = reader.be64();
  if (version !== 1) reader.fail(`mapped-ram header version ${version} of block "${id}" (vmdump reads version 1)`, at);
  if (headerPageSize !== BigInt(pageSize))
    reader.fail(`mapped-ram block "${id}" has page size ${headerPageSize}, the stream ${pageSize}: the stream is corrupt`, at);
  const pages = usedLength / BigInt(pageSize);
  const end = pagesOffset + usedLength;
  if (bitmapOffset + (pages + 7n) / 8n > BigInt(reader.size) || end > BigInt(reader.size) || end < BigInt(reader.position))
    reader.fail(
      `mapped-ram block "${id}" lies outside the file (bitmap at ${hex(bitmapOffset)}, pages ${hex(pagesOffset)}-${hex(end)}): truncated or corrupt`,
      at,
    );
  reader.skip(Number(end) - reader.position);
  return { bitmapOffset: Number(bitmapOffset), pagesOffset: Number(pagesOffset) };
}

/** MEM_SIZE: str8 id + be64 used_length per block until the lengths add up to `total` (§5.1). */
async function readBlockList(reader: ByteReader, state: RamState, total: bigint): Promise<void> {
  let sum = 0n;
  while (sum < total) {
    await reader.ensure(1 + 255 + 8, 'the RAM block list');
    const at = reader.position;
    const id = reader.str8();
    const usedLength = reader.be64();
    const { pageSize, foreignChunks } = state;
    if (usedLength === 0n || usedLength % BigInt(pageSize) !== 0n)
      reader.fail(`RAM block "${id}" has length ${hex(usedLength)}: the stream is corrupt`, at);
    const mapped = state.mappedRam ? await readMappedRamHeader(reader, id, usedLength, pageSize) : undefined;
    state.blocks.push({
      id,
      usedLength,
      pageSize,
      foreignChunks,
      pages: new PageIndex(Number(usedLength / BigInt(pageSize))),
      vmcoreinfoPages: { pages: [], complete: mapped === undefined },
      ...(mapped === undefined ? {} : { mapped }),
    });
    sum += usedLength;
  }
  if (sum !== total) reader.fail(`RAM block lengths add up to ${hex(sum)}, the header says ${hex(total)}: the stream is corrupt`);
}

/**
 * The capabilities a stream's configuration names (§4), read from its first bytes alone: what a
 * reader of a pipe can know before it copies the rest. Empty when the head holds none.
 */
export function capabilitiesInHead(head: Buffer): string[] {
  const capabilities: string[] = [];
  if (head.length < 13 || head.readUInt32BE(0) !== QEVM_MAGIC || head[8] !== Rec.Configuration) return capabilities;
  let at = 13 + head.readUInt32BE(9);
  const fits = (n: number): boolean => at + n <= head.length;
  while (fits(2) && head[at] === Rec.Subsection) {
    const nameLength = head[at + 1]!;
    if (!fits(2 + nameLength + 4)) break;
    const name = head.toString('latin1', at + 2, at + 2 + nameLength);
    at += 2 + nameLength + 4;
    if (name === 'configuration/capabilities' && fits(4)) {
      const count = head.readUInt32BE(at);
      at += 4;
      for (let i = 0; i < count && fits(1) && fits(1 + head[at]!); i += 1) {
        capabilities.push(head.toString('latin1', at + 1, at + 1 + head[at]!));
        at += 1 + head[at]!;
      }
    } else if (name === 'configuration/target-page-bits') at += 4;
    else if (name === 'configuration/uuid') at += 16;
    else break;
  }
  return capabilities;
}
