/**
 * One page in, its compressed form out, or undefined when the codec cannot make it strictly
 * smaller (the page is then stored raw, kdump-compressed.md §5). Each codec is what the readers
 * decompress: zlib = a zlib-wrapped deflate stream at level 1 (QEMU's compress2 Z_BEST_SPEED),
 * lzo = lzo1x_1, snappy = raw snappy, zstd = one zstd frame (makedumpfile's level 1).
 * Native bindings load only for the codec asked for, and only where pages are compressed.
 */
import * as zlib from 'node:zlib';
import type { KdumpCodec } from './kdump-format.js';

export type PageCompressor = (page: Uint8Array) => Uint8Array | undefined;

export async function loadPageCompressor(codec: KdumpCodec): Promise<PageCompressor> {
  switch (codec) {
    case 'zlib': return zlibPageCompressor();
    case 'lzo': {
      const { default: lzo } = await import('lzo');
      return smallerOnly((page) => lzo.compress(page));
    }
    case 'snappy': {
      const snappy = await import('snappy');
      return smallerOnly((page) => snappy.compressSync(page));
    }
    case 'zstd': {
      const { Compressor } = await import('zstd-napi');
      const compressor = new Compressor();
      compressor.setParameters({ compressionLevel: 1 });
      return smallerOnly((page) => compressor.compress(page));
    }
  }
}

function smallerOnly(compress: (page: Uint8Array) => Uint8Array): PageCompressor {
  return (page) => {
    const out = compress(page);
    return out.length < page.length ? out : undefined;
  };
}

/** What node:zlib keeps inside a Deflate object (lib/zlib.js): its native handle and result slots. */
interface DeflateInternals {
  _handle?: {
    reset(): void;
    writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  };
  _writeState?: Uint32Array;
}

/**
 * zlib.deflateSync builds a stream object per call (~190 µs for a 4 KiB page here, most of the
 * cost). Reusing one native deflate context, reset between pages, gives the same bytes at ~3×
 * the speed. That reaches into node:zlib's internals, so it is checked once on a probe page and
 * the public call is used if anything is missing or different.
 */
export function zlibPageCompressor(): PageCompressor {
  const publicCall = smallerOnly((page) => zlib.deflateSync(page, { level: 1 }));
  const deflate = zlib.createDeflate({ level: 1 }) as unknown as DeflateInternals;
  const { _handle: handle, _writeState: state } = deflate;
  if (handle === undefined || state === undefined) return publicCall;
  let out = new Uint8Array(0);
  const reused: PageCompressor = (page) => {
    // compressBound(): the largest output zlib can produce for this input.
    const bound = page.length + (page.length >> 12) + (page.length >> 14) + (page.length >> 25) + 13;
    if (out.length < bound) out = new Uint8Array(bound);
    handle.reset();
    handle.writeSync(zlib.constants.Z_FINISH, page, 0, page.length, out, 0, out.length);
    const length = out.length - state[0]!;
    return length < page.length ? out.slice(0, length) : undefined;
  };
  try {
    const probe = new TextEncoder().encode('vmdump zlib probe '.repeat(200));
    const expected = publicCall(probe);
    const got = reused(probe);
    if (expected !== undefined && got !== undefined && Buffer.from(got).equals(expected)) return reused;
  } catch {
    // fall through to the public call
  }
  return publicCall;
}
