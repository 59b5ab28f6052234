/**
 * A Writable over a file descriptor that owns the OS details (style habit 10): short writes
 * are continued, EAGAIN on a non-blocking pipe is retried with a growing pause, and the
 * write callback fires only once the kernel has taken every byte — so the stream's buffer
 * is exactly the bytes not yet confirmed.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { call, type FileSystem } from './fs-api.js';

const EAGAIN_PAUSE_MAX_MS = 50;

export class FdWritable extends Writable {
  constructor(
    private readonly fd: number,
    private readonly fileSystem: FileSystem = fs,
    highWaterMark = 1 << 20,
  ) {
    super({ highWaterMark, decodeStrings: true });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk).then(() => callback(), callback);
  }

  /** Chunks queued while a write was in flight go out together: one syscall, not one per chunk. */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const joined = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.writeAll(joined).then(() => callback(), callback);
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
