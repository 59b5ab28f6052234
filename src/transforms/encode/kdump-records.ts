/**
 * A kdump-compressed dump as placed records: (offset, bytes) in the order QEMU writes them
 * (docs/kdump-compressed.md §7). A stream sink frames them as makedumpfile's flattened format; the
 * plain file sink writes each at its offset. Records are never empty (an empty flattened record
 * ends makedumpfile -R's reassembly).
 */
import {
  PAGE_DESCRIPTOR_SIZE,
  encodeDiskDumpHeader,
  encodeKdumpSubHeader,
  encodePageDescriptor,
  type PageDescriptor,
} from '../../formats/kdump/kdump-format.js';
import type { PlacedBytes } from '../../formats/kdump/flattened.js';
import { VmdumpError, hex } from '../../guest/errors.js';
import { fileOffset } from '../../guest/units.js';
import { bitmapBytes, type KdumpPlan } from '../plan/kdump-plan.js';

export type { PlacedBytes };

/** A kdump plan's offsets are exact integers below 2^53 (the plan checks the file fits). */
const placed = (offset: number) => fileOffset(BigInt(offset));

/** Header, sub-header, notes, then the two bitmaps chunk by chunk (§4). */
export function* kdumpHeadRecords(plan: KdumpPlan): Generator<PlacedBytes> {
  const { blockSize, target } = plan;
  yield { offset: fileOffset(0n), bytes: encodeDiskDumpHeader(plan.header, target) };
  yield { offset: placed(blockSize), bytes: encodeKdumpSubHeader(plan.subHeader, target) };
  if (plan.notes.length > 0) yield { offset: fileOffset(plan.subHeader.offsetNote), bytes: plan.notes };
  yield* bitmapRecords(plan);
}

/**
 * QEMU writes each B-byte chunk to bitmap 1 and then bitmap 2, up to the chunk holding the last
 * set bit; later chunks stay holes (zeros). The portable layout does the same in larger chunks.
 */
function* bitmapRecords(plan: KdumpPlan): Generator<PlacedBytes> {
  const chunk = plan.layout === 'qemu' ? plan.blockSize : plan.recordBytes;
  const last = plan.runs.at(-1)!;
  const lastByte = Math.floor((last.first + last.count - 1) / 8);
  for (let start = 0; start <= lastByte; start += chunk) {
    const length = Math.min(chunk, plan.bitmapLength - start);
    const first = bitmapBytes(plan.runs, start, length);
    yield { offset: placed(plan.bitmapOffset + start), bytes: first };
    yield { offset: placed(plan.bitmapOffset + plan.bitmapLength + start), bytes: secondBitmapBytes(plan, first, start, length) };
  }
}

/** The 2nd bitmap's bytes: the 1st's, or the pages a dump level keeps (§4). */
function secondBitmapBytes(plan: KdumpPlan, first: Uint8Array, start: number, length: number): Uint8Array {
  if (plan.kept === undefined) return first;
  const bytes = new Uint8Array(length);
  bytes.set(plan.kept.subarray(start, start + length));
  return bytes;
}

/**
 * Turns each page's outcome, in pfn order, into descriptor and data records through two caches
 * of `recordBytes`, flushed like QEMU's write_cache (§5): a cache is written when the next item
 * would overflow it; a page's data goes in before its descriptor; at the end the descriptors
 * are flushed first, then the data.
 */
export class PageRecordAssembler {
  private readonly descriptors: Cache;
  private readonly data: Cache;
  private readonly zero: PageDescriptor;
  private readonly little: boolean;
  private nextData: number;
  private readonly flushed: PlacedBytes[] = [];
  /** Bytes of page data placed so far (the zero page included): compressed size of the dump. */
  dataBytes = 0;

  /**
   * `allocate` gives each cache buffer (at least `plan.recordBytes`): a pool whose buffers the
   * sink hands back once written (pipeline/chunk-pool.ts), or fresh ones.
   */
  constructor(plan: KdumpPlan, allocate: () => Buffer = () => Buffer.allocUnsafe(plan.recordBytes)) {
    const descriptorCapacity = Math.floor(plan.recordBytes / PAGE_DESCRIPTOR_SIZE) * PAGE_DESCRIPTOR_SIZE;
    this.descriptors = new Cache(plan.descriptorOffset, descriptorCapacity, allocate);
    this.data = new Cache(plan.zeroPageOffset, plan.recordBytes, allocate);
    this.little = plan.target.endian === 'little';
    this.zero = { offset: plan.zeroPageOffset, size: plan.blockSize, flags: 0 };
    this.nextData = plan.zeroPageOffset;
    this.addData(new Uint8Array(plan.blockSize));
  }

  /** `bytes` undefined: an all-zero page (it shares the zero page). Flags 0: stored raw. */
  addPage(bytes: Uint8Array | undefined, flags: number): void {
    if (bytes === undefined) {
      this.addDescriptor(this.zero);
      return;
    }
    const offset = this.nextData;
    this.addData(bytes);
    this.addDescriptor({ offset, size: bytes.length, flags });
  }

  /** Records completed since the last call. */
  take(): PlacedBytes[] {
    return this.flushed.splice(0);
  }

  finish(): PlacedBytes[] {
    this.descriptors.flushInto(this.flushed);
    this.data.flushInto(this.flushed);
    return this.take();
  }

  private addData(bytes: Uint8Array): void {
    this.data.reserve(bytes.length, this.flushed).set(bytes);
    this.nextData += bytes.length;
    this.dataBytes += bytes.length;
  }

  private addDescriptor(desc: PageDescriptor): void {
    const at = this.descriptors.reserve(PAGE_DESCRIPTOR_SIZE, this.flushed);
    encodePageDescriptor(this.descriptors.view, at.byteOffset - this.descriptors.view.byteOffset, desc, this.little);
  }
}

/** QEMU's DataCache: bytes destined for consecutive file offsets, written in one record when full. */
class Cache {
  private buffer: Uint8Array;
  /** Over the current buffer, for encoding into it. */
  view: DataView;
  private used = 0;

  constructor(
    private offset: number,
    private readonly capacity: number,
    private readonly allocate: () => Buffer,
  ) {
    this.buffer = this.fresh();
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, capacity);
  }

  private fresh(): Buffer {
    const buffer = this.allocate();
    if (buffer.length < this.capacity) throw new Error(`a record buffer of ${buffer.length} bytes, under ${this.capacity}`);
    return buffer;
  }

  /** Room for `size` more bytes (flushing first if they would overflow), as a view to fill. */
  reserve(size: number, out: PlacedBytes[]): Uint8Array {
    if (this.used + size > this.capacity) this.flushInto(out);
    const view = this.buffer.subarray(this.used, this.used + size);
    this.used += size;
    return view;
  }

  flushInto(out: PlacedBytes[]): void {
    if (this.used === 0) return;
    out.push({ offset: placed(this.offset), bytes: this.buffer.subarray(0, this.used) });
    this.offset += this.used;
    this.used = 0;
    // Every byte handed out is written before it is flushed, so a fresh buffer need not be zeroed.
    this.buffer = this.fresh();
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.capacity);
  }
}

/**
 * The plan check for a kdump file: head records (headers, notes, bitmaps) lie before the
 * descriptors; descriptor records run contiguous from the planned descriptor offset and end
 * exactly where the zero page starts; data records run contiguous from the zero page.
 */
export async function* checkedKdumpRecords(plan: KdumpPlan, records: AsyncIterable<PlacedBytes>): AsyncGenerator<PlacedBytes> {
  const descriptorStart = BigInt(plan.descriptorOffset);
  const dataStart = BigInt(plan.zeroPageOffset);
  let descriptors = descriptorStart;
  let data = dataStart;
  const wrong = (what: string, record: PlacedBytes, expected: bigint): never => {
    throw new VmdumpError(
      'internal',
      `a ${what} record of ${record.bytes.length} bytes planned at ${hex(expected)} came at ${hex(record.offset)}`,
      { record: what, offset: record.offset },
    );
  };
  for await (const record of records) {
    const end = record.offset + BigInt(record.bytes.length);
    if (record.offset < descriptorStart) {
      if (end > descriptorStart) wrong('header', record, descriptorStart - BigInt(record.bytes.length));
    } else if (record.offset < dataStart) {
      if (record.offset !== descriptors || end > dataStart) wrong('page-descriptor', record, descriptors);
      descriptors = end;
    } else {
      if (record.offset !== data) wrong('page-data', record, data);
      data = end;
    }
    yield record;
  }
  if (descriptors !== dataStart) {
    throw new VmdumpError(
      'internal',
      `page descriptors end at ${hex(descriptors)} but the plan has ${plan.pageCount} of them ending at ${hex(dataStart)}`,
      { record: 'page-descriptor', offset: descriptors },
    );
  }
}
