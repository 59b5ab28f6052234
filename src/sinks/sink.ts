/**
 * Where bytes go, in two kinds (the pipeline's Destination says which a run uses): a Sink is
 * written front to back through a Node Writable (so `false` from write() parks the producer);
 * a PlacedSink takes each record at its offset (the plain kdump file). Both are opened only
 * after the dump is planned, then committed (made visible, durable) or aborted (nothing that
 * looks complete remains).
 */
import type { Writable } from 'node:stream';

export interface Sink {
  /** Names the destination in messages: "core.elf", "stdout", "fd 5". */
  readonly description: string;
  open(options?: SinkOpenOptions): Promise<OpenSink>;
}

export interface SinkOpenOptions {
  /**
   * Offered by the pipeline: a sink may hand each chunk back once it holds no reference to it
   * (the bytes are in the kernel), and the pipeline reuses the buffer. A sink that cannot
   * promise that (a transform that passes chunks on, a caller's Writable) must not call it.
   */
  readonly recycle?: (chunk: Uint8Array) => void;
}

export interface OpenSink {
  readonly writable: Writable;
  /** Called once `writable` has finished: flush, fsync, rename into place. */
  commit(): Promise<void>;
  /** Called on any failure: remove partial output. Must not throw. */
  abort(): Promise<void>;
}

/** Wraps a caller's Writable (the library's "dump to any Writable"): nothing to commit or remove. */
export function writableSink(writable: Writable, description = 'writable'): Sink {
  return {
    description,
    open: async () => ({ writable, commit: async () => undefined, abort: async () => undefined }),
  };
}

/**
 * A destination for a dump whose parts are placed at offsets out of order (the plain kdump
 * file). Each write completes before the next is issued, which is its backpressure.
 */
export interface PlacedSink {
  readonly description: string;
  open(): Promise<OpenPlacedSink>;
}

export interface OpenPlacedSink {
  write(bytes: Uint8Array, position: bigint): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
