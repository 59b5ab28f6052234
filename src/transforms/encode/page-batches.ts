/**
 * Guest pages in pfn order, a batch at a time, for the kdump writer. Each batch owns its
 * ArrayBuffer (it moves to a compression thread and back, then is reused). Bytes of a page outside every RAM range (a
 * range that starts or ends mid-page) read as zeros, as in QEMU's get_next_page
 * (docs/kdump-compressed.md §6). Pages a dump level leaves out are not in `runs`: they are never
 * read, except from a range read as one front-to-back pass (a FIFO QEMU fills), where they are
 * read and dropped so the pass reaches its end.
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
  const passes = new PassDrain(ram, memory, batchPages * pageSize);
  const allocate = options.allocate ?? ((): Uint8Array => new Uint8Array(batchPages * pageSize));
  let batch: { bytes: Uint8Array; filled: number } | undefined;
  for (const run of runs) {
    for (let done = 0; done < run.count;) {
      options.signal?.throwIfAborted();
      batch ??= { bytes: allocate(), filled: 0 };
      const count = Math.min(run.count - done, batchPages - batch.filled);
      const into = batch.bytes.subarray(batch.filled * pageSize, (batch.filled + count) * pageSize);
      const address = BigInt(run.first + done) * BigInt(pageSize);
      await passes.skipTo(address);
      await memory.read(address, into, 'zero');
      passes.readTo(address + BigInt(into.length));
      batch.filled += count;
      done += count;
      if (batch.filled === batchPages) {
        yield batch.bytes;
        batch = undefined;
      }
    }
  }
  await passes.skipTo(undefined);
  if (batch !== undefined) yield batch.bytes.slice(0, batch.filled * pageSize);
}

/** Reads and drops what the dump skips in ranges that are read as one pass (RamRange.readSpan). */
class PassDrain {
  private readonly passes: readonly RamRange[];
  private cursor = 0n;
  private scratch: Uint8Array | undefined;

  constructor(
    ram: readonly RamRange[],
    private readonly memory: GuestMemory,
    private readonly chunk: number,
  ) {
    this.passes = ram.filter((range) => range.readSpan !== undefined);
  }

  readTo(address: bigint): void {
    if (address > this.cursor) this.cursor = address;
  }

  /** Drops the pass ranges' bytes in [cursor, address); undefined: to the end of every pass range. */
  async skipTo(address: bigint | undefined): Promise<void> {
    for (const range of this.passes) {
      const end = range.start + range.size;
      const from = this.cursor > range.start ? this.cursor : range.start;
      const to = address === undefined || address > end ? end : address;
      for (let at = from; at < to;) {
        const length = Number(to - at < BigInt(this.chunk) ? to - at : BigInt(this.chunk));
        this.scratch ??= new Uint8Array(this.chunk);
        await this.memory.read(at, this.scratch.subarray(0, length), 'zero');
        at += BigInt(length);
      }
    }
    if (address !== undefined) this.readTo(address);
  }
}
