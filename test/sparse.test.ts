/**
 * Sparse output (issue 21): zero runs of a new regular file become holes. The planner is checked
 * against spans worked out by hand; the CLI's files against their --no-sparse twins with `cmp`
 * (exit status), their sizes, `sha256sum` against --checksum, and the blocks `stat` reports.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planSparseWrites } from '../src/sinks/sparse-runs.js';
import { readElfFile } from './helpers/elf-reader.js';
import { runCli, tempDir } from './helpers/machines.js';
import { run } from './helpers/tools.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('planSparseWrites: what is written, what is left as a hole', () => {
  it('a 128 KiB aligned zero run between data is a hole; the data on both sides is written', () => {
    const bytes = new Uint8Array(256 * KiB).fill(1);
    bytes.fill(0, 4 * KiB, 132 * KiB);
    expect(planSparseWrites(bytes, 0)).toEqual([
      { from: 0, to: 4 * KiB },
      { from: 132 * KiB, to: 256 * KiB },
    ]);
  });

  it('a zero run shorter than 64 KiB is written with the data around it, in one write', () => {
    const bytes = new Uint8Array(256 * KiB).fill(1);
    bytes.fill(0, 4 * KiB, 64 * KiB); // 60 KiB
    expect(planSparseWrites(bytes, 0)).toEqual([{ from: 0, to: 256 * KiB }]);
  });

  it('holes are whole blocks at aligned file offsets: a chunk at file offset 100 keeps its unaligned edges', () => {
    const bytes = new Uint8Array(200 * KiB); // all zero, file bytes [100, 100 + 200 KiB)
    // First aligned block starts at file 4096 = chunk 3996; the last whole one ends at file 200 KiB = chunk 204700.
    expect(planSparseWrites(bytes, 100)).toEqual([
      { from: 0, to: 3996 },
      { from: 204700, to: 200 * KiB },
    ]);
  });

  it('a block that is zero except for its last byte is data', () => {
    const bytes = new Uint8Array(128 * KiB);
    bytes[64 * KiB - 1] = 9; // the last byte of block 15
    expect(planSparseWrites(bytes, 0)).toEqual([{ from: 0, to: 64 * KiB }]);
  });

  it('an all-zero chunk at an aligned offset writes nothing', () => {
    expect(planSparseWrites(new Uint8Array(2 * MiB), 8 * KiB)).toEqual([]);
  });
});

describe('vmdump writes long zero runs of a file as holes', () => {
  const dir = tempDir('vmdump-sparse-');
  /** 64 MiB of RAM: 1 MiB of data at 8 MiB, zeros elsewhere, so the ELF file ends in a hole. */
  const machine = (): string => {
    const image = path.join(dir, 'ram.img');
    const fd = fs.openSync(image, 'w');
    fs.writeSync(fd, Buffer.alloc(MiB, 0x5a), 0, MiB, 8 * MiB);
    fs.ftruncateSync(fd, 64 * MiB);
    fs.closeSync(fd);
    const file = path.join(dir, 'machine.json');
    fs.writeFileSync(file, JSON.stringify({ arch: 'x86_64', ram: [{ address: 0, size: 64 * MiB, file: 'ram.img' }] }));
    return file;
  };

  it.each([['portable'], ['qemu']])(
    'layout %s: the same bytes and size as with --no-sparse (cmp), a fraction of the blocks, --checksum is the bytes as read',
    async (layout) => {
      const description = machine();
      const [sparse, dense] = [path.join(dir, `${layout}.sparse`), path.join(dir, `${layout}.dense`)];
      const args = ['raw', description, '--layout', layout, ...(layout === 'qemu' ? [] : ['--vmcoreinfo', 'none'])];
      expect((await runCli([...args, '--checksum', 'sha256', '-o', sparse])).code).toBe(0);
      expect((await runCli([...args, '--no-sparse', '-o', dense])).code).toBe(0);
      expect(run('cmp', [sparse, dense]).status).toBe(0);
      const [s, d] = [fs.statSync(sparse), fs.statSync(dense)];
      // The ELF holds all 64 MiB and ends with zero pages: the size comes from the end, not from a write.
      expect(s.size).toBe(d.size);
      expect(
        readElfFile(sparse)
          .phdrs.filter((p) => p.type === 1)
          .reduce((sum, p) => sum + p.filesz, 0n),
      ).toBe(BigInt(64 * MiB));
      expect(d.blocks * 512).toBeGreaterThan(64 * MiB - 1);
      expect(s.blocks * 512).toBeLessThan(2 * MiB); // the 1 MiB of data, headers, unaligned edges
      const digest = run('sha256sum', [sparse]).stdout.split(' ')[0];
      expect(fs.readFileSync(`${sparse}.sha256`, 'utf8').split(' ')[0]).toBe(digest);
    },
  );

  it('standard output gets every byte (a pipe has no holes)', async () => {
    const description = machine();
    const file = path.join(dir, 'file.core');
    expect((await runCli(['raw', description, '--vmcoreinfo', 'none', '-o', file])).code).toBe(0);
    const piped = await runCli(['raw', description, '--vmcoreinfo', 'none']);
    expect(piped.stdout.equals(fs.readFileSync(file))).toBe(true);
  });
});
