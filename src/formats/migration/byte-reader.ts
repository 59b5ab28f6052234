/**
 * Sequential big-endian reads over a file descriptor with absolute positions. Refills are
 * asynchronous (`ensure`), field reads synchronous on the buffer, so a parser awaits once per
 * record, not once per field. Every failure names the byte offset.
 */
import * as fs from 'node:fs';
import { VmdumpError, hex } from '../../guest/errors.js';

const DEFAULT_BUFFER = 1 << 20;

export class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** File position of buffer[0]. */
  private base = 0;
  private cursor = 0;

  /** `scratch`, when given, is used for the first fill if it is large enough (saves an allocation per read). */
  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly label: string,
    start = 0,
    private readonly bufferSize = DEFAULT_BUFFER,
    private scratch?: Buffer,
  ) {
    this.base = start;
  }

  get position(): number {
    return this.base + this.cursor;
  }
  get remaining(): number {
    return this.size - this.position;
  }

  fail(message: string, at = this.position): never {
    throw new VmdumpError('bad-input', `${message} at byte ${hex(at)}`, this.label);
  }

  /** Makes `n` bytes readable synchronously; fails with "truncated" if the file ends first. */
  async ensure(n: number, what = 'a record'): Promise<void> {
    if (this.buffer.length - this.cursor >= n) return;
    if (this.position + n > this.size) this.fail(`the stream is truncated: ${what} needs ${n} bytes, ${this.remaining} are left`);
    const keep = this.buffer.subarray(this.cursor);
    const wanted = Math.max(n, this.bufferSize);
    const next =
      this.scratch !== undefined && this.scratch.length >= wanted && keep.length === 0
        ? this.scratch
        : Buffer.allocUnsafe(wanted);
    this.scratch = undefined;
    keep.copy(next);
    const want = Math.min(next.length, this.size - this.position) - keep.length;
    let filled = keep.length;
    while (filled < keep.length + want) {
      const got = await new Promise<number>((resolve, reject) =>
        fs.read(this.fd, next, filled, keep.length + want - filled, this.position + filled, (error, bytes) =>
          error ? reject(error) : resolve(bytes),
        ),
      );
      if (got === 0) this.fail('the file ended early', this.position + filled);
      filled += got;
    }
    this.base = this.position;
    this.cursor = 0;
    this.buffer = next.subarray(0, filled);
  }

  /** Moves forward without reading what is skipped when it lies beyond the buffer. */
  skip(n: number): void {
    if (this.position + n > this.size) this.fail(`the stream is truncated: ${n} bytes to skip, ${this.remaining} left`);
    if (this.cursor + n <= this.buffer.length) {
      this.cursor += n;
      return;
    }
    this.base = this.position + n;
    this.cursor = 0;
    this.buffer = Buffer.alloc(0);
  }

  private take(n: number): number {
    if (this.cursor + n > this.buffer.length) this.fail('internal: read past ensure()');
    const at = this.cursor;
    this.cursor += n;
    return at;
  }

  /** Copies the next `n` bytes into `target` at `at`. */
  copyTo(target: Uint8Array, at: number, n: number): void {
    const from = this.take(n);
    this.buffer.copy(target, at, from, from + n);
  }

  u8(): number {
    return this.buffer[this.take(1)]!;
  }
  peekU8(): number {
    return this.buffer[this.cursor]!;
  }
  /** The next `n` ensured bytes, without moving (a view: valid until the next ensure). */
  peek(n: number): Buffer {
    return this.buffer.subarray(this.cursor, this.cursor + n);
  }
  be16(): number {
    return this.buffer.readUInt16BE(this.take(2));
  }
  be32(): number {
    return this.buffer.readUInt32BE(this.take(4));
  }
  be64(): bigint {
    return this.buffer.readBigUInt64BE(this.take(8));
  }
  bytes(n: number): Buffer {
    const at = this.take(n);
    return Buffer.from(this.buffer.subarray(at, at + n));
  }
  /** u8 length + that many bytes (section and block ids). */
  str8(): string {
    const n = this.u8();
    const at = this.take(n);
    return this.buffer.toString('latin1', at, at + n);
  }
}
