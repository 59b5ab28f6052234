/**
 * Structural check of a kdump-compressed file (plain, or flattened through DumpBytes):
 * header, sub-header and notes inside their blocks, bitmaps and descriptors inside the file,
 * one descriptor per bit of the 2nd bitmap, every descriptor's data inside the file and, per
 * codec, decompressing to exactly one block (docs/kdump-compressed.md §1–§5; what crash's
 * read_dump_header and cache_page insist on).
 */
import * as zlib from 'node:zlib';
import { VmdumpError, hex } from '../guest/errors.js';
import {
  KDUMP_SIGNATURE,
  PAGE_DESCRIPTOR_SIZE,
  codecFlags,
  countSetBits,
  decodeDiskDumpHeader,
  decodeKdumpSubHeader,
  diskDumpHeaderSize,
  subHeaderSize,
  type KdumpCodec,
  type KdumpTarget,
} from '../formats/kdump/kdump-format.js';
import type { DumpBytes } from './dump-bytes.js';
import { checkNotes } from './verify-elf.js';

export interface KdumpReport {
  readonly format: 'kdump';
  readonly summary: string;
  /** Sound, but some reader will refuse it: each warning names the reader and why. */
  readonly warnings: readonly string[];
}

/** libkdumpfile (drgn's kdump reader) takes the architecture and kernel from these header fields. */
const LIBKDUMPFILE_NEEDS = ['sysname', 'release', 'version', 'machine'] as const;

type Decompress = (data: Buffer, blockSize: number) => Buffer;

async function decompressors(): Promise<Map<number, Decompress>> {
  const { default: lzo } = await import('lzo');
  const snappy = await import('snappy');
  const { decompress: zstd } = await import('zstd-napi');
  const byCodec: Record<KdumpCodec, Decompress> = {
    zlib: (data) => zlib.inflateSync(data),
    lzo: (data, blockSize) => lzo.decompress(data, blockSize),
    snappy: (data) => snappy.uncompressSync(data) as Buffer,
    zstd: (data) => zstd(data),
  };
  return new Map(Object.entries(byCodec).map(([codec, fn]) => [codecFlags[codec as KdumpCodec], fn]));
}

/** Byte order and structure size from the fields that only make sense one way (the format has no class field). */
function targetOf(head: Buffer): KdumpTarget | undefined {
  for (const endian of ['little', 'big'] as const) {
    const version = endian === 'little' ? head.readUInt32LE(8) : head.readUInt32BE(8);
    if (version === 0 || version > 64) continue;
    for (const elfClass of [64, 32] as const) {
      const blockSize = decodeDiskDumpHeader(head, { elfClass, endian }).blockSize;
      if (blockSize >= 1024 && blockSize <= 1 << 20 && (blockSize & (blockSize - 1)) === 0) return { elfClass, endian };
    }
  }
  return undefined;
}

export async function verifyKdump(bytes: DumpBytes, file: string): Promise<KdumpReport> {
  const fail = (message: string): never => {
    throw new VmdumpError('bad-input', message, file);
  };
  const exactly = async (offset: number, length: number, what: string): Promise<Buffer> => {
    const got = await bytes.read(offset, length);
    return got.length === length
      ? got
      : fail(`truncated: ${what} [${hex(offset)}, +${length}) ends past the end of the file (${hex(bytes.size)})`);
  };
  const head = Buffer.alloc(464);
  (await bytes.read(0, 464)).copy(head);
  if (head.toString('latin1', 0, 8) !== KDUMP_SIGNATURE) fail('the signature is not "KDUMP   "');
  const target = targetOf(head) ?? fail('header_version and block_size make sense in no byte order and width');
  await exactly(0, diskDumpHeaderSize(target.elfClass), 'the disk_dump_header');
  const header = decodeDiskDumpHeader(head, target);
  const block = header.blockSize;
  const sub = decodeKdumpSubHeader(await exactly(block, subHeaderSize(target.elfClass), 'the sub-header'), target);
  const areaEnd = (1 + header.subHdrSize) * block;
  if (areaEnd > bytes.size)
    fail(`the sub-header area (${header.subHdrSize} blocks) runs past the end of the file (${hex(bytes.size)})`);
  if (sub.noteSize > 0n) {
    if (sub.offsetNote < BigInt(block + subHeaderSize(target.elfClass)) || sub.offsetNote + sub.noteSize > BigInt(areaEnd)) {
      fail(
        `the notes [${hex(sub.offsetNote)}, +${hex(sub.noteSize)}) are outside the sub-header area [${hex(block)}, ${hex(areaEnd)})`,
      );
    }
    checkNotes(await exactly(Number(sub.offsetNote), Number(sub.noteSize), 'the notes'), target.endian, 'the notes', fail);
  }
  if (
    sub.sizeVmcoreinfo > 0n &&
    (sub.offsetVmcoreinfo < sub.offsetNote || sub.offsetVmcoreinfo + sub.sizeVmcoreinfo > sub.offsetNote + sub.noteSize)
  ) {
    fail(`VMCOREINFO [${hex(sub.offsetVmcoreinfo)}, +${hex(sub.sizeVmcoreinfo)}) is not inside the notes`);
  }
  const maxMapnr =
    target.elfClass === 64 || sub.maxMapnr64 > 0n ? Number(sub.maxMapnr64 || BigInt(header.maxMapnr)) : header.maxMapnr;
  const lenBitmap = (header.bitmapBlocks / 2) * block;
  if (header.bitmapBlocks % 2 !== 0 || lenBitmap < Math.ceil(maxMapnr / 8)) {
    fail(`bitmap_blocks ${header.bitmapBlocks} cannot hold two bitmaps of max_mapnr ${maxMapnr} bits`);
  }
  const descAt = areaEnd + header.bitmapBlocks * block;
  // The descriptors follow the bitmaps, so the bitmaps end inside the file; checked before they
  // are read, or a damaged bitmap_blocks has verify count terabytes of zeros past the end.
  if (descAt > bytes.size) {
    fail(
      `bitmap_blocks ${header.bitmapBlocks} puts the bitmaps' end at ${hex(descAt)}, past the end of the file (${hex(bytes.size)})`,
    );
  }
  const pages = await countBits(bytes, areaEnd + lenBitmap, lenBitmap);
  const descEnd = descAt + pages * PAGE_DESCRIPTOR_SIZE;
  if (descEnd > bytes.size)
    fail(`${pages} page descriptors end at ${hex(descEnd)}, past the end of the file (${hex(bytes.size)})`);
  const counts = await checkDescriptors(bytes, descAt, pages, descEnd, block, target, fail);
  return {
    format: 'kdump',
    summary:
      `kdump-compressed (header version ${header.version}, ${target.elfClass}-bit ${target.endian}-endian, ${header.utsname.machine || 'no machine name'}): ` +
      `${header.nrCpus} CPUs, ${pages} pages (${counts.compressed} compressed, ${counts.raw} raw, ${counts.shared} sharing another's data), ` +
      `notes ${sub.noteSize} bytes${sub.sizeVmcoreinfo > 0n ? ', VMCOREINFO' : ''}`,
    warnings: utsnameWarnings(header.utsname),
  };
}

function utsnameWarnings(utsname: Record<(typeof LIBKDUMPFILE_NEEDS)[number], string>): string[] {
  const missing = LIBKDUMPFILE_NEEDS.filter((field) => utsname[field] === '');
  if (missing.length === 0) return [];
  return [
    `the header's utsname has no ${missing.join(', ')}: drgn (libkdumpfile) will not open this file; crash and makedumpfile will`,
  ];
}

async function countBits(bytes: DumpBytes, at: number, length: number): Promise<number> {
  let count = 0;
  for (let done = 0; done < length; done += 1 << 20) {
    count += countSetBits(await bytes.read(at + done, Math.min(1 << 20, length - done)));
  }
  return count;
}

async function checkDescriptors(
  bytes: DumpBytes,
  descAt: number,
  pages: number,
  dataStart: number,
  block: number,
  target: KdumpTarget,
  fail: (m: string) => never,
): Promise<{ compressed: number; raw: number; shared: number }> {
  const decompress = await decompressors();
  const seen = new Set<number>();
  const counts = { compressed: 0, raw: 0, shared: 0 };
  const little = target.endian === 'little';
  const perChunk = 65536;
  for (let first = 0; first < pages; first += perChunk) {
    const n = Math.min(perChunk, pages - first);
    const table = await bytes.read(descAt + first * PAGE_DESCRIPTOR_SIZE, n * PAGE_DESCRIPTOR_SIZE);
    for (let i = 0; i < n; i += 1) {
      const at = i * PAGE_DESCRIPTOR_SIZE;
      const offset = Number(little ? table.readBigInt64LE(at) : table.readBigInt64BE(at));
      const size = little ? table.readUInt32LE(at + 8) : table.readUInt32BE(at + 8);
      const flags = little ? table.readUInt32LE(at + 12) : table.readUInt32BE(at + 12);
      const which = `page descriptor ${first + i}`;
      if (size === 0 || size > block) fail(`${which}: size ${size} is not in 1..${block}`);
      if (offset < dataStart || offset + size > bytes.size)
        fail(`${which}: data [${hex(offset)}, +${size}) is outside the page data [${hex(dataStart)}, ${hex(bytes.size)})`);
      if (seen.has(offset)) {
        counts.shared += 1;
        continue;
      }
      seen.add(offset);
      const data = await bytes.read(offset, size);
      if (flags === 0) {
        if (size !== block) fail(`${which}: stored raw with size ${size}, not ${block}`);
        counts.raw += 1;
        continue;
      }
      const codec = decompress.get(flags) ?? fail(`${which}: flags ${hex(flags)} name no single known codec`);
      let page: Buffer;
      try {
        page = codec(data, block);
      } catch (error) {
        fail(`${which}: data does not decompress: ${(error as Error).message}`);
      }
      if (page!.length !== block) fail(`${which}: decompresses to ${page!.length} bytes, not ${block}`);
      counts.compressed += 1;
    }
  }
  return counts;
}
