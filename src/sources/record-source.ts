/**
 * Emits a planned dump's records in file order, turning each memory record into page chunks
 * read from the guest only when the consumer pulls (an async generator: no read-ahead of its
 * own; the pipeline decides how far ahead it may run).
 */
import { VmdumpError, errnoText, hex } from '../model/errors.js';
import { fileOffset, minBig, type FileOffset } from '../model/units.js';
import type { RamRange } from '../model/guest.js';
import type { DumpPlan, DumpRecord } from '../transforms/dump-plan.js';

/** Guest bytes at a planned file offset; part of one memory record. */
export interface PageChunk {
  readonly kind: 'page-chunk';
  readonly offset: FileOffset;
  readonly bytes: Uint8Array;
}

/** What the record source yields: every non-memory record as planned, memory as page chunks. */
export type SourceRecord = Exclude<DumpRecord, { kind: 'memory' }> | PageChunk;

export const DEFAULT_CHUNK_SIZE = 2 << 20;

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

/** range.read(), with a failure that is not already a VmdumpError named as unreadable guest memory. */
export async function readGuestBytes(range: RamRange, offset: bigint, into: Uint8Array): Promise<void> {
  try {
    await range.read(offset, into);
  } catch (error) {
    if (error instanceof VmdumpError) throw error;
    throw new VmdumpError('bad-input', `cannot read guest memory: ${errnoText(error)}`,
      `${range.label}, range offset ${hex(offset)}`, { cause: error });
  }
}

type MemoryRecord = Extract<DumpRecord, { kind: 'memory' }>;

/**
 * The page chunks of one memory record. One read runs ahead of the chunk being handed on, so
 * the source's I/O overlaps the consumer's work; at most one extra chunk is in memory.
 */
async function* readMemory(record: MemoryRecord, options: RecordSourceOptions): AsyncGenerator<PageChunk> {
  const chunkSize = BigInt(options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const allocate = options.allocate ?? Buffer.allocUnsafe;
  const { range, rangeOffset } = record.piece;
  const read = async (done: bigint): Promise<PageChunk> => {
    options.signal?.throwIfAborted();
    const bytes = allocate(Number(minBig(chunkSize, record.size - done)));
    await readGuestBytes(range, rangeOffset + done, bytes);
    return { kind: 'page-chunk', offset: fileOffset(record.offset + done), bytes };
  };
  let ahead: Promise<PageChunk> | undefined = read(0n);
  for (let done = 0n; ahead !== undefined; done += chunkSize) {
    const current: PageChunk = await ahead;
    ahead = done + chunkSize < record.size ? read(done + chunkSize) : undefined;
    // If the consumer stops here, the read already started must not become an unhandled rejection.
    ahead?.catch(() => undefined);
    yield current;
  }
}
