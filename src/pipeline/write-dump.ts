/**
 * Wires a planned dump to a sink: record source → encoder → sink, as Node streams so that a
 * slow destination parks the producer. RxJS carries only observation: the plan, progress and
 * completion. Cancellation comes through an AbortSignal. The run fails unless the bytes
 * written equal the planned total.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReplaySubject, from, type Observable } from 'rxjs';
import { cancelled, describeFailure, tap } from './failures.js';
import { DEFAULT_CHUNK_SIZE, readDumpRecords, type SourceRecord } from '../sources/record-source.js';
import type { DumpPlan, DumpRecord } from '../transforms/dump-plan.js';
import { encodeDumpRecords } from '../transforms/encode-records.js';
import type { Sink } from '../sinks/sink.js';
import { ChunkPool } from './chunk-pool.js';
import { withRate, type DumpPhase, type DumpProgress, type RatedProgress } from './progress.js';

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
  /** The planned records, in file order. */
  readonly records$: Observable<DumpRecord>;
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

export function writeDump(plan: DumpPlan, sink: Sink, options: WriteDumpOptions = {}): DumpRun {
  const progress = new ReplaySubject<DumpProgress>(1);
  const totalBytes = Number(plan.totalSize);
  progress.next({ phase: 'planned', bytesWritten: 0, totalBytes });
  const result = run(plan, sink, options, (phase, bytesWritten) => progress.next({ phase, bytesWritten, totalBytes }));
  result.then(() => progress.complete(), (error: unknown) => progress.error(error));
  return { plan, records$: from(plan.records), progress$: progress.pipe(withRate()), result };
}

async function run(plan: DumpPlan, sink: Sink, options: WriteDumpOptions,
  report: (phase: DumpPhase, bytes: number) => void): Promise<DumpSummary> {
  const started = performance.now();
  const { signal } = options;
  if (signal?.aborted) throw cancelled(signal);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const pool = new ChunkPool(chunkSize);
  const open = await sink.open({ recycle: pool.recycle }).catch((error: unknown) => { throw describeFailure(error, sink, signal); });
  let produced = 0;
  try {
    let phase: DumpPhase = 'headers';
    const records = tap(readDumpRecords(plan, { chunkSize, signal, allocate: (size) => pool.acquire(size) }),
      (record) => { phase = nextPhase(phase, record); });
    // encodeDumpRecords fails the run unless the bytes end exactly at plan.totalSize.
    const bytes = tap(encodeDumpRecords(records, plan), (chunk) => {
      // Every earlier chunk is in the readable, the sink's buffer, or confirmed; this one is in none yet.
      report(phase, produced - readable.readableLength - open.writable.writableLength);
      produced += chunk.length;
    });
    const readable = Readable.from(bytes, { objectMode: false, highWaterMark: chunkSize });
    await pipeline(readable, open.writable, signal === undefined ? {} : { signal });
    report('committing', produced);
    await open.commit();
  } catch (error) {
    await open.abort();
    throw describeFailure(error, sink, signal);
  }
  report('done', produced);
  return {
    destination: sink.description, bytesWritten: produced, totalBytes: Number(plan.totalSize),
    memoryBytes: Number(plan.memoryBytes), segmentCount: plan.segmentCount, elapsedMs: performance.now() - started,
  };
}

