/**
 * An independent reader of kdump-compressed files, written from docs/kdump-compressed.md (not from
 * the encoder): the flattened framing, the 64-bit headers (either byte order), bitmaps, descriptors
 * and page decompression with each codec's own library.
 */
import * as zlib from 'node:zlib';
import lzo from 'lzo';
import * as snappy from 'snappy';
import { decompress as zstdDecompress } from 'zstd-napi';

export interface FlatRecord {
  offset: number;
  size: number;
  payloadAt: number;
}

export interface Flattened {
  startHeader: Buffer;
  records: FlatRecord[];
  /** The logical file, as makedumpfile -R would rebuild it. */
  reassembled: Buffer;
}

export function readFlattened(file: Buffer): Flattened {
  if (file.toString('latin1', 0, 12) !== 'makedumpfile' || file.readBigInt64BE(16) !== 1n)
    throw new Error('not a flattened dump');
  const records: FlatRecord[] = [];
  let at = 4096;
  let end = 0;
  for (;;) {
    const offset = file.readBigInt64BE(at);
    const size = file.readBigInt64BE(at + 8);
    if (offset === -1n && size === -1n) {
      at += 16;
      break;
    }
    if (offset < 0n || size <= 0n) throw new Error(`bad record header at ${at}`);
    records.push({ offset: Number(offset), size: Number(size), payloadAt: at + 16 });
    end = Math.max(end, Number(offset + size));
    at += 16 + Number(size);
  }
  if (at !== file.length) throw new Error(`${file.length - at} bytes after the end marker`);
  const reassembled = Buffer.alloc(end);
  for (const r of records) file.copy(reassembled, r.offset, r.payloadAt, r.payloadAt + r.size);
  return { startHeader: file.subarray(0, 4096), records, reassembled };
}

export interface Descriptor {
  offset: number;
  size: number;
  flags: number;
  pageFlags: bigint;
}

export interface KdumpFile {
  bytes: Buffer;
  machine: string;
  /** The header's six utsname fields (sysname, nodename, release, version, machine, domainname), each up to its NUL. */
  utsname: string[];
  status: number;
  blockSize: number;
  subHdrSize: number;
  bitmapBlocks: number;
  maxMapnr: number;
  nrCpus: number;
  physBase: bigint;
  offsetVmcoreinfo: number;
  sizeVmcoreinfo: number;
  offsetNote: number;
  noteSize: number;
  maxMapnr64: bigint;
  bitmap1: Buffer;
  bitmap2: Buffer;
  /** pfn → descriptor, in pfn order. */
  pfns: number[];
  descriptors: Descriptor[];
}

/** The 64-bit layout, §2–§5, in either byte order (header_version 6 says which); bitmaps are byte arrays either way. */
export function readKdump(bytes: Buffer): KdumpFile {
  const little = bytes.readUInt32LE(8) === 6;
  if (bytes.toString('latin1', 0, 8) !== 'KDUMP   ' || (!little && bytes.readUInt32BE(8) !== 6))
    throw new Error('not a kdump v6 file');
  const u32 = (at: number): number => (little ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const u64 = (at: number): bigint => (little ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at));
  const blockSize = u32(428);
  const subHdrSize = u32(432);
  const bitmapBlocks = u32(436);
  const sub = blockSize;
  const lenBitmap = (bitmapBlocks / 2) * blockSize;
  const bitmapAt = (1 + subHdrSize) * blockSize;
  const bitmap2 = bytes.subarray(bitmapAt + lenBitmap, bitmapAt + 2 * lenBitmap);
  const pfns: number[] = [];
  for (let byte = 0; byte < bitmap2.length; byte += 1) {
    for (let bit = 0; bit < 8; bit += 1) if ((bitmap2[byte]! >> bit) & 1) pfns.push(byte * 8 + bit);
  }
  const descAt = (1 + subHdrSize + bitmapBlocks) * blockSize;
  const descriptors = pfns.map((_, i) => {
    const at = descAt + 24 * i;
    return { offset: Number(BigInt.asIntN(64, u64(at))), size: u32(at + 8), flags: u32(at + 12), pageFlags: u64(at + 16) };
  });
  return {
    bytes,
    machine: bytes.toString('latin1', 272, 272 + 65).replace(/\0.*$/s, ''),
    utsname: Array.from({ length: 6 }, (_, i) => bytes.toString('latin1', 12 + 65 * i, 12 + 65 * (i + 1)).replace(/\0.*$/s, '')),
    status: u32(424),
    blockSize,
    subHdrSize,
    bitmapBlocks,
    maxMapnr: u32(440),
    nrCpus: u32(460),
    physBase: u64(sub),
    offsetVmcoreinfo: Number(u64(sub + 32)),
    sizeVmcoreinfo: Number(u64(sub + 40)),
    offsetNote: Number(u64(sub + 48)),
    noteSize: Number(u64(sub + 56)),
    maxMapnr64: u64(sub + 96),
    bitmap1: bytes.subarray(bitmapAt, bitmapAt + lenBitmap),
    bitmap2,
    pfns,
    descriptors,
  };
}

/** Page `index` (in pfn order), decompressed with the codec its flags name. */
export function readPage(dump: KdumpFile, index: number): Buffer {
  const d = dump.descriptors[index]!;
  const data = dump.bytes.subarray(d.offset, d.offset + d.size);
  if (d.size > dump.blockSize) throw new Error(`descriptor ${index}: size ${d.size} > block size`);
  let page: Buffer;
  if (d.flags === 0) page = Buffer.from(data);
  else if (d.flags === 1) page = zlib.inflateSync(data);
  else if (d.flags === 2) page = lzo.decompress(data, dump.blockSize);
  else if (d.flags === 4) page = snappy.uncompressSync(data) as Buffer;
  else if (d.flags === 0x20) page = zstdDecompress(data);
  else throw new Error(`descriptor ${index}: flags ${d.flags}`);
  if (page.length !== dump.blockSize) throw new Error(`descriptor ${index}: decompressed to ${page.length} bytes`);
  return page;
}

/** Same pfns as `theirs`; each page decompresses to theirs; exactly the zero pages share the zero page (§5). Returns the count of mismatches. */
export function pageMismatches(ours: KdumpFile, theirs: KdumpFile): { pfnsEqual: boolean; differing: number } {
  const pfnsEqual = ours.pfns.length === theirs.pfns.length && ours.pfns.every((pfn, i) => pfn === theirs.pfns[i]);
  if (!pfnsEqual) return { pfnsEqual, differing: -1 };
  const zeroPageOffset = (1 + ours.subHdrSize + ours.bitmapBlocks) * ours.blockSize + 24 * ours.pfns.length;
  let differing = 0;
  for (let i = 0; i < ours.pfns.length; i += 1) {
    const page = readPage(ours, i);
    if (!page.equals(readPage(theirs, i))) differing += 1;
    if (page.every((b) => b === 0) !== (ours.descriptors[i]!.offset === zeroPageOffset)) differing += 1;
  }
  return { pfnsEqual, differing };
}

/** What makedumpfile and vmdump must agree on: the bitmaps and max_mapnr. */
export function bitmapsOf(dump: KdumpFile): { maxMapnr: bigint; bitmap1: string; bitmap2: string; pages: number } {
  // The bitmaps are as long as their blocks; compare the bytes up to max_mapnr.
  const bytes = Math.ceil(Number(dump.maxMapnr64) / 8);
  return {
    maxMapnr: dump.maxMapnr64,
    bitmap1: dump.bitmap1.subarray(0, bytes).toString('hex'),
    bitmap2: dump.bitmap2.subarray(0, bytes).toString('hex'),
    pages: dump.pfns.length,
  };
}
