/**
 * Random access to a dump's logical bytes: a plain file as it is, or a flattened stream
 * through an index of its records (docs/kdump-compressed.md §7; never-written ranges read as zeros,
 * as crash reads them). The index is built in one pass that checks the framing.
 */
import * as fs from 'node:fs';
import { VmdumpError } from '../guest/errors.js';
import { FLAT_HEADER_SIZE, FLAT_SIGNATURE } from '../formats/kdump/flattened.js';

export interface DumpBytes {
  /** Size of the logical file (for a flattened stream: the end of its furthest record). */
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

interface FlatRecord {
  readonly offset: number;
  readonly size: number;
  readonly at: number;
}

export async function openDumpBytes(file: string): Promise<{ bytes: DumpBytes; flattened: boolean; fileSize: number }> {
  const handle = await fs.promises.open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new VmdumpError('bad-input', `cannot open ${file}: ${error.code ?? error.message}`);
  });
  try {
    const fileSize = (await handle.stat()).size;
    const readAt = async (offset: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    };
    const head = await readAt(0, 16);
    if (head.toString('latin1', 0, FLAT_SIGNATURE.length) !== FLAT_SIGNATURE || head[FLAT_SIGNATURE.length] !== 0) {
      return { bytes: { size: fileSize, read: readAt, close: () => handle.close() }, flattened: false, fileSize };
    }
    const records = await indexFlattened(readAt, fileSize, file);
    return { bytes: flattenedBytes(records, readAt, () => handle.close()), flattened: true, fileSize };
  } catch (error) {
    // The caller gets no DumpBytes to close: the handle is closed here (the first error is reported).
    await handle.close().catch(() => undefined);
    throw error;
  }
}

async function indexFlattened(
  readAt: (offset: number, length: number) => Promise<Buffer>,
  fileSize: number,
  file: string,
): Promise<FlatRecord[]> {
  const start = await readAt(0, 32);
  if (start.length < 32 || start.readBigInt64BE(16) !== 1n)
    throw new VmdumpError('bad-input', 'flattened header: type is not 1', file);
  const records: FlatRecord[] = [];
  let at = FLAT_HEADER_SIZE;
  for (;;) {
    const header = await readAt(at, 16);
    if (header.length < 16) throw new VmdumpError('bad-input', `flattened stream truncated at byte ${at}: no end marker`, file);
    const offset = header.readBigInt64BE(0);
    const size = header.readBigInt64BE(8);
    if (offset === -1n && size === -1n) {
      at += 16;
      break;
    }
    if (offset < 0n || size <= 0n || offset > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new VmdumpError('bad-input', `flattened record at byte ${at} has offset ${offset} and size ${size}`, file);
    }
    if (BigInt(at) + 16n + size > BigInt(fileSize)) {
      throw new VmdumpError(
        'bad-input',
        `flattened record at byte ${at} (${size} bytes) runs past the end of the file (${fileSize})`,
        file,
      );
    }
    records.push({ offset: Number(offset), size: Number(size), at: at + 16 });
    at += 16 + Number(size);
  }
  if (at !== fileSize) throw new VmdumpError('bad-input', `${fileSize - at} bytes follow the flattened end marker`, file);
  records.sort((a, b) => a.offset - b.offset);
  // makedumpfile -R would let a later record overwrite an earlier one; no writer of kdump files does that.
  records.forEach((r, i) => {
    const next = records[i + 1];
    if (next !== undefined && r.offset + r.size > next.offset) {
      throw new VmdumpError(
        'bad-input',
        `flattened records overlap: [${r.offset}, +${r.size}) and [${next.offset}, +${next.size})`,
        file,
      );
    }
  });
  return records;
}

function flattenedBytes(
  records: readonly FlatRecord[],
  readAt: (offset: number, length: number) => Promise<Buffer>,
  close: () => Promise<void>,
): DumpBytes {
  const size = records.reduce((end, r) => Math.max(end, r.offset + r.size), 0);
  return {
    size,
    close,
    async read(offset, length) {
      const out = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      const end = offset + out.length;
      let low = 0; // the first record ending after `offset` (records are sorted and disjoint)
      for (let high = records.length; low < high;) {
        const mid = (low + high) >> 1;
        if (records[mid]!.offset + records[mid]!.size <= offset) low = mid + 1;
        else high = mid;
      }
      for (let i = low; i < records.length && records[i]!.offset < end; i += 1) {
        const r = records[i]!;
        const from = Math.max(offset, r.offset);
        const to = Math.min(end, r.offset + r.size);
        if (from < to) (await readAt(r.at + (from - r.offset), to - from)).copy(out, from - offset);
      }
      return out;
    },
  };
}
