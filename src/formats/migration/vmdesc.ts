/**
 * The vmdesc JSON trailer (docs/qemu-migration-stream.md §9): where it is, and how a FULL section's
 * bytes are laid out according to its entry. Device state is decoded by field path, so any
 * device can be read or skipped without knowing its C struct.
 */
import * as fs from 'node:fs';
import { VmdumpError, hex } from '../../guest/errors.js';
import type { ByteReader } from './byte-reader.js';
import { Rec } from './stream-grammar.js';

export interface VmdescField {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  readonly array_len?: number;
  readonly struct?: VmdescEntry;
}

export interface VmdescEntry {
  readonly name?: string;
  readonly instance_id?: number;
  readonly vmsd_name?: string;
  readonly version?: number;
  readonly fields?: readonly VmdescField[];
  readonly subsections?: readonly VmdescEntry[];
  /** Old-style sections (e.g. slirp): total size, one opaque field. */
  readonly size?: number;
}

export interface Vmdesc {
  readonly page_size: number;
  readonly devices: readonly VmdescEntry[];
}

const TAIL_WINDOW = 16 << 20;

/**
 * Finds the trailer in a seekable stream: `00 06 be32(len) {…}` ending the file
 * (trailing NUL padding allowed). Returns the JSON and where the EOF byte before it sits.
 */
export function locateVmdesc(fd: number, size: number, label: string): { vmdesc: Vmdesc; eofAt: number } {
  const start = Math.max(0, size - TAIL_WINDOW);
  const tail = Buffer.alloc(size - start);
  fs.readSync(fd, tail, 0, tail.length, start);
  let end = tail.length;
  while (end > 0 && tail[end - 1] === 0) end -= 1;
  // The JSON object runs to the end: `{"page_size"…` up to QEMU 8.1, `{"configuration"…` since 8.2 (§9).
  for (let p = tail.lastIndexOf(0x7b, end - 1); p >= 6; p = tail.lastIndexOf(0x7b, p - 1)) {
    if (tail[p - 5] === 0x06 && tail[p - 6] === 0x00 && tail.readUInt32BE(p - 4) === end - p) {
      let json: unknown;
      try {
        json = JSON.parse(tail.toString('utf8', p, end));
      } catch (error) {
        throw new VmdumpError(
          'bad-input',
          `the vmdesc JSON at byte ${hex(start + p)} does not parse: ${(error as Error).message}`,
          label,
        );
      }
      return { vmdesc: checkVmdesc(json, label), eofAt: start + p - 6 };
    }
  }
  throw new VmdumpError(
    'bad-input',
    `the stream ends at byte ${hex(size)} without its vmdesc trailer: truncated, or saved with suppress-vmdesc`,
    label,
  );
}

/** Deeper than QEMU nests subsections (a handful of levels) means a damaged or hostile trailer. */
const MAX_DEPTH = 32;

/**
 * The trailer decides how many bytes each section is read as, so its shape is checked before
 * any of it is used: sizes and counts are non-negative integers, lists are lists, nesting is
 * bounded. A damaged trailer is a typed error naming the path (found by fuzzing: a wrong-typed
 * size became NaN bytes to read).
 */
function checkVmdesc(json: unknown, label: string): Vmdesc {
  const fail = (where: string, what: string): never => {
    throw new VmdumpError('bad-input', `the vmdesc trailer is damaged: ${where} ${what}`, label);
  };
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const count = (v: unknown, where: string): void => {
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))
      fail(where, `is ${JSON.stringify(v)}, not a count`);
  };
  const entry = (v: unknown, where: string, depth: number): void => {
    if (depth > MAX_DEPTH) fail(where, `nests deeper than ${MAX_DEPTH} levels`);
    if (!isObject(v)) fail(where, 'is not an object');
    const e = v as Record<string, unknown>;
    count(e.size, `${where}.size`);
    for (const key of ['fields', 'subsections'] as const) {
      if (e[key] !== undefined && !Array.isArray(e[key])) fail(`${where}.${key}`, 'is not a list');
    }
    ((e.fields ?? []) as unknown[]).forEach((f, i) => {
      const at = `${where}.fields[${i}]`;
      if (!isObject(f) || typeof f.name !== 'string') fail(at, 'is not a named field');
      const field = f as Record<string, unknown>;
      if (field.size === undefined) fail(`${at}.size`, 'is missing');
      count(field.size, `${at}.size`);
      count(field.array_len, `${at}.array_len`);
      if (field.struct !== undefined) entry(field.struct, `${at}.struct`, depth + 1);
    });
    ((e.subsections ?? []) as unknown[]).forEach((sub, i) => entry(sub, `${where}.subsections[${i}]`, depth + 1));
  };
  if (!isObject(json) || !Array.isArray(json.devices)) fail('the root', 'has no "devices" list');
  const root = json as Record<string, unknown>;
  count(root.page_size, 'page_size');
  (root.devices as unknown[]).forEach((device, i) => entry(device, `devices[${i}]`, 0));
  return root as unknown as Vmdesc;
}

/**
 * A decoded section: field path → bytes, e.g. "env.regs", "parent_obj.config[0]", "cpu/efer32:env.efer".
 * `complete` is false when the trailer could not say how long a field is (see unsizedField); the
 * fields before it are decoded, the rest of the section is not.
 */
export class DeviceState {
  constructor(
    readonly name: string,
    readonly instance: number,
    readonly version: number,
    readonly fields: ReadonlyMap<string, Buffer>,
    readonly complete = true,
  ) {}

  has(path: string): boolean {
    return this.fields.has(path);
  }

  raw(path: string): Buffer {
    const bytes = this.fields.get(path);
    if (bytes === undefined)
      throw new VmdumpError('bad-input', `device ${this.name} (instance ${this.instance}) has no field ${path}`);
    return bytes;
  }

  /** Big-endian unsigned integer of the field's own width, element `index` of an array. */
  uint(path: string, index = 0, width?: number): bigint {
    const bytes = this.raw(path);
    const w = width ?? bytes.length;
    return bytes.subarray(index * w, index * w + w).reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
  }
}

function fieldBytes(field: VmdescField): number {
  return field.size * (field.array_len ?? 1);
}

/**
 * QEMU describes a compressible array by its first element only. When that element is a null
 * pointer (1 byte, an empty struct description), later elements may be whole structs of unknown
 * size (s390_css.css, docs/other-arches.md §8.3): from such a field on, the trailer says nothing.
 */
function unsizedField(field: VmdescField): boolean {
  return field.type === 'struct' && (field.array_len ?? 1) > 1 && (field.struct?.fields ?? []).length === 0;
}

/** Reads one FULL section body plus its subsections, as the entry describes them. */
export async function readDeviceState(
  reader: ByteReader,
  entry: VmdescEntry,
  name: string,
  instance: number,
  version: number,
): Promise<DeviceState> {
  const fields = new Map<string, Buffer>();
  const complete = await readEntry(reader, entry, '', fields);
  return new DeviceState(name, instance, version, fields, complete);
}

/** False when it stopped at an unsized field, leaving the reader inside the section. */
async function readEntry(reader: ByteReader, entry: VmdescEntry, prefix: string, into: Map<string, Buffer>): Promise<boolean> {
  const all = entry.fields ?? (entry.size !== undefined ? [{ name: 'data', type: 'buffer', size: entry.size }] : []);
  const unsized = all.findIndex(unsizedField);
  const list = unsized < 0 ? all : all.slice(0, unsized);
  const total = list.reduce((sum, f) => sum + fieldBytes(f), 0);
  await reader.ensure(total, `section ${entry.name ?? entry.vmsd_name ?? '?'}`);
  list.forEach((field, i) => {
    const bytes = reader.bytes(fieldBytes(field));
    const path = `${prefix}${field.name}`;
    // QEMU 9.1.3+ splits an array of pointers holding NULLs into runs under one name (§9.2): one field again.
    const continues = list[i - 1]?.name === field.name;
    into.set(path, continues ? Buffer.concat([into.get(path)!, bytes]) : bytes);
    const split = continues || list[i + 1]?.name === field.name;
    if (!split && field.struct !== undefined && (field.array_len ?? 1) === 1)
      addStructFields(bytes, field.struct, `${path}.`, into);
  });
  if (unsized >= 0) return false;
  for (const sub of entry.subsections ?? []) {
    await reader.ensure(1 + 1 + 255 + 4, 'a subsection header');
    const at = reader.position;
    if (reader.u8() !== Rec.Subsection) reader.fail(`expected subsection ${sub.vmsd_name} (0x05)`, at);
    const subName = reader.str8();
    if (subName !== sub.vmsd_name) reader.fail(`expected subsection ${sub.vmsd_name}, found "${subName}"`, at);
    reader.be32();
    if (!(await readEntry(reader, sub, `${subName}:`, into))) return false;
  }
  return true;
}

/** Struct members of a single (non-array) struct field, by offset; enough for PCI config inside parent_obj. */
function addStructFields(bytes: Buffer, struct: VmdescEntry, prefix: string, into: Map<string, Buffer>): void {
  let offset = 0;
  for (const field of struct.fields ?? []) {
    const size = fieldBytes(field);
    if (offset + size > bytes.length) return; // nested subsections make the layout variable: stop at what is certain
    into.set(`${prefix}${field.name}`, bytes.subarray(offset, offset + size));
    offset += size;
  }
}

/** A field's bytes as big-endian u64 lanes (the stream's byte order for every integer). */
export function bigEndianLanes(state: DeviceState, path: string): bigint[] {
  const bytes = state.raw(path);
  return Array.from({ length: bytes.length / 8 }, (_, i) => bytes.readBigUInt64BE(8 * i));
}
