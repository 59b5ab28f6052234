/**
 * makedumpfile's flattened format (docs/kdump-compressed.md §7): a 4096-byte start header, then each
 * placed record as (offset, size) big-endian i64 and its bytes, then an end marker of all ones.
 * It lets a dump whose parts are written out of order travel through a pipe; `makedumpfile -R`
 * or crash itself puts the parts back in place.
 */
import type { FileOffset } from '../../guest/units.js';

/** Bytes that belong at a file offset: a kdump record, or an ELF chunk. */
export interface PlacedBytes {
  readonly offset: FileOffset;
  readonly bytes: Uint8Array;
}

export const FLAT_HEADER_SIZE = 4096;
export const FLAT_SIGNATURE = 'makedumpfile';
const FLAT_TYPE = 1n;
const FLAT_VERSION = 1n;

export function encodeFlatStartHeader(): Uint8Array {
  const bytes = new Uint8Array(FLAT_HEADER_SIZE);
  bytes.set(new TextEncoder().encode(FLAT_SIGNATURE), 0);
  const view = new DataView(bytes.buffer);
  view.setBigInt64(16, FLAT_TYPE, false);
  view.setBigInt64(24, FLAT_VERSION, false);
  return bytes;
}

export function encodeFlatRecordHeader(offset: bigint, size: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setBigInt64(0, offset, false);
  view.setBigInt64(8, BigInt(size), false);
  return bytes;
}

export const FLAT_END_MARKER: Uint8Array = new Uint8Array(16).fill(0xff);

/** The flattened byte stream of placed records, as chunks for a sequential sink. */
export async function* flattenRecords(records: AsyncIterable<PlacedBytes>): AsyncGenerator<Uint8Array> {
  yield encodeFlatStartHeader();
  for await (const record of records) {
    if (record.bytes.length === 0) continue;
    yield encodeFlatRecordHeader(record.offset, record.bytes.length);
    yield record.bytes;
  }
  yield FLAT_END_MARKER;
}
