/**
 * Page compression in worker threads. Batches go out in order and come back as promises the
 * caller awaits in the same order, so placement (and every byte of the dump) is independent of
 * which thread finished first. The caller bounds how many batches are in flight.
 */
import { Worker } from 'node:worker_threads';
import { VmdumpError } from '../../guest/errors.js';
import type { KdumpCodec } from '../../formats/kdump/kdump-format.js';
import { compressedBound } from './page-codecs.js';

/** In a reply's sizes: an all-zero page, or a page stored raw; any positive value is a compressed length. */
export const ZERO_PAGE_SIZE = 0;
export const RAW_PAGE_SIZE = -1;

export interface BatchRequest {
  readonly id: number;
  readonly pages: ArrayBuffer;
  /** Where the thread writes the compressed pages (a buffer of an earlier reply, or fresh): moved, not copied. */
  readonly packed: ArrayBuffer;
}

export type BatchReply =
  | {
      readonly id: number;
      readonly pages: ArrayBuffer;
      readonly sizes: ArrayBuffer;
      readonly packed: ArrayBuffer;
      readonly packedLength: number;
    }
  | { readonly id: number; readonly error: string };

export interface CompressedBatch {
  /** The batch as sent (handed back by the thread). */
  readonly pages: Uint8Array;
  /** Per page: ZERO_PAGE_SIZE, RAW_PAGE_SIZE or the compressed length. */
  readonly sizes: Int32Array;
  /** The compressed pages back to back, in page order: a view of `packedBuffer`. */
  readonly packed: Uint8Array;
  /** The whole output buffer, to hand to `compress` again once `packed` has been used. */
  readonly packedBuffer: ArrayBuffer;
}

/**
 * Room for one batch's compressed pages: each page is stored compressed only when that is smaller,
 * so the batch's size plus one page's worst case (the compressor writes before it knows) is enough.
 */
export function packedCapacity(batchBytes: number, pageSize: number): number {
  return batchBytes + compressedBound(pageSize);
}

interface Pending {
  resolve(batch: CompressedBatch): void;
  reject(error: Error): void;
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

/**
 * Compiled next to this module; under vitest, which runs the TypeScript sources, the worker
 * comes from the build that `npm test` makes first.
 */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('../../../dist/src/transforms/compress/compress-worker.js', import.meta.url)
    : new URL('./compress-worker.js', import.meta.url);
}

/**
 * A small young generation in each thread: the per-page results some bindings allocate (snappy)
 * are garbage at once, and a default-sized nursery lets megabytes of them pile up per thread
 * before a scavenge (peak RSS of a kdump-lzo dump: 183 MB with the default, 159 MB with 2 MB).
 */
const YOUNG_GENERATION_MB = 2;

export class PageCompressionPool {
  private nextId = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly threads: readonly Thread[],
    private readonly pageSize: number,
  ) {}

  static async start(codec: KdumpCodec, threadCount: number, pageSize: number): Promise<PageCompressionPool> {
    const threads = Array.from({ length: Math.max(1, threadCount) }, () => ({
      worker: new Worker(workerUrl(), {
        workerData: { codec, pageSize },
        resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
      }),
      pending: new Map<number, Pending>(),
    }));
    const pool = new PageCompressionPool(threads, pageSize);
    try {
      await Promise.all(threads.map((thread) => pool.attach(thread)));
    } catch (error) {
      await pool.close();
      throw new VmdumpError('internal', `cannot start the ${codec} compression threads: ${(error as Error).message}`, undefined, {
        cause: error,
      });
    }
    return pool;
  }

  /**
   * `pages` must own its whole ArrayBuffer: it is moved to the thread, not copied, and so is
   * `packed` (a reply's packedBuffer to reuse; fresh when absent or too small).
   */
  compress(pages: Uint8Array, packed?: ArrayBuffer): Promise<CompressedBatch> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (pages.byteOffset !== 0 || pages.byteLength !== pages.buffer.byteLength) {
      return Promise.reject(new VmdumpError('internal', 'a page batch must own its buffer'));
    }
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise<CompressedBatch>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      const buffer = pages.buffer as ArrayBuffer;
      const capacity = packedCapacity(pages.length, this.pageSize);
      const output = packed !== undefined && packed.byteLength >= capacity ? packed : new ArrayBuffer(capacity);
      thread.worker.postMessage({ id, pages: buffer, packed: output } satisfies BatchRequest, [buffer, output]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** Resolves once the thread has loaded its codec; afterwards routes its replies and failures. */
  private attach(thread: Thread): Promise<void> {
    return new Promise((ready, failed) => {
      thread.worker.on('message', (reply: BatchReply | { ready: true }) => {
        if ('ready' in reply) {
          ready();
          return;
        }
        const pending = thread.pending.get(reply.id);
        thread.pending.delete(reply.id);
        if ('error' in reply) pending?.reject(new VmdumpError('internal', `page compression failed: ${reply.error}`));
        else
          pending?.resolve({
            pages: new Uint8Array(reply.pages),
            sizes: new Int32Array(reply.sizes),
            packed: new Uint8Array(reply.packed, 0, reply.packedLength),
            packedBuffer: reply.packed,
          });
      });
      const fail = (error: Error): void => {
        this.failure ??= error;
        failed(error);
        for (const pending of thread.pending.values()) pending.reject(error);
        thread.pending.clear();
      };
      thread.worker.on('error', fail);
      thread.worker.on('exit', (code) => fail(new Error(`compression thread exited (code ${code})`)));
    });
  }
}
