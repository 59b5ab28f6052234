/**
 * Reads a span of a RAM block out of the stream file, group by group (page-index.ts): from a
 * group's checkpoint the RAM records are parsed again, across section boundaries (EOS, footer,
 * PART/END header), until a record leaves the group or the block. Pages the stream never sent
 * read as zeros; re-sent pages come from the override map.
 */
import { VmdumpError, hex } from '../../guest/errors.js';
import { readExactly } from '../../guest/read-exactly.js';
import { ByteReader } from './byte-reader.js';
import type { MappedRam, RamBlock } from './migration-stream.js';
import { PAGES_PER_GROUP } from './page-index.js';
import { RamFlag, Rec } from './stream-grammar.js';

export interface StreamFile {
  readonly fd: number;
  readonly size: number;
  readonly label: string;
}

/** Reused read buffers per stream file, one per group being decoded at once (the record source reads ahead). */
const scratchBuffers = new WeakMap<StreamFile, Buffer[]>();
const MAX_IDLE_SCRATCH = 4;
const SMALL_READAHEAD = 64 << 10;

/** Fills `target` (a group's bytes, or less for a block's last group) with the pages of `group`. */
async function decodeGroup(file: StreamFile, block: RamBlock, group: number, target: Buffer): Promise<void> {
  const first = group * PAGES_PER_GROUP;
  const end = first + target.length / block.pageSize;
  const start = block.pages.checkpoint(group);
  if (start === undefined) {
    target.fill(0);
  } else {
    // The next group's checkpoint bounds this group's records exactly in an in-order stream.
    const extent = block.pages.extent(group) ?? SMALL_READAHEAD;
    const idle = scratchBuffers.get(file) ?? [];
    scratchBuffers.set(file, idle);
    let scratch = idle.pop();
    if (scratch === undefined || scratch.length < extent)
      scratch = Buffer.allocUnsafe(Math.max(extent, PAGES_PER_GROUP * (block.pageSize + 8) + 512));
    const reader = new ByteReader(file.fd, file.size, file.label, start, extent, scratch);
    try {
      await replayRecords(reader, block, first, end, target);
    } finally {
      if (idle.length < MAX_IDLE_SCRATCH) idle.push(scratch);
    }
  }
  if (block.pages.overrideCount > 0) await applyOverrides(file, block, first, end, target);
}

async function applyOverrides(file: StreamFile, block: RamBlock, first: number, end: number, target: Buffer): Promise<void> {
  const pageSize = block.pageSize;
  for (let page = first; page < end; page += 1) {
    const source = block.pages.override(page);
    if (source === undefined) continue;
    const at = (page - first) * pageSize;
    if (source.kind === 'fill') {
      target.fill(source.byte, at, at + pageSize);
    } else {
      const reader = new ByteReader(file.fd, file.size, file.label, source.offset, pageSize);
      await reader.ensure(pageSize, 'a re-sent page');
      reader.copyTo(target, at, pageSize);
    }
  }
}

/** Replays the group's records into `target`; pages not sent (gaps) become zeros as they are passed. */
async function replayRecords(reader: ByteReader, block: RamBlock, first: number, end: number, target: Buffer): Promise<void> {
  const pageSize = block.pageSize;
  let previous = first - 1;
  const zeroUpTo = (page: number): void => {
    if (page > previous + 1) target.fill(0, (previous + 1 - first) * pageSize, (page - first) * pageSize);
  };
  try {
    for (;;) {
      if (reader.remaining < 9) return;
      await reader.ensure(8, 'a RAM record');
      const at = reader.position;
      const word = reader.be64();
      const flags = Number(word & 0xfffn);
      if (flags & RamFlag.Eos) {
        // End of a RAM chunk: a footer may follow, then the next PART/END of the RAM section, or the device state.
        await reader.ensure(Math.min(reader.remaining, 10), 'a section boundary');
        if (reader.peekU8() === Rec.Footer) {
          reader.u8();
          reader.be32();
        }
        await skipForeignChunks(reader, block);
        const type = reader.peekU8();
        if (type !== Rec.SectionPart && type !== Rec.SectionEnd) return;
        reader.u8();
        reader.be32();
        continue;
      }
      if (!(flags & RamFlag.Continue)) {
        await reader.ensure(1, 'a block id');
        const length = reader.peekU8();
        await reader.ensure(1 + length, 'a block id');
        if (reader.str8() !== block.id) return;
      }
      const page = Number(word / BigInt(pageSize));
      if (page >= end || page <= previous) return;
      zeroUpTo(page);
      previous = page;
      const into = (page - first) * pageSize;
      if (flags & RamFlag.Zero) {
        await reader.ensure(1, 'a ZERO record');
        target.fill(reader.u8(), into, into + pageSize);
      } else if (flags & RamFlag.Page) {
        await reader.ensure(pageSize, 'a page');
        reader.copyTo(target, into, pageSize);
      } else {
        throw new VmdumpError(
          'bad-input',
          `RAM record flags ${hex(flags)} changed since the stream was indexed at byte ${hex(at)}`,
        );
      }
    }
  } finally {
    zeroUpTo(end);
  }
}

/** Steps over other iterative sections' chunks (indexed in pass 1) that sit between two RAM chunks. */
async function skipForeignChunks(reader: ByteReader, block: RamBlock): Promise<void> {
  for (let end = block.foreignChunks.get(reader.position); end !== undefined; end = block.foreignChunks.get(reader.position)) {
    reader.skip(end - reader.position);
    await reader.ensure(Math.min(reader.remaining, 5), 'a section boundary');
  }
}

/** Reads `into.length` bytes of `block` from `offset`. Whole groups land in `into` directly. */
export async function readBlock(file: StreamFile, block: RamBlock, offset: bigint, into: Uint8Array): Promise<void> {
  if (offset < 0n || offset + BigInt(into.length) > block.usedLength)
    throw new VmdumpError(
      'internal',
      `a read of ${into.length} bytes at ${hex(offset)} goes past the end of RAM block ${block.id} (${hex(block.usedLength)} bytes)`,
    );
  if (block.mapped !== undefined) return readMappedRam(file, block, block.mapped, offset, into);
  const groupBytes = PAGES_PER_GROUP * block.pageSize;
  const target = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
  let done = 0;
  while (done < target.length) {
    const at = offset + BigInt(done);
    const group = Number(at / BigInt(groupBytes));
    const groupStart = BigInt(group) * BigInt(groupBytes);
    const groupLength = Number(
      block.usedLength - groupStart < BigInt(groupBytes) ? block.usedLength - groupStart : BigInt(groupBytes),
    );
    const inGroup = Number(at - groupStart);
    const take = Math.min(groupLength - inGroup, target.length - done);
    if (inGroup === 0 && take === groupLength) {
      await decodeGroup(file, block, group, target.subarray(done, done + take));
    } else {
      (await decodedGroup(file, block, group, groupLength)).copy(target, done, inGroup, inGroup + take);
    }
    done += take;
  }
}

/**
 * Groups decoded for a read that wanted part of them, kept for the next read, which usually wants
 * the rest: a RAM range that starts mid-group (q35's RAM above 1 MiB) or reads smaller than a group
 * (kdump's page batches) would otherwise parse and copy every group twice. A read under way is
 * shared by a concurrent one that wants the same group.
 */
const partialGroups = new WeakMap<RamBlock, { kept: Map<number, Promise<Buffer>>; free: Buffer[] }>();
const KEPT_GROUPS = 2;

function decodedGroup(file: StreamFile, block: RamBlock, group: number, groupLength: number): Promise<Buffer> {
  let cache = partialGroups.get(block);
  if (cache === undefined) {
    cache = { kept: new Map(), free: [] };
    partialGroups.set(block, cache);
  }
  const { kept, free } = cache;
  let decoded = kept.get(group);
  if (decoded === undefined) {
    const reused = free.pop();
    const bytes =
      reused !== undefined && reused.length >= groupLength ? reused.subarray(0, groupLength) : Buffer.allocUnsafe(groupLength);
    decoded = decodeGroup(file, block, group, bytes).then(() => bytes);
    decoded.catch(() => kept.delete(group)); // a failed read is not kept: the next one fails on its own
    kept.set(group, decoded);
    if (kept.size > KEPT_GROUPS) {
      const oldest = kept.keys().next().value!;
      // Its buffer is reused once the reads waiting on it have copied (their callbacks run first).
      kept.get(oldest)!.then(
        (buffer) => free.length < KEPT_GROUPS && free.push(buffer),
        () => undefined,
      );
      kept.delete(oldest);
    }
  }
  return decoded;
}

/** Each mapped-ram block's bitmap, read once (one bit per page: 2 MiB for 64 GiB of 4 KiB pages). */
const bitmaps = new WeakMap<RamBlock, Promise<Uint8Array>>();

function bitmapOf(file: StreamFile, block: RamBlock, mapped: MappedRam): Promise<Uint8Array> {
  let bitmap = bitmaps.get(block);
  if (bitmap === undefined) {
    const pages = Number(block.usedLength / BigInt(block.pageSize));
    const bytes = new Uint8Array(Math.ceil(pages / 8));
    bitmap = readExactly(file.fd, BigInt(mapped.bitmapOffset), bytes, file.label).then(() => bytes);
    bitmaps.set(block, bitmap);
  }
  return bitmap;
}

/** Absent pages between two present runs that are read over rather than split into two reads. */
const MAX_GAP_PAGES = 16;
/** Reads of one request in flight at once: libuv's default thread pool has four threads. */
const PARALLEL_READS = 4;
/** A longer present run is split so that one chunk's reads spread over the pool's threads. */
const MAX_READ_BYTES = 512 << 10;

/**
 * A mapped-ram block read in place (docs/qemu-migration-stream.md §11): the pages the bitmap marks
 * present are read straight from their offsets, the others are zero pages QEMU never wrote (or
 * wrote before they became zero: the bitmap, not the file, says). Present runs separated by a
 * small gap are read as one span and the gap cleared, so a fragmented bitmap costs few reads; the
 * spans are read in parallel (the file is random access, the order does not matter).
 */
async function readMappedRam(
  file: StreamFile,
  block: RamBlock,
  mapped: MappedRam,
  offset: bigint,
  into: Uint8Array,
): Promise<void> {
  const bitmap = await bitmapOf(file, block, mapped);
  const start = Number(offset);
  const { reads, zeros } = planMappedReads(bitmap, block.pageSize, start, into.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let read = reads[next++]; read !== undefined; read = reads[next++])
      await readExactly(file.fd, BigInt(mapped.pagesOffset + start + read.from), into.subarray(read.from, read.to), file.label);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, reads.length) }, worker));
  // After the reads: a gap that was read over holds whatever the file has there.
  for (const zero of zeros) into.fill(0, zero.from, zero.to);
}

interface Span {
  readonly from: number;
  readonly to: number;
}

/**
 * For `length` bytes of the block from `start`: the spans to read (present runs merged over small
 * gaps, cut at MAX_READ_BYTES) and the spans of absent pages to clear, both relative to `start`.
 */
function planMappedReads(bitmap: Uint8Array, pageSize: number, start: number, length: number): { reads: Span[]; zeros: Span[] } {
  const present = (page: number): boolean => ((bitmap[page >> 3]! >> (page & 7)) & 1) === 1;
  const firstPage = Math.floor(start / pageSize);
  const lastPage = Math.floor((start + length - 1) / pageSize);
  const from = (page: number): number => Math.max(0, page * pageSize - start);
  const to = (page: number): number => Math.min(length, (page + 1) * pageSize - start);
  const reads: Span[] = [];
  const zeros: Span[] = [];
  let page = firstPage;
  while (page <= lastPage) {
    let last = page;
    if (!present(page)) {
      while (last < lastPage && !present(last + 1)) last += 1;
      zeros.push({ from: from(page), to: to(last) });
    } else {
      for (let next = page + 1; next <= lastPage && next - last <= MAX_GAP_PAGES + 1; next += 1) if (present(next)) last = next;
      for (let gap = page + 1; gap < last; gap += 1) if (!present(gap)) zeros.push({ from: from(gap), to: to(gap) });
      for (let at = from(page); at < to(last); at += MAX_READ_BYTES)
        reads.push({ from: at, to: Math.min(to(last), at + MAX_READ_BYTES) });
    }
    page = last + 1;
  }
  return { reads, zeros };
}
