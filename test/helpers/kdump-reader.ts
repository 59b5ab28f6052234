/**
 * An independent reader of kdump-compressed files, written from kdump-compressed.md (not from
 * the encoder): the flattened framing, the 64-bit little-endian headers, bitmaps, descriptors
 * and page decompression with each codec's own library.
 */
import * as zlib from 'node:zlib';
import lzo from 'lzo';
import * as snappy from 'snappy';
import { decompress as zstdDecompress } from 'zstd-napi';

export interface FlatRecord { offset: number; size: number; payloadAt: number }

export interface Flattened {
  startHeader: Buffer;
  records: FlatRecord[];
  /** The logical file, as makedumpfile -R would rebuild it. */
  reassembled: Buffer;
}

export function readFlattened(file: Buffer): Flattened {
  if (file.toString('latin1', 0, 12) !== 'makedumpfile' || file.readBigInt64BE(16) !== 1n) throw new Error('not a flattened dump');
  const records: FlatRecord[] = [];
  let at = 4096;
  let end = 0;
  for (;;) {
    const offset = file.readBigInt64BE(at);
    const size = file.readBigInt64BE(at + 8);
    if (offset === -1n && size === -1n) { at += 16; break; }
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

export interface Descriptor { offset: number; size: number; flags: number; pageFlags: bigint }

export interface KdumpFile {
  bytes: Buffer;
  machine: string;
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

/** The 64-bit little-endian layout (x86_64), §2–§5. */
export function readKdump(bytes: Buffer): KdumpFile {
  if (bytes.toString('latin1', 0, 8) !== 'KDUMP   ' || bytes.readUInt32LE(8) !== 6) throw new Error('not a kdump v6 file');
  const blockSize = bytes.readUInt32LE(428);
  const subHdrSize = bytes.readUInt32LE(432);
  const bitmapBlocks = bytes.readUInt32LE(436);
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
    return { offset: Number(bytes.readBigInt64LE(at)), size: bytes.readUInt32LE(at + 8), flags: bytes.readUInt32LE(at + 12), pageFlags: bytes.readBigUInt64LE(at + 16) };
  });
  return {
    bytes, machine: bytes.toString('latin1', 272, 272 + 65).replace(/\0.*$/s, ''), status: bytes.readUInt32LE(424), blockSize, subHdrSize,
    bitmapBlocks, maxMapnr: bytes.readUInt32LE(440), nrCpus: bytes.readUInt32LE(460),
    physBase: bytes.readBigUInt64LE(sub), offsetVmcoreinfo: Number(bytes.readBigUInt64LE(sub + 32)),
    sizeVmcoreinfo: Number(bytes.readBigUInt64LE(sub + 40)), offsetNote: Number(bytes.readBigUInt64LE(sub + 48)),
    noteSize: Number(bytes.readBigUInt64LE(sub + 56)), maxMapnr64: bytes.readBigUInt64LE(sub + 96),
    bitmap1: bytes.subarray(bitmapAt, bitmapAt + lenBitmap), bitmap2, pfns, descriptors,
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
