/**
 * Records → bytes for the target class and byte order. Checks the plan while streaming:
 * every record must start exactly where the previous one ended, and the stream must end at
 * the planned total (style habit 2); a mismatch is vmdump's own bug, reported as `internal`.
 */
import { VmdumpError, hex } from '../../guest/errors.js';
import type { DumpPlan } from '../plan/dump-plan.js';
import { encodeElfHeader, encodeNotes, encodeProgramHeaders, encodeSectionHeaders } from '../../formats/elf/elf-encode.js';
import type { ElfTarget } from '../../formats/elf/elf-structs.js';
import type { SourceRecord } from './record-stream.js';

/** Program headers are encoded in batches so that a PN_XNUM-sized table is not one huge buffer. */
const PROGRAM_HEADER_BATCH = 4096;

export function* encodeRecord(record: SourceRecord, target: ElfTarget): Generator<Uint8Array> {
  switch (record.kind) {
    case 'elf-header': yield encodeElfHeader(record.header, target); break;
    case 'section-headers': yield encodeSectionHeaders(record.headers, target); break;
    case 'program-headers':
      for (let i = 0; i < record.headers.length; i += PROGRAM_HEADER_BATCH) {
        yield encodeProgramHeaders(record.headers.slice(i, i + PROGRAM_HEADER_BATCH), target);
      }
      break;
    case 'notes': yield encodeNotes(record.notes, target); break;
    case 'string-table': yield record.bytes; break;
    case 'page-chunk': yield record.bytes; break;
  }
}

export async function* encodeDumpRecords(records: AsyncIterable<SourceRecord>, plan: DumpPlan): AsyncGenerator<Uint8Array> {
  let cursor = 0n;
  for await (const record of records) {
    if (record.offset !== cursor) {
      throw new VmdumpError('internal', `${record.kind} planned at ${hex(record.offset)} but the stream is at ${hex(cursor)}`);
    }
    for (const bytes of encodeRecord(record, plan.target)) {
      cursor += BigInt(bytes.length);
      yield bytes;
    }
  }
  if (cursor !== plan.totalSize) {
    throw new VmdumpError('internal', `wrote ${cursor} bytes but planned ${plan.totalSize}`);
  }
}
