/**
 * The one run skeleton for every format: placed records from a plan go into a destination.
 * It owns the order of things and who reports a failure:
 *
 *   cancelled already? → open what the records need (compression threads) → open the sink →
 *   write (a sequential sink through a Node stream, so a slow destination parks the producer;
 *   a positional sink one awaited write at a time) → commit | abort → close what was opened
 *
 * The first error is the one reported: an abort or a close that fails after it never replaces
 * it (docs/… "Guarantees"). Every record is checked against the plan as it passes: ELF bytes
 * must run contiguous from 0 to the planned total; kdump records must lie where the plan put
 * their kind (the format's `check`).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { flattenRecords, type PlacedBytes } from '../formats/kdump/flattened.js';
import { VmdumpError, hex } from '../guest/errors.js';
import type { PlacedSink, Sink, SinkOpenOptions } from '../sinks/sink.js';
import { cancelled, describeFailure } from './failures.js';

/** Where a dump's bytes go: front to back through a stream, or each record at its offset (the plain kdump file). */
export type Destination =
  { readonly kind: 'sequential'; readonly sink: Sink } | { readonly kind: 'positional'; readonly sink: PlacedSink };

/** The records of one run and what must be released once they stop flowing. */
export interface RecordFlow {
  readonly records: AsyncIterable<PlacedBytes>;
  close(): Promise<void>;
}

export interface WriteJob {
  readonly destination: Destination;
  /**
   * `contiguous`: the records are the file front to back and must end at `plannedSize` (ELF);
   * `flattened`: out-of-order records framed for a sequential sink (makedumpfile's flattened form).
   */
  readonly framing: 'contiguous' | 'flattened';
  readonly plannedSize?: bigint;
  /** Bytes the stream may hold before the producer is parked. */
  readonly highWaterMark: number;
  /** Passed to a sequential sink; `recycle` is also called by the positional writer once a record is written. */
  readonly openOptions?: SinkOpenOptions;
  readonly signal?: AbortSignal;
  /** Opens what the records need; called after the cancellation check, before the sink opens. */
  open(): Promise<RecordFlow>;
  /** Confirmed output bytes (the sink has taken them): the stream's and the sink's buffers excluded. */
  onConfirmed?(bytes: number): void;
  /** Every byte is written; the sink is about to commit (fsync, link into place). */
  onCommitting?(bytes: number): void;
}

/** Runs one job; resolves with the bytes of output written (the plain file's size for positional writes). */
export async function writeRecords(job: WriteJob): Promise<number> {
  const { signal } = job;
  if (signal?.aborted) throw cancelled(signal);
  const flow = await job.open();
  let failure: unknown;
  try {
    return job.destination.kind === 'sequential'
      ? await writeSequential(job, job.destination.sink, flow.records)
      : await writePositional(job, job.destination.sink, flow.records);
  } catch (error) {
    failure = describeFailure(error, job.destination.sink, signal);
    throw failure;
  } finally {
    // A failing close never hides the dump's own error; on success it is the error.
    await flow.close().catch((error: unknown) => {
      if (failure === undefined) throw error;
    });
  }
}

async function writeSequential(job: WriteJob, sink: Sink, records: AsyncIterable<PlacedBytes>): Promise<number> {
  const open = await sink.open(job.openOptions);
  let produced = 0;
  try {
    const bytes = job.framing === 'flattened' ? flattenRecords(records) : contiguous(records, job.plannedSize);
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of bytes) {
        // Every earlier chunk is in the readable, the sink's buffer, or confirmed; this one is in none yet.
        job.onConfirmed?.(produced - readable.readableLength - open.writable.writableLength);
        produced += chunk.length;
        yield chunk;
      }
    };
    const readable = Readable.from(counted(), { objectMode: false, highWaterMark: job.highWaterMark });
    await pipeline(readable, open.writable, job.signal === undefined ? {} : { signal: job.signal });
    job.onCommitting?.(produced);
    await open.commit();
  } catch (error) {
    await open.abort();
    throw error;
  }
  return produced;
}

async function writePositional(job: WriteJob, sink: PlacedSink, records: AsyncIterable<PlacedBytes>): Promise<number> {
  const open = await sink.open();
  let end = 0n;
  try {
    for await (const record of records) {
      job.signal?.throwIfAborted();
      await open.write(record.bytes, record.offset);
      job.openOptions?.recycle?.(record.bytes); // written: the buffer may be reused
      const recordEnd = record.offset + BigInt(record.bytes.length);
      if (recordEnd > end) end = recordEnd;
      job.onConfirmed?.(Number(end));
    }
    job.onCommitting?.(Number(end));
    await open.commit();
  } catch (error) {
    await open.abort();
    throw error;
  }
  return Number(end);
}

/** The plan check for a file written front to back: each record starts where the last ended, and the end is the planned total. */
async function* contiguous(records: AsyncIterable<PlacedBytes>, plannedSize: bigint | undefined): AsyncGenerator<Uint8Array> {
  let cursor = 0n;
  for await (const record of records) {
    if (record.offset !== cursor) {
      throw new VmdumpError('internal', `a record planned at ${hex(record.offset)} but the stream is at ${hex(cursor)}`, {
        offset: cursor,
      });
    }
    cursor += BigInt(record.bytes.length);
    yield record.bytes;
  }
  if (plannedSize !== undefined && cursor !== plannedSize) {
    throw new VmdumpError('internal', `wrote ${cursor} bytes but planned ${plannedSize}`, { offset: cursor });
  }
}
