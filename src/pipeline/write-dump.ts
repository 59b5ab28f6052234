/**
 * An ELF dump through the run skeleton (write-records.ts): the plan's records with page chunks
 * read from the guest as the sink pulls, encoded for the target's class and byte order. RxJS
 * carries only observation: progress and completion. Cancellation comes through an AbortSignal.
 */
import type { Observable } from 'rxjs';
import { ReplaySubject } from 'rxjs/internal/ReplaySubject';
import type { PlacedBytes } from '../formats/kdump/flattened.js';
import { fileOffset } from '../guest/units.js';
import type { DumpPlan } from '../transforms/plan/dump-plan.js';
import { encodeRecord } from '../transforms/encode/encode-records.js';
import { DEFAULT_CHUNK_SIZE, readDumpRecords, type SourceRecord } from '../transforms/encode/record-stream.js';
import type { Sink } from '../sinks/sink.js';
import { ChunkPool } from './chunk-pool.js';
import { withRate, type DumpPhase, type DumpProgress, type RatedProgress } from './progress.js';
import { writeRecords } from './write-records.js';

export interface WriteDumpOptions {
  readonly signal?: AbortSignal;
  /** Page chunk size in bytes (default 2 MiB). At most two chunks wait between source and sink. */
  readonly chunkSize?: number;
}

export interface DumpSummary {
  readonly destination: string;
  readonly bytesWritten: number;
  readonly totalBytes: number;
  readonly memoryBytes: number;
  readonly segmentCount: number;
  readonly elapsedMs: number;
}

export interface DumpRun {
  readonly plan: DumpPlan;
  /**
   * Phase, confirmed bytes, total and rate; replays the latest value to a late subscriber;
   * completes on success, errors on failure. Each subscriber gets its own rate window.
   */
  readonly progress$: Observable<RatedProgress>;
  readonly result: Promise<DumpSummary>;
}

/** Headers come before memory, anything after memory is the trailer. */
function nextPhase(current: DumpPhase, record: SourceRecord): DumpPhase {
  if (record.kind === 'page-chunk') return 'memory';
  return current === 'memory' || current === 'trailer' ? 'trailer' : 'headers';
}

/** Each record's bytes at its place; a record encoded in several pieces advances its offset. */
async function* placedElfBytes(
  records: AsyncIterable<SourceRecord>,
  plan: DumpPlan,
  onRecord: (record: SourceRecord) => void,
): AsyncGenerator<PlacedBytes> {
  for await (const record of records) {
    onRecord(record);
    let offset: bigint = record.offset;
    for (const bytes of encodeRecord(record, plan.target)) {
      yield { offset: fileOffset(offset), bytes };
      offset += BigInt(bytes.length);
    }
  }
}

export function writeDump(plan: DumpPlan, sink: Sink, options: WriteDumpOptions = {}): DumpRun {
  const progress = new ReplaySubject<DumpProgress>(1);
  const totalBytes = Number(plan.totalSize);
  progress.next({ phase: 'planned', bytesWritten: 0, totalBytes });
  const started = performance.now();
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const pool = new ChunkPool(chunkSize);
  let phase: DumpPhase = 'headers';
  const { signal } = options;
  const result = writeRecords({
    destination: { kind: 'sequential', sink },
    framing: 'contiguous',
    plannedSize: plan.totalSize,
    highWaterMark: chunkSize,
    openOptions: { recycle: pool.recycle },
    ...(signal === undefined ? {} : { signal }),
    open: async () => ({
      records: placedElfBytes(
        readDumpRecords(plan, { chunkSize, allocate: (size) => pool.acquire(size), ...(signal === undefined ? {} : { signal }) }),
        plan,
        (record) => {
          phase = nextPhase(phase, record);
        },
      ),
      close: async () => undefined,
    }),
    onConfirmed: (bytesWritten) => progress.next({ phase, bytesWritten, totalBytes }),
    onCommitting: (bytesWritten) => progress.next({ phase: 'committing', bytesWritten, totalBytes }),
  }).then((bytesWritten) => {
    progress.next({ phase: 'done', bytesWritten, totalBytes });
    return {
      destination: sink.description,
      bytesWritten,
      totalBytes,
      memoryBytes: Number(plan.memoryBytes),
      segmentCount: plan.segmentCount,
      elapsedMs: performance.now() - started,
    };
  });
  result.then(
    () => progress.complete(),
    (error: unknown) => progress.error(error),
  );
  return { plan, progress$: progress.pipe(withRate()), result };
}
