/**
 * A note payload being filled in the dump's byte order. Every architecture's notes are fixed
 * C structs; offsets come from the spec tables, every byte not written stays 0.
 */
import type { Endian } from '../../guest/guest.js';

export class NoteWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly little: boolean;

  constructor(size: number, endian: Endian) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.little = endian === 'little';
  }

  u16(at: number, value: number): this {
    this.view.setUint16(at, value, this.little);
    return this;
  }
  u32(at: number, value: number): this {
    this.view.setUint32(at, value, this.little);
    return this;
  }
  u64(at: number, value: bigint): this {
    this.view.setBigUint64(at, BigInt.asUintN(64, value), this.little);
    return this;
  }

  /** Consecutive u64 values from `at`. */
  u64s(at: number, values: readonly bigint[]): this {
    values.forEach((value, i) => this.u64(at + 8 * i, value));
    return this;
  }

  u32s(at: number, values: readonly number[]): this {
    values.forEach((value, i) => this.u32(at + 4 * i, value));
    return this;
  }
}
