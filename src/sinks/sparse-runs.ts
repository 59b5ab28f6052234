/**
 * Where a regular file may be left with holes instead of zeros: runs of whole file blocks of
 * zeros, long enough to be worth a skipped write. A hole reads back as zeros (POSIX), so the file's
 * bytes and size are the same; what changes is the blocks it occupies and the bytes written.
 */

/** The file system's block: holes are whole blocks at block-aligned file offsets. */
export const HOLE_BLOCK = 4096;
/**
 * Shorter zero runs are written: each hole splits a write in two, and a guest whose every fourth
 * page is zero would turn one 2 MiB write into hundreds of small ones.
 */
export const MIN_HOLE = 64 << 10;

const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);

/** A span of a chunk to write, [from, to) relative to the chunk. */
export interface DataSpan {
  readonly from: number;
  readonly to: number;
}

function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  // Most data blocks differ from zero in their first or last byte: decide those without a compare.
  if (bytes[from] !== 0 || bytes[to - 1] !== 0) return false;
  return ZERO_BLOCK.compare(bytes, from, to, 0, to - from) === 0;
}

/**
 * The spans of `bytes` (which sit at file offset `position`) that must be written; everything
 * between them is zeros in runs of at least `minHole` whole aligned blocks, left as holes.
 */
export function planSparseWrites(bytes: Uint8Array, position: number, minHole = MIN_HOLE): DataSpan[] {
  const spans: DataSpan[] = [];
  const firstBlock = (HOLE_BLOCK - (position % HOLE_BLOCK)) % HOLE_BLOCK;
  let dataFrom = 0;
  let zeroFrom = -1;
  const closeZeroRun = (end: number): void => {
    if (zeroFrom >= 0 && end - zeroFrom >= minHole) {
      if (zeroFrom > dataFrom) spans.push({ from: dataFrom, to: zeroFrom });
      dataFrom = end;
    }
    zeroFrom = -1;
  };
  let at = firstBlock;
  for (; at + HOLE_BLOCK <= bytes.length; at += HOLE_BLOCK) {
    if (isZero(bytes, at, at + HOLE_BLOCK)) {
      if (zeroFrom < 0) zeroFrom = at;
    } else {
      closeZeroRun(at);
    }
  }
  closeZeroRun(at);
  if (dataFrom < bytes.length) spans.push({ from: dataFrom, to: bytes.length });
  return spans;
}
