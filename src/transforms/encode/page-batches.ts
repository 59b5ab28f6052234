/**
 * Guest pages in pfn order, a batch at a time, for the kdump writer. Each batch owns its
 * ArrayBuffer (it moves to a compression thread and back, then is reused). Bytes of a page outside every RAM range (a
 * range that starts or ends mid-page) read as zeros, as in QEMU's get_next_page
 * (docs/kdump-compressed.md §6). Pages a dump level leaves out are not in `runs`: they are never
 * read (a source that can only stream, pmemsave's FIFO, drops them itself).
 */
import type { RamRange } from '../../guest/guest.js';
import type { PfnRun } from '../plan/kdump-plan.js';
import { GuestMemory } from '../../guest/guest-memory.js';

export interface PageBatchOptions {
  readonly pageSize: number;
  readonly batchPages: number;
  readonly signal?: AbortSignal;
  /** A batch buffer of batchPages × pageSize bytes owning its ArrayBuffer, any contents (default: a new one). */
  readonly allocate?: () => Uint8Array;
}

export async function* readPageBatches(
  ram: readonly RamRange[],
  runs: Iterable<PfnRun>,
  options: PageBatchOptions,
): AsyncGenerator<Uint8Array> {
  const { pageSize, batchPages } = options;
  const memory = new GuestMemory(ram);
  const allocate = options.allocate ?? ((): Uint8Array => new Uint8Array(batchPages * pageSize));
  let batch: { bytes: Uint8Array; filled: number } | undefined;
  for (const run of runs) {
    for (let done = 0; done < run.count;) {
      options.signal?.throwIfAborted();
      batch ??= { bytes: allocate(), filled: 0 };
      const count = Math.min(run.count - done, batchPages - batch.filled);
      const into = batch.bytes.subarray(batch.filled * pageSize, (batch.filled + count) * pageSize);
      await memory.read(BigInt(run.first + done) * BigInt(pageSize), into, 'zero');
      batch.filled += count;
      done += count;
      if (batch.filled === batchPages) {
        yield batch.bytes;
        batch = undefined;
      }
    }
  }
  if (batch !== undefined) yield batch.bytes.slice(0, batch.filled * pageSize);
}
