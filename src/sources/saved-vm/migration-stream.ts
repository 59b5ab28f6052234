/**
 * One pass over a QEMU migration stream (qemu-migration-stream.md §3-5, §7): the header, the
 * configuration, the RAM section turned into a page index (payloads are skipped, not kept),
 * every device section decoded through the vmdesc trailer. Encodings vmdump does not decode are
 * refused by the capability that produces them.
 */
import { hex } from '../../model/errors.js';
import type { ByteReader } from './byte-reader.js';
import { PageIndex } from './page-index.js';
import { readDeviceState, type DeviceState, type Vmdesc, type VmdescEntry } from './vmdesc.js';

export const QEVM_MAGIC = 0x5145564d;
export const PAGE_SIZE = 4096;

const enum Rec { Eof = 0x00, SectionStart = 0x01, SectionPart = 0x02, SectionEnd = 0x03, SectionFull = 0x04, Configuration = 0x07, Command = 0x08, Footer = 0x7e }
const enum RamFlag { Full = 0x01, Zero = 0x02, MemSize = 0x04, Page = 0x08, Eos = 0x10, Continue = 0x20, Xbzrle = 0x40, Hook = 0x80, CompressPage = 0x100, MultifdFlush = 0x200 }

export interface RamBlock {
  readonly id: string;
  readonly usedLength: bigint;
  readonly pages: PageIndex;
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
  reader.fail(`the stream uses the "${capability}" migration capability, which vmdump does not decode; save the VM with it off`, at);
}

/**
 * Parses the stream. The vmdesc trailer is asked for only once the header has shown that this
 * is a stream vmdump reads, so a wrong file is reported as such rather than as a missing trailer.
 */
export async function parseMigrationStream(reader: ByteReader, trailer: () => { vmdesc: Vmdesc; eofAt: number }): Promise<MigrationStream> {
  await reader.ensure(8, 'the header');
  const magic = reader.be32();
  if (magic !== QEVM_MAGIC) reader.fail(`not a QEMU migration stream (magic ${hex(magic)}, expected 0x5145564d "QEVM")`, reader.position - 4);
  const version = reader.be32();
  if (version !== 3) reader.fail(`unsupported migration stream version ${version} (vmdump reads version 3)`, reader.position - 4);
  const { vmdesc, eofAt } = trailer();
  const state = { machineType: '', blocks: [] as RamBlock[], devices: [] as DeviceState[], current: undefined as RamBlock | undefined, ramSection: -1 };
  const pendingDevices = [...vmdesc.devices];
  for (;;) {
    await reader.ensure(1, 'a record type');
    const at = reader.position;
    const type = reader.u8();
    if (type === Rec.Eof) break;
    switch (type) {
      case Rec.Configuration: state.machineType = await readConfiguration(reader); break;
      case Rec.SectionStart: case Rec.SectionFull: {
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
          state.devices.push(await readDeviceState(reader, entry, name, instance, sectionVersion));
        } else {
          reader.fail(`section "${name}" is iterative; only "ram" is expected to be (postcopy or block migration?)`, at);
        }
        await readFooter(reader, id);
        break;
      }
      case Rec.SectionPart: case Rec.SectionEnd: {
        await reader.ensure(4, 'a section id');
        const id = reader.be32();
        if (id !== state.ramSection) reader.fail(`section part for unknown section ${id}`, at);
        await readRamChunk(reader, state);
        await readFooter(reader, id);
        break;
      }
      case Rec.Command: {
        await reader.ensure(4, 'a command');
        const command = reader.be16();
        reader.be16();
        unsupported(reader, command >= 3 && command <= 6 ? 'postcopy-ram' : `command ${command}`, at);
        break;
      }
      default:
        reader.fail(`unknown record type ${hex(type)}: the stream is corrupt`, at);
    }
  }
  if (reader.position - 1 !== eofAt) reader.fail(`the device state ended at ${hex(reader.position - 1)} but the vmdesc trailer says ${hex(eofAt)}: the stream is corrupt`);
  const global = state.devices.find((d) => d.name === 'globalstate');
  const runState = global?.has('runstate') === true ? global.raw('runstate').toString('latin1').replace(/\0.*$/s, '') : undefined;
  return { machineType: state.machineType, blocks: state.blocks, devices: state.devices, runState };
}

async function readConfiguration(reader: ByteReader): Promise<string> {
  await reader.ensure(4, 'the configuration');
  const length = reader.be32();
  if (length > 255) reader.fail(`machine type name of ${length} bytes: the stream is corrupt`, reader.position - 4);
  await reader.ensure(length + 1);
  const machineType = reader.bytes(length).toString('latin1');
  for (;;) {
    await reader.ensure(1 + 1 + 255 + 4 + 4);
    if (reader.peekU8() !== 0x05) return machineType;
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
      }
    } else if (name === 'configuration/target-page-bits') {
      const bits = reader.be32();
      if (bits !== 12) reader.fail(`target page bits ${bits}: vmdump reads 4 KiB-page (x86) streams`, at);
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
    reader.fail(`device section ${name} (instance ${instance}) does not match the vmdesc trailer (expected ${entry?.name ?? 'nothing'}): the stream is corrupt`, at);
  }
  return entry;
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

interface RamState { blocks: RamBlock[]; current: RamBlock | undefined }

async function readRamChunk(reader: ByteReader, state: RamState): Promise<void> {
  for (;;) {
    await reader.ensure(8 + 1 + 255 + 1, 'a RAM record');
    const at = reader.position;
    const word = reader.be64();
    const flags = Number(word & 0xfffn);
    const address = word & ~0xfffn;
    if (flags & RamFlag.Eos) return;
    if (flags & RamFlag.MemSize) { await readBlockList(reader, state, address); continue; }
    if (flags & RamFlag.Xbzrle) unsupported(reader, 'xbzrle', at);
    if (flags & RamFlag.CompressPage) unsupported(reader, 'compress', at);
    if (flags & RamFlag.MultifdFlush) unsupported(reader, 'multifd', at);
    if (flags & (RamFlag.Hook | RamFlag.Full)) reader.fail(`RAM record flags ${hex(flags)} (RDMA hook or obsolete FULL): the stream is corrupt`, at);
    if (!(flags & (RamFlag.Zero | RamFlag.Page))) reader.fail(`RAM record flags ${hex(flags)}: the stream is corrupt`, at);
    if (!(flags & RamFlag.Continue)) {
      const id = reader.str8();
      state.current = state.blocks.find((b) => b.id === id);
      if (state.current === undefined) reader.fail(`page for RAM block "${id}", which the block list does not name`, at);
    }
    const block = state.current;
    if (block === undefined) reader.fail('a CONTINUE page record before any block was named', at);
    if (address >= block.usedLength) reader.fail(`page at ${hex(address)} is beyond RAM block "${block.id}" (${hex(block.usedLength)} bytes)`, at);
    const page = Number(address) / PAGE_SIZE;
    if (flags & RamFlag.Zero) {
      block.pages.note(page, at, { kind: 'fill', byte: reader.u8() });
    } else {
      block.pages.note(page, at, { kind: 'data', offset: reader.position });
      reader.skip(PAGE_SIZE);
    }
  }
}

/** MEM_SIZE: str8 id + be64 used_length per block until the lengths add up to `total` (§5.1). */
async function readBlockList(reader: ByteReader, state: RamState, total: bigint): Promise<void> {
  let sum = 0n;
  while (sum < total) {
    await reader.ensure(1 + 255 + 8, 'the RAM block list');
    const at = reader.position;
    const id = reader.str8();
    const usedLength = reader.be64();
    if (usedLength === 0n || usedLength % BigInt(PAGE_SIZE) !== 0n) reader.fail(`RAM block "${id}" has length ${hex(usedLength)}: the stream is corrupt`, at);
    state.blocks.push({ id, usedLength, pages: new PageIndex(Number(usedLength / BigInt(PAGE_SIZE))) });
    sum += usedLength;
  }
  if (sum !== total) reader.fail(`RAM block lengths add up to ${hex(sum)}, the header says ${hex(total)}: the stream is corrupt`);
}

