/**
 * Reads a span of a RAM block out of the stream file: consecutive data pages that sit at a fixed
 * stride are fetched with one read and their payloads copied out; ZERO records are filled;
 * pages the stream never sent read as zeros.
 */
import * as fs from 'node:fs';
import { VmdumpError, hex } from '../../model/errors.js';
import type { RamBlock } from './migration-stream.js';
import { PAGE_SIZE } from './migration-stream.js';

const MAX_SPAN = 4 << 20;

function pread(fd: number, into: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => fs.read(fd, into, done, into.length - done, position + done, (error, n) => {
      if (error) reject(error);
      else if (n === 0) reject(new VmdumpError('short-read', `the stream file ended at ${hex(position + done)} while reading page data`));
      else if (done + n < into.length) step(done + n);
      else resolve();
    });
    step(0);
  });
}

export async function readBlock(fd: number, block: RamBlock, offset: bigint, into: Uint8Array): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const at = offset + BigInt(done);
    const page = Number(at / BigInt(PAGE_SIZE));
    const inPage = Number(at % BigInt(PAGE_SIZE));
    const source = block.pages.lookup(page);
    const take = Math.min(PAGE_SIZE - inPage, into.length - done);
    if (source === undefined || source.kind === 'fill') {
      into.fill(source?.byte ?? 0, done, done + take);
      done += take;
      continue;
    }
    // Extend over following data pages at a constant stride, up to what `into` still needs.
    let pages = 1;
    let stride = 0;
    while (done + take + (pages - 1) * PAGE_SIZE < into.length && pages * PAGE_SIZE < MAX_SPAN) {
      const next = block.pages.lookup(page + pages);
      if (next?.kind !== 'data') break;
      const step = next.offset - source.offset - (pages - 1) * stride;
      if (pages === 1) stride = next.offset - source.offset;
      else if (step !== stride) break;
      pages += 1;
    }
    const bytesWanted = Math.min(into.length - done, pages * PAGE_SIZE - inPage);
    const spanLength = (pages - 1) * stride + PAGE_SIZE;
    const span = Buffer.allocUnsafe(spanLength);
    await pread(fd, span, source.offset);
    let copied = 0;
    for (let i = 0; copied < bytesWanted; i += 1) {
      const from = i * stride + (i === 0 ? inPage : 0);
      const length = Math.min(PAGE_SIZE - (i === 0 ? inPage : 0), bytesWanted - copied);
      span.copy(into, done + copied, from, from + length);
      copied += length;
    }
    done += copied;
  }
}
