/**
 * makedumpfile's kdump-compressed ("diskdump", header version 6) structures as values, and
 * their encoders (docs/kdump-compressed.md §2, §3, §5). Like the ELF encoder, a value that does not
 * fit its field is an error, never truncated; the one clamp the format asks for (max_mapnr in
 * the 32-bit field) is made by the planner, not here.
 */
import { VmdumpError, hex } from '../../guest/errors.js';
import type { ElfClass, Endian } from '../../guest/guest.js';

export type KdumpCodec = 'zlib' | 'lzo' | 'snappy' | 'zstd';

/** DUMP_DH_COMPRESSED_* (makedumpfile diskdump_mod.h): the header's status and a descriptor's flags. */
export const codecFlags: Readonly<Record<KdumpCodec, number>> = { zlib: 0x1, lzo: 0x2, snappy: 0x4, zstd: 0x20 };

export interface KdumpTarget {
  readonly elfClass: ElfClass;
  readonly endian: Endian;
}

/**
 * The header's `struct new_utsname`: six NUL-padded fields of 65 bytes (docs/kdump-compressed.md
 * §2). QEMU fills only `machine`; makedumpfile copies the guest kernel's `init_uts_ns.name`, and
 * libkdumpfile (so drgn) needs at least sysname, release, version and machine.
 */
export interface Utsname {
  readonly sysname: string;
  readonly nodename: string;
  readonly release: string;
  readonly version: string;
  readonly machine: string;
  readonly domainname: string;
}

/** The utsname fields in their order in the struct. */
export const UTSNAME_FIELDS: readonly (keyof Utsname)[] = ['sysname', 'nodename', 'release', 'version', 'machine', 'domainname'];

/** A utsname with only `machine` set, as QEMU writes it. */
export function machineOnlyUtsname(machine: string): Utsname {
  return { sysname: '', nodename: '', release: '', version: '', machine, domainname: '' };
}

export interface DiskDumpHeader {
  readonly utsname: Utsname;
  readonly status: number;
  readonly blockSize: number;
  readonly subHdrSize: number;
  readonly bitmapBlocks: number;
  /** Already clamped to 0xFFFFFFFF (§1). */
  readonly maxMapnr: number;
  readonly nrCpus: number;
}

export interface KdumpSubHeader {
  readonly physBase: bigint;
  readonly dumpLevel: number;
  readonly offsetVmcoreinfo: bigint;
  readonly sizeVmcoreinfo: bigint;
  readonly offsetNote: bigint;
  readonly noteSize: bigint;
  readonly maxMapnr64: bigint;
}

/** One page_desc (24 bytes, packed). */
export interface PageDescriptor {
  readonly offset: number;
  readonly size: number;
  readonly flags: number;
}

export const KDUMP_SIGNATURE = 'KDUMP   ';
export const KDUMP_HEADER_VERSION = 6;
export const PAGE_DESCRIPTOR_SIZE = 24;
export const UTS_FIELD = 65;
const UTS_AT = 12;

export function diskDumpHeaderSize(elfClass: ElfClass): number {
  return elfClass === 64 ? 464 : 452;
}
export function subHeaderSize(elfClass: ElfClass): number {
  return elfClass === 64 ? 104 : 80;
}

type Width = 4 | 8;
type FieldLayout<T> = readonly (readonly [keyof T & string, number, Width])[];

/** After utsname and the timeval (22 / 10 bytes, the C alignment of struct timeval, §2). */
const headerFields: Readonly<Record<ElfClass, FieldLayout<DiskDumpHeader>>> = {
  64: [
    ['status', 424, 4],
    ['blockSize', 428, 4],
    ['subHdrSize', 432, 4],
    ['bitmapBlocks', 436, 4],
    ['maxMapnr', 440, 4],
    ['nrCpus', 460, 4],
  ],
  32: [
    ['status', 412, 4],
    ['blockSize', 416, 4],
    ['subHdrSize', 420, 4],
    ['bitmapBlocks', 424, 4],
    ['maxMapnr', 428, 4],
    ['nrCpus', 448, 4],
  ],
};

/** `unsigned long` is 4 bytes on i386 and 8-byte members align to 4 there (§3). */
const subHeaderFields: Readonly<Record<ElfClass, FieldLayout<KdumpSubHeader>>> = {
  64: [
    ['physBase', 0, 8],
    ['dumpLevel', 8, 4],
    ['offsetVmcoreinfo', 32, 8],
    ['sizeVmcoreinfo', 40, 8],
    ['offsetNote', 48, 8],
    ['noteSize', 56, 8],
    ['maxMapnr64', 96, 8],
  ],
  32: [
    ['physBase', 0, 4],
    ['dumpLevel', 4, 4],
    ['offsetVmcoreinfo', 20, 8],
    ['sizeVmcoreinfo', 28, 4],
    ['offsetNote', 32, 8],
    ['noteSize', 40, 4],
    ['maxMapnr64', 72, 8],
  ],
};

function setField(view: DataView, at: number, width: Width, value: bigint | number, little: boolean, name: string): void {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << BigInt(width * 8)) {
    throw new VmdumpError('unrepresentable', `kdump ${name} = ${hex(big)} does not fit in ${width} bytes`);
  }
  if (width === 4) view.setUint32(at, Number(big), little);
  else view.setBigUint64(at, big, little);
}

function encodeFields<T extends object>(size: number, layout: FieldLayout<T>, value: T, target: KdumpTarget): Uint8Array {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (const [name, at, width] of layout)
    setField(view, at, width, value[name] as bigint | number, target.endian === 'little', name);
  return bytes;
}

export function encodeDiskDumpHeader(header: DiskDumpHeader, target: KdumpTarget): Uint8Array {
  const bytes = encodeFields(diskDumpHeaderSize(target.elfClass), headerFields[target.elfClass], header, target);
  const encoder = new TextEncoder();
  bytes.set(encoder.encode(KDUMP_SIGNATURE), 0);
  new DataView(bytes.buffer).setUint32(8, KDUMP_HEADER_VERSION, target.endian === 'little');
  UTSNAME_FIELDS.forEach((field, i) =>
    bytes.set(encoder.encode(header.utsname[field]).subarray(0, UTS_FIELD - 1), UTS_AT + i * UTS_FIELD),
  );
  return bytes;
}

export function encodeKdumpSubHeader(sub: KdumpSubHeader, target: KdumpTarget): Uint8Array {
  return encodeFields(subHeaderSize(target.elfClass), subHeaderFields[target.elfClass], sub, target);
}

function decodeFields<T>(bytes: Uint8Array, layout: FieldLayout<T>, target: KdumpTarget): T {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const little = target.endian === 'little';
  const value: Record<string, bigint | number> = {};
  for (const [name, at, width] of layout) value[name] = width === 4 ? view.getUint32(at, little) : view.getBigUint64(at, little);
  return value as T;
}

/** The header's fields as the encoder lays them out (bytes: at least diskDumpHeaderSize). */
export function decodeDiskDumpHeader(bytes: Uint8Array, target: KdumpTarget): DiskDumpHeader & { readonly version: number } {
  const fields = decodeFields<DiskDumpHeader>(bytes, headerFields[target.elfClass], target);
  const utsname = decodeUtsname(bytes.subarray(UTS_AT, UTS_AT + UTSNAME_FIELDS.length * UTS_FIELD));
  const version = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, target.endian === 'little');
  return { ...fields, utsname, version };
}

/** Six 65-byte NUL-padded fields (the header's, or the kernel's `init_uts_ns.name`), each up to its first NUL. */
export function decodeUtsname(bytes: Uint8Array): Utsname {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (i: number): string => text.toString('latin1', i * UTS_FIELD, (i + 1) * UTS_FIELD).replace(/\0[^]*$/, '');
  return Object.fromEntries(UTSNAME_FIELDS.map((name, i) => [name, field(i)])) as unknown as Utsname;
}

export function decodeKdumpSubHeader(bytes: Uint8Array, target: KdumpTarget): KdumpSubHeader {
  const fields = decodeFields<Record<keyof KdumpSubHeader, bigint | number>>(bytes, subHeaderFields[target.elfClass], target);
  const big = (v: bigint | number): bigint => BigInt(v);
  return {
    physBase: big(fields.physBase),
    dumpLevel: Number(fields.dumpLevel),
    offsetVmcoreinfo: big(fields.offsetVmcoreinfo),
    sizeVmcoreinfo: big(fields.sizeVmcoreinfo),
    offsetNote: big(fields.offsetNote),
    noteSize: big(fields.noteSize),
    maxMapnr64: big(fields.maxMapnr64),
  };
}

/** Writes one descriptor at `at` of `view`, page_flags (+16) included: the buffer need not be zeroed. */
/** Set bits in a bitmap's bytes: its dumpable pages, one descriptor each (docs/kdump-compressed.md §4). */
export function countSetBits(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) {
    for (let b = byte; b !== 0; b &= b - 1) count += 1;
  }
  return count;
}

export function encodePageDescriptor(view: DataView, at: number, desc: PageDescriptor, little: boolean): void {
  view.setBigUint64(at, BigInt(desc.offset), little);
  view.setUint32(at + 8, desc.size, little);
  view.setUint32(at + 12, desc.flags, little);
  view.setBigUint64(at + 16, 0n, little);
}
