/**
 * One ELF record → its bytes in the target's class and byte order. The run checks the bytes
 * against the plan as they pass (pipeline/write-records.ts).
 */
import { encodeElfHeader, encodeNotes, encodeProgramHeaders, encodeSectionHeaders } from '../../formats/elf/elf-encode.js';
import type { ElfTarget } from '../../formats/elf/elf-structs.js';
import type { SourceRecord } from './record-stream.js';

/** Program headers are encoded in batches so that a PN_XNUM-sized table is not one huge buffer. */
const PROGRAM_HEADER_BATCH = 4096;

export function* encodeRecord(record: SourceRecord, target: ElfTarget): Generator<Uint8Array> {
  switch (record.kind) {
    case 'elf-header':
      yield encodeElfHeader(record.header, target);
      break;
    case 'section-headers':
      yield encodeSectionHeaders(record.headers, target);
      break;
    case 'program-headers':
      for (let i = 0; i < record.headers.length; i += PROGRAM_HEADER_BATCH) {
        yield encodeProgramHeaders(record.headers.slice(i, i + PROGRAM_HEADER_BATCH), target);
      }
      break;
    case 'notes':
      yield encodeNotes(record.notes, target);
      break;
    case 'string-table':
      yield record.bytes;
      break;
    case 'page-chunk':
      yield record.bytes;
      break;
  }
}
