/**
 * Guest pages in pfn order, a batch at a time, for the kdump writer. Each batch owns its
 * ArrayBuffer (it moves to a compression thread and back, then is reused). Bytes of a page outside every RAM range (a
 * range that starts or ends mid-page) read as zeros, as in QEMU's get_next_page
 * (kdump-compressed.md §6).
 */
import type { RamRange } from '../model/guest.js';
import type { PfnRun } from '../transforms/kdump-plan.js';
import { readGuestBytes } from './record-source.js';

export interface PageBatchOptions {
  readonly pageSize: number;
  readonly batchPages: number;
  readonly signal?: AbortSignal;
  /** A batch buffer of batchPages × pageSize bytes owning its ArrayBuffer, any contents (default: a new one). */
  readonly allocate?: () => Uint8Array;
}

export async function* readPageBatches(ram: readonly RamRange[], runs: readonly PfnRun[], options: PageBatchOptions): AsyncGenerator<Uint8Array> {
  const { pageSize, batchPages } = options;
  const allocate = options.allocate ?? ((): Uint8Array => new Uint8Array(batchPages * pageSize));
  let batch: { bytes: Uint8Array; filled: number } | undefined;
  for (const run of runs) {
    for (let done = 0; done < run.count;) {
      options.signal?.throwIfAborted();
      batch ??= { bytes: allocate(), filled: 0 };
      const count = Math.min(run.count - done, batchPages - batch.filled);
      const into = batch.bytes.subarray(batch.filled * pageSize, (batch.filled + count) * pageSize);
      await readPfns(ram, run.first + done, into, pageSize);
      batch.filled += count;
      done += count;
      if (batch.filled === batchPages) { yield batch.bytes; batch = undefined; }
    }
  }
  if (batch !== undefined) yield batch.bytes.slice(0, batch.filled * pageSize);
}

/** Fills `into` with the guest bytes of pfns from `firstPfn`; what no range covers is zeroed. */
async function readPfns(ram: readonly RamRange[], firstPfn: number, into: Uint8Array, pageSize: number): Promise<void> {
  const start = BigInt(firstPfn) * BigInt(pageSize);
  const end = start + BigInt(into.length);
  let covered = 0;
  for (const range of ram) {
    const from = range.start > start ? range.start : start;
    const rangeEnd = range.start + range.size;
    const to = rangeEnd < end ? rangeEnd : end;
    if (from >= to) continue;
    into.fill(0, covered, Number(from - start));
    await readGuestBytes(range, from - range.start, into.subarray(Number(from - start), Number(to - start)));
    covered = Number(to - start);
  }
  into.fill(0, covered);
}
