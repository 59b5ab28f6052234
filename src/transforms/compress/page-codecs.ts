/**
 * One page in, its compressed form written into `into`, or 0 when the codec cannot make it
 * strictly smaller (the page is then stored raw, docs/kdump-compressed.md §5). Each codec is what
 * the readers decompress: zlib = a zlib-wrapped deflate stream at level 2 (see ZLIB_LEVEL), lzo = lzo1x_1, snappy = raw snappy, zstd = one zstd frame (level 1, as
 * makedumpfile). Native bindings load only for the codec asked for, and only where pages are
 * compressed. Where a binding can write into our buffer it does: no allocation per page.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { KdumpCodec } from '../../formats/kdump/kdump-format.js';

/** Returns the compressed length (< page.length) written at the start of `into`, or 0. */
export type PageCompressor = (page: Uint8Array, into: Uint8Array) => number;

/** Room `into` must have: the largest output of any codec here for one page (zlib's, lzo's and zstd's bounds are smaller). */
export function compressedBound(pageSize: number): number {
  return 32 + pageSize + Math.ceil(pageSize / 6); // snappy's MaxCompressedLength
}

export async function loadPageCompressor(codec: KdumpCodec): Promise<PageCompressor> {
  switch (codec) {
    case 'zlib':
      return zlibPageCompressor();
    case 'lzo':
      return lzoPageCompressor();
    case 'snappy': {
      const snappy = await import('snappy');
      // Without copyOutputData each result is an external buffer V8 does not count, so the
      // garbage is not collected in time: peak RSS reached 1 GiB on a 1.5 GiB guest.
      return copied((page) => snappy.compressSync(page, { copyOutputData: true }));
    }
    case 'zstd':
      return zstdPageCompressor();
  }
}

function copied(compress: (page: Uint8Array) => Uint8Array): PageCompressor {
  return (page, into) => {
    const out = compress(page);
    if (out.length >= page.length) return 0;
    into.set(out);
    return out.length;
  };
}

interface LzoBinding {
  compress(input: Uint8Array, output: Uint8Array): { err: number; len: number };
}

/**
 * lzo1x_1 through the `lzo` package's native binding, called directly: its JavaScript wrapper
 * copies every page that is not a Buffer and allocates a result per page (peak RSS 200 MB on an
 * 8 GiB guest); the binding writes into `into` (room: compressedBound > page + page/16 + 67, the
 * worst case lzo1x_1 needs).
 */
async function lzoPageCompressor(): Promise<PageCompressor> {
  const fromLzo = createRequire(createRequire(import.meta.url).resolve('lzo'));
  const bindings = fromLzo('bindings') as (options: { bindings: string; module_root: string }) => LzoBinding;
  const binding = bindings({ bindings: 'node_lzo', module_root: path.dirname(fromLzo.resolve('./package.json')) });
  return (page, into) => {
    const { err, len } = binding.compress(page, into);
    if (err !== 0) throw new Error(`lzo1x_1 failed with code ${err}`);
    return len < page.length ? len : 0;
  };
}

async function zstdPageCompressor(): Promise<PageCompressor> {
  const { default: binding } = await import('zstd-napi/binding.js');
  const cctx = new binding.CCtx();
  // Level 1 with tables sized for one page: the window never needs to reach beyond the page,
  // and a small hash table is cheaper to reset for every page (~20 % faster here, output within
  // 0.5 %); minMatch 4 wins back more than that.
  const { CParameter } = binding;
  cctx.setParameter(CParameter.compressionLevel, 1);
  cctx.setParameter(CParameter.windowLog, 12);
  cctx.setParameter(CParameter.hashLog, 11);
  cctx.setParameter(CParameter.minMatch, 4);
  return (page, into) => {
    const length = cctx.compress2(into, page);
    return length < page.length ? length : 0;
  };
}

/** What node:zlib keeps inside a Deflate object (lib/zlib.js): its native handle and result slots. */
interface DeflateInternals {
  _handle?: {
    reset(): void;
    writeSync(
      flush: number,
      input: Uint8Array,
      inOff: number,
      inLen: number,
      out: Uint8Array,
      outOff: number,
      outLen: number,
    ): void;
  };
  _writeState?: Uint32Array;
}

/**
 * QEMU and makedumpfile call compress2() at Z_BEST_SPEED (1) with the system's zlib. Node's zlib
 * (Chromium's) does level 1 with a quicker, weaker algorithm: on the filled test guest's pages its
 * output was 1.4 % larger than makedumpfile's -d 31 file; level 2 is as fast here (99 vs 97 MiB/s
 * a thread) and within 0.7 % (docs/dump-levels.md §6). Readers see a zlib stream either way.
 */
const ZLIB_LEVEL = 2;

/**
 * zlib.deflateSync builds a stream object per call (~190 µs for a 4 KiB page here, most of the
 * cost). Reusing one native deflate context, reset between pages, gives the same bytes at ~3×
 * the speed. That reaches into node:zlib's internals, so it is checked once on a probe page and
 * the public call is used if anything is missing or different.
 */
export function zlibPageCompressor(): PageCompressor {
  const publicCall = copied((page) => zlib.deflateSync(page, { level: ZLIB_LEVEL }));
  const deflate = zlib.createDeflate({ level: ZLIB_LEVEL }) as unknown as DeflateInternals;
  const { _handle: handle, _writeState: state } = deflate;
  if (handle === undefined || state === undefined) return publicCall;
  const reused: PageCompressor = (page, into) => {
    handle.reset();
    handle.writeSync(zlib.constants.Z_FINISH, page, 0, page.length, into, 0, into.length);
    const length = into.length - state[0]!;
    return length < page.length ? length : 0;
  };
  try {
    const probe = new TextEncoder().encode('vmdump zlib probe '.repeat(200));
    const expected = new Uint8Array(compressedBound(probe.length));
    const got = new Uint8Array(compressedBound(probe.length));
    const length = publicCall(probe, expected);
    if (
      length > 0 &&
      reused(probe, got) === length &&
      Buffer.compare(expected.subarray(0, length), got.subarray(0, length)) === 0
    )
      return reused;
  } catch {
    // fall through to the public call
  }
  return publicCall;
}
