/**
 * Emits a planned dump's records in file order, turning each memory record into page chunks
 * read from the guest only when the consumer pulls. Within a memory record one read runs ahead
 * of the chunk being handed on; how far the whole stream may run ahead is the pipeline's call.
 */
import { readRange } from '../../guest/guest-memory.js';
import { fileOffset, minBig, type FileOffset } from '../../guest/units.js';
import type { DumpPlan, DumpRecord } from '../plan/dump-plan.js';

/** Guest bytes at a planned file offset; part of one memory record. */
export interface PageChunk {
  readonly kind: 'page-chunk';
  readonly offset: FileOffset;
  readonly bytes: Uint8Array;
}

/** What the record source yields: every non-memory record as planned, memory as page chunks. */
export type SourceRecord = Exclude<DumpRecord, { kind: 'memory' }> | PageChunk;

export const DEFAULT_CHUNK_SIZE = 2 << 20;
/** Reads in flight beyond the chunk being handed on. */
const READS_AHEAD = 1;

export interface RecordSourceOptions {
  /** Largest page chunk, in bytes (default 2 MiB). */
  readonly chunkSize?: number;
  /** Where chunk buffers come from (default: fresh buffers). */
  readonly allocate?: (size: number) => Buffer;
  readonly signal?: AbortSignal;
}

export async function* readDumpRecords(plan: DumpPlan, options: RecordSourceOptions = {}): AsyncGenerator<SourceRecord> {
  for (const record of plan.records) {
    if (record.kind === 'memory') yield* readMemory(record, options);
    else yield record;
  }
}

type MemoryRecord = Extract<DumpRecord, { kind: 'memory' }>;

/**
 * The page chunks of one memory record. `READS_AHEAD` reads run ahead of the chunk being handed
 * on, so a source's I/O overlaps both the consumer's work and the source's own decoding of the
 * chunk before (a saved stream parses each group's records after its read lands); at most that many
 * extra chunks are in memory.
 */
async function* readMemory(record: MemoryRecord, options: RecordSourceOptions): AsyncGenerator<PageChunk> {
  const chunkSize = BigInt(options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const allocate = options.allocate ?? Buffer.allocUnsafe;
  const { range, rangeOffset } = record.piece;
  const read = async (done: bigint): Promise<PageChunk> => {
    options.signal?.throwIfAborted();
    const bytes = allocate(Number(minBig(chunkSize, record.size - done)));
    await readRange(range, rangeOffset + done, bytes);
    return { kind: 'page-chunk', offset: fileOffset(record.offset + done), bytes };
  };
  const ahead: Promise<PageChunk>[] = [];
  let next = 0n;
  const fill = (): void => {
    while (ahead.length <= READS_AHEAD && next < record.size) {
      const pending = read(next);
      // If the consumer stops early, reads already started must not become unhandled rejections.
      pending.catch(() => undefined);
      ahead.push(pending);
      next += chunkSize;
    }
  };
  fill();
  while (ahead.length > 0) {
    const current = await ahead.shift()!;
    fill();
    yield current;
  }
}
