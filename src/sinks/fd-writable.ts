/**
 * A Writable over a file descriptor that owns the OS details: short writes
 * are continued, EAGAIN on a non-blocking pipe is retried with a growing pause, and the
 * write callback fires only once the kernel has taken every byte — so the stream's buffer
 * is exactly the bytes not yet confirmed. Into a new regular file it can leave holes.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { call, type FileSystem } from './fs-api.js';
import { planSparseWrites } from './sparse-runs.js';

const EAGAIN_PAUSE_MAX_MS = 50;
/** Runs of queued chunks are joined into writes of up to this size; larger chunks go as they are. */
const SMALL_JOIN = 256 << 10;

function* joinSmall(buffers: readonly Buffer[]): Generator<Buffer> {
  let run: Buffer[] = [];
  let runBytes = 0;
  const flush = function* (): Generator<Buffer> {
    if (run.length > 0) yield run.length === 1 ? run[0]! : Buffer.concat(run, runBytes);
    run = [];
    runBytes = 0;
  };
  for (const buffer of buffers) {
    if (buffer.length >= SMALL_JOIN) {
      yield* flush();
      yield buffer;
      continue;
    }
    if (runBytes + buffer.length > SMALL_JOIN) yield* flush();
    run.push(buffer);
    runBytes += buffer.length;
  }
  yield* flush();
}

export interface FdWritableOptions {
  readonly fileSystem?: FileSystem | undefined;
  /** Called with each chunk once the kernel holds its bytes. */
  readonly recycle?: ((chunk: Uint8Array) => void) | undefined;
  readonly highWaterMark?: number;
  /**
   * The fd is a new regular file at offset 0: long zero runs are skipped (holes, sparse-runs.ts)
   * and the file is extended to its full size at the end. Every write is then positional.
   */
  readonly sparse?: boolean | undefined;
}

export class FdWritable extends Writable {
  private readonly fileSystem: FileSystem;
  private readonly recycle: (chunk: Uint8Array) => void;
  private readonly sparse: boolean;
  /** Sparse mode: the file offset of the next byte, and the end of the last byte written. */
  private position = 0;
  private writtenEnd = 0;

  constructor(
    private readonly fd: number,
    options: FdWritableOptions = {},
  ) {
    super({ highWaterMark: options.highWaterMark ?? 2 << 20, decodeStrings: true });
    this.fileSystem = options.fileSystem ?? fs;
    this.recycle = options.recycle ?? (() => undefined);
    this.sparse = options.sparse === true;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => {
      this.recycle(chunk);
      callback();
    }, callback);
  }

  /**
   * Chunks queued while a write was in flight go out together: small ones (headers) joined into
   * one write; large ones (pages) one after another, never copied.
   */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    (async () => {
      for (const buffer of joinSmall(buffers)) await this.writeChunk(buffer);
      for (const buffer of buffers) this.recycle(buffer);
    })().then(() => callback(), callback);
  }

  /** A file that ends in a hole gets its size here: a hole is only a hole below the end of file. */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.sparse || this.position === this.writtenEnd) return callback();
    this.fileSystem.ftruncate(this.fd, this.position, (error) => callback(error));
  }

  private async writeChunk(chunk: Uint8Array): Promise<void> {
    if (!this.sparse) return this.writeAll(chunk, null);
    for (const span of planSparseWrites(chunk, this.position)) {
      await this.writeAll(chunk.subarray(span.from, span.to), this.position + span.from);
      this.writtenEnd = this.position + span.to;
    }
    this.position += chunk.length;
  }

  /** All of `chunk` at `position` (null: at the file position). */
  private async writeAll(chunk: Uint8Array, position: number | null): Promise<void> {
    let offset = 0;
    let pause = 1;
    while (offset < chunk.length) {
      try {
        const at = position === null ? null : position + offset;
        offset += await call<number>((cb) => this.fileSystem.write(this.fd, chunk, offset, chunk.length - offset, at, cb));
        pause = 1;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || this.destroyed) throw error;
        await sleep(pause);
        pause = Math.min(pause * 2, EAGAIN_PAUSE_MAX_MS);
      }
    }
  }
}
