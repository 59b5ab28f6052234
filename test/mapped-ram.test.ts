/**
 * Reading a mapped-ram block in place (docs/qemu-migration-stream.md §11), on a hand-made file:
 * the bitmap, not the file, says which pages hold data (a page written and later zeroed keeps its
 * old bytes in the file), and every mix of present runs and gaps reads back exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBlock } from '../src/formats/migration/block-reader.js';
import type { RamBlock } from '../src/formats/migration/migration-stream.js';
import { PageIndex } from '../src/formats/migration/page-index.js';
import { tempDir } from './helpers/machines.js';

const PAGE = 4096;
const PAGES = 96;
const dir = tempDir('vmdump-mapped-ram-');

/** Present pages: runs with gaps of 1, 3, 16, 17 and 40 pages, both ends included. */
const present = (page: number): boolean =>
  page < 5 || (page > 5 && page < 9) || (page >= 12 && page < 14) || page === 30 || (page >= 48 && page < 55) || page === 95;

describe('a mapped-ram block read in place', () => {
  it('gives the present pages from their offsets and zeros for the rest, whatever the span asked for', async () => {
    const bitmapOffset = 100;
    const pagesOffset = 8 * PAGE;
    const file = path.join(dir, 'mapped.ram');
    // Every page region holds bytes, present or not: absent ones are stale data the bitmap hides.
    const bytes = Buffer.alloc(pagesOffset + PAGES * PAGE, 0x5a);
    for (let page = 0; page < PAGES; page += 1) {
      bytes.fill(page + 1, pagesOffset + page * PAGE, pagesOffset + (page + 1) * PAGE);
    }
    bytes.fill(0, bitmapOffset, bitmapOffset + PAGES / 8);
    for (let page = 0; page < PAGES; page += 1) if (present(page)) bytes[bitmapOffset + (page >> 3)]! |= 1 << (page & 7);
    fs.writeFileSync(file, bytes);
    const fd = fs.openSync(file, 'r');
    try {
      const block: RamBlock = {
        id: 'pc.ram',
        usedLength: BigInt(PAGES * PAGE),
        pageSize: PAGE,
        pages: new PageIndex(PAGES),
        foreignChunks: new Map(),
        vmcoreinfoPages: { pages: [], complete: false },
        mapped: { bitmapOffset, pagesOffset },
      };
      const expected = (offset: number, length: number): Buffer => {
        const want = Buffer.alloc(length);
        for (let i = 0; i < length; i += 1) {
          const page = Math.floor((offset + i) / PAGE);
          want[i] = present(page) ? page + 1 : 0;
        }
        return want;
      };
      const stream = { fd, size: bytes.length, label: 'mapped.ram' };
      for (const [offset, length] of [
        [0, PAGES * PAGE],
        [PAGE * 5, PAGE],
        [PAGE * 4 + 100, PAGE * 30],
        [PAGE * 31 + 7, PAGE * 20],
        [PAGE * 94, PAGE * 2],
        [PAGE * 60, 4000],
      ] as const) {
        const into = Buffer.alloc(length, 0xee);
        await readBlock(stream, block, BigInt(offset), into);
        expect([offset, into.equals(expected(offset, length))]).toEqual([offset, true]);
      }
      await expect(readBlock(stream, block, BigInt(PAGES * PAGE - 10), Buffer.alloc(20))).rejects.toThrow(
        /goes past the end of RAM block pc.ram/,
      );
    } finally {
      fs.closeSync(fd);
    }
  });
});
