/**
 * A kdump-compressed dump through the run skeleton (write-records.ts): pages read in pfn order,
 * compressed in worker threads, placed in order (docs/kdump-compressed.md §5), then framed as the
 * flattened stream for a sequential sink or written at their offsets into a plain file. Reading,
 * compression and writing overlap, but at most `threads × IN_FLIGHT_PER_THREAD` batches are
 * between source and sink: a slow sink parks the reader.
 */
import { availableParallelism } from 'node:os';
import type { Observable } from 'rxjs';
import { ReplaySubject } from 'rxjs/internal/ReplaySubject';
import type { PlacedBytes } from '../formats/kdump/flattened.js';
import { codecFlags } from '../formats/kdump/kdump-format.js';
import { readPageBatches } from '../transforms/encode/page-batches.js';
import { PageRecordAssembler, checkedKdumpRecords, kdumpHeadRecords } from '../transforms/encode/kdump-records.js';
import {
  PageCompressionPool,
  RAW_PAGE_SIZE,
  ZERO_PAGE_SIZE,
  type CompressedBatch,
} from '../transforms/compress/page-compression.js';
import { keptRuns, type KdumpPlan } from '../transforms/plan/kdump-plan.js';
import type { PlacedSink, Sink } from '../sinks/sink.js';
import { ChunkPool } from './chunk-pool.js';
import { withRate, type DumpPhase, type DumpProgress, type RatedProgress } from './progress.js';
import { writeRecords, type Destination } from './write-records.js';

export interface WriteKdumpOptions {
  readonly signal?: AbortSignal;
  /** Compression threads (default: the machine's cores). The output does not depend on it. */
  readonly threads?: number;
  /** Pages per batch handed to a thread (default: 1 MiB of pages, 256 of 4 KiB). */
  readonly batchPages?: number;
}

/** Flattened through a sequential sink (stdout, pipe, gzip), or plain into a seekable file. */
export type KdumpDestination =
  { readonly kind: 'flattened'; readonly sink: Sink } | { readonly kind: 'plain'; readonly sink: PlacedSink };

export interface KdumpSummary {
  readonly destination: string;
  readonly flattened: boolean;
  /** Bytes of the output: the flattened stream, or the plain file's size. */
  readonly bytesWritten: number;
  readonly memoryBytes: number;
  readonly pages: number;
  readonly zeroPages: number;
  readonly rawPages: number;
  readonly compressedPages: number;
  readonly threads: number;
  readonly elapsedMs: number;
}

export interface KdumpRun {
  readonly plan: KdumpPlan;
  /** bytesWritten/totalBytes count guest page bytes done (before compression); pages and output bytes too. */
  readonly progress$: Observable<RatedProgress>;
  readonly result: Promise<KdumpSummary>;
}

/**
 * 1 MiB of guest pages per batch: 256 pages of 4 KiB, 16 of QEMU's 64 KiB aarch64 blocks. Batches
 * of 4 MiB were no faster and held 48 MB more at the peak (2 GiB guest, kdump-zstd: 177 -> 129 MB).
 */
const BATCH_BYTES = 1 << 20;
/** Batches read ahead per thread: slack for a thread that finishes while the oldest batch is still being compressed. */
const IN_FLIGHT_PER_THREAD = 4;

interface Counters {
  zero: number;
  raw: number;
  compressed: number;
  output: number;
}

function destinationOf(destination: KdumpDestination): Destination {
  return destination.kind === 'flattened'
    ? { kind: 'sequential', sink: destination.sink }
    : { kind: 'positional', sink: destination.sink };
}

export function writeKdump(plan: KdumpPlan, destination: KdumpDestination, options: WriteKdumpOptions = {}): KdumpRun {
  const progress = new ReplaySubject<DumpProgress>(1);
  const totalBytes = plan.pageCount * plan.blockSize;
  const counters: Counters = { zero: 0, raw: 0, compressed: 0, output: 0 };
  let pagesDone = 0;
  const report = (phase: DumpPhase): void =>
    progress.next({
      phase,
      bytesWritten: pagesDone * plan.blockSize,
      totalBytes,
      pagesDone,
      pagesTotal: plan.pageCount,
      outputBytes: counters.output,
    });
  report('planned');
  const started = performance.now();
  const threads = options.threads ?? availableParallelism();
  // Descriptor and data records, reused once written (chunk-pool.ts).
  const recordBuffers = new ChunkPool(plan.recordBytes);
  const { signal } = options;
  const result = writeRecords({
    destination: destinationOf(destination),
    framing: 'flattened',
    highWaterMark: 1 << 20,
    openOptions: { recycle: recordBuffers.recycle },
    ...(signal === undefined ? {} : { signal }),
    async open() {
      const pool = await PageCompressionPool.start(plan.codec, threads, plan.blockSize);
      const onPages = (done: number): void => {
        pagesDone = done;
        report('memory');
      };
      return {
        records: checkedKdumpRecords(plan, placeRecords(plan, pool, recordBuffers, threads, options, counters, onPages)),
        close: () => pool.close(),
      };
    },
    onConfirmed: (bytes) => {
      counters.output = bytes;
    },
  }).then((bytesWritten) => {
    counters.output = bytesWritten;
    report('done');
    return {
      destination: destination.sink.description,
      flattened: destination.kind === 'flattened',
      bytesWritten,
      memoryBytes: Number(plan.memoryBytes),
      pages: plan.pageCount,
      zeroPages: counters.zero,
      rawPages: counters.raw,
      compressedPages: counters.compressed,
      threads,
      elapsedMs: performance.now() - started,
    };
  });
  result.then(
    () => progress.complete(),
    (error: unknown) => progress.error(error),
  );
  return { plan, progress$: progress.pipe(withRate()), result };
}

/** Every record of the dump in QEMU's order: headers and bitmaps, then descriptors and data as their caches fill. */
async function* placeRecords(
  plan: KdumpPlan,
  pool: PageCompressionPool,
  recordBuffers: ChunkPool,
  threads: number,
  options: WriteKdumpOptions,
  counters: Counters,
  onPages: (done: number) => void,
): AsyncGenerator<PlacedBytes> {
  yield* kdumpHeadRecords(plan);
  const assembler = new PageRecordAssembler(plan, () => recordBuffers.acquire());
  const batchPages = options.batchPages ?? Math.max(1, Math.floor(BATCH_BYTES / plan.blockSize));
  // Batch and output buffers come back from the threads and are used again: no zeroing, no garbage.
  const spare: Uint8Array[] = [];
  const sparePacked: ArrayBuffer[] = [];
  const batches = readPageBatches(plan.ram, keptRuns(plan), {
    pageSize: plan.blockSize,
    batchPages,
    allocate: () => spare.pop() ?? new Uint8Array(batchPages * plan.blockSize),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const inFlight: Promise<CompressedBatch>[] = [];
  let exhausted = false;
  const refill = async (): Promise<void> => {
    while (!exhausted && inFlight.length < threads * IN_FLIGHT_PER_THREAD) {
      const next = await batches.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      const compressed = pool.compress(next.value, sparePacked.pop());
      compressed.catch(() => undefined); // awaited in order below; not unhandled meanwhile
      inFlight.push(compressed);
    }
  };
  let done = 0;
  await refill();
  while (inFlight.length > 0) {
    const batch = await inFlight.shift()!;
    await refill();
    done += placeBatch(batch, assembler, codecFlags[plan.codec], counters);
    if (batch.pages.length === batchPages * plan.blockSize) spare.push(batch.pages);
    sparePacked.push(batch.packedBuffer); // its pages are copied into the records by now
    yield* assembler.take();
    onPages(done);
  }
  yield* assembler.finish();
}

function placeBatch(batch: CompressedBatch, assembler: PageRecordAssembler, flag: number, counters: Counters): number {
  const { pages, sizes, packed } = batch;
  const pageSize = pages.length / sizes.length;
  let at = 0;
  sizes.forEach((size, i) => {
    if (size === ZERO_PAGE_SIZE) {
      counters.zero += 1;
      assembler.addPage(undefined, 0);
    } else if (size === RAW_PAGE_SIZE) {
      counters.raw += 1;
      assembler.addPage(pages.subarray(i * pageSize, (i + 1) * pageSize), 0);
    } else {
      counters.compressed += 1;
      assembler.addPage(packed.subarray(at, at + size), flag);
      at += size;
    }
  });
  return sizes.length;
}
