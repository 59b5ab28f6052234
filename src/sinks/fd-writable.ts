/**
 * A Writable over a file descriptor that owns the OS details: short writes
 * are continued, EAGAIN on a non-blocking pipe is retried with a growing pause, and the
 * write callback fires only once the kernel has taken every byte — so the stream's buffer
 * is exactly the bytes not yet confirmed.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { call, type FileSystem } from './fs-api.js';

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

export class FdWritable extends Writable {
  constructor(
    private readonly fd: number,
    private readonly fileSystem: FileSystem = fs,
    private readonly recycle: (chunk: Uint8Array) => void = () => undefined,
    highWaterMark = 2 << 20,
  ) {
    super({ highWaterMark, decodeStrings: true });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk).then(() => {
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
      for (const buffer of joinSmall(buffers)) await this.writeAll(buffer);
      for (const buffer of buffers) this.recycle(buffer);
    })().then(() => callback(), callback);
  }

  private async writeAll(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    let pause = 1;
    while (offset < chunk.length) {
      try {
        offset += await call<number>((cb) => this.fileSystem.write(this.fd, chunk, offset, chunk.length - offset, null, cb));
        pause = 1;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || this.destroyed) throw error;
        await sleep(pause);
        pause = Math.min(pause * 2, EAGAIN_PAUSE_MAX_MS);
      }
    }
  }
}
