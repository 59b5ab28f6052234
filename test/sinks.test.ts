/** Sinks: memfs and real files write the same bytes; gzip round-trips; failures leave nothing behind. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Volume, createFsFromVolume } from 'memfs';
import { describe, expect, it } from 'vitest';
import type { GuestModel } from '../src/guest/guest.js';
import { writeDump } from '../src/pipeline/write-dump.js';
import { fileSink, placedFileSink } from '../src/sinks/file-sink.js';
import { writeKdump } from '../src/pipeline/write-kdump.js';
import { planKdump } from '../src/transforms/plan/kdump-plan.js';
import type { FileSystem } from '../src/sinks/fs-api.js';
import { gzipSink } from '../src/sinks/gzip-sink.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import { fillPattern, guestOf, patternRange, x86State } from './helpers/guests.js';
import { readElfFile, parseElf } from './helpers/elf-reader.js';
import { tempDir } from './helpers/machines.js';
import { expectSameFile } from './helpers/same-file.js';
import { itWithTool, run } from './helpers/tools.js';

const dir = tempDir();
const guest = (): GuestModel =>
  guestOf({
    ram: [patternRange(0n, 0xa0000n), patternRange(0x100000n, 0x300000n)],
    vcpus: [{ index: 0, state: x86State({ efer: 0x500n, rip: 0xffffffff81000000n }) }],
  });
const memfs = () => {
  const volume = new Volume();
  volume.mkdirSync('/dumps');
  return { volume, fileSystem: createFsFromVolume(volume) as unknown as FileSystem };
};

describe('file and memfs sinks', () => {
  it('memfs receives exactly the bytes a real file does, under the final name only, mode 0600', async () => {
    const real = path.join(dir, 'real.core');
    await writeDump(planDump(guest()), fileSink(real)).result;
    const { volume, fileSystem } = memfs();
    await writeDump(planDump(guest()), fileSink('/dumps/core.elf', { fileSystem })).result;
    expect(volume.readdirSync('/dumps')).toEqual(['core.elf']);
    const inMemory = volume.readFileSync('/dumps/core.elf') as Buffer;
    expect(inMemory.equals(fs.readFileSync(real))).toBe(true);
    expect(parseElf(inMemory).phdrs.length).toBe(3);
    expect(fs.statSync(real).mode & 0o777).toBe(0o600);
    expect(volume.statSync('/dumps/core.elf').mode & 0o777).toBe(0o600);
  });

  it('with overwrite (--force), a failure mid-way removes the partial file and leaves the existing destination untouched', async () => {
    const { volume, fileSystem } = memfs();
    volume.writeFileSync('/dumps/core.elf', 'the previous dump');
    const failing = guestOf({
      ram: [
        {
          ...patternRange(0n, 8n << 20n),
          read: async (offset, into) => {
            if (offset > 2n << 20n) throw new Error('disk vanished');
            into.fill(7);
          },
        },
      ],
    });
    await expect(
      writeDump(planDump(failing), fileSink('/dumps/core.elf', { fileSystem, overwrite: true })).result,
    ).rejects.toThrow('disk vanished');
    expect(volume.readdirSync('/dumps')).toEqual(['core.elf']);
    expect(volume.readFileSync('/dumps/core.elf', 'utf8')).toBe('the previous dump');
  });

  it('an existing file is refused without overwrite, replaced with it; a symlink is refused either way', async () => {
    const { volume, fileSystem } = memfs();
    volume.writeFileSync('/dumps/old.elf', 'precious');
    await expect(writeDump(planDump(guest()), fileSink('/dumps/old.elf', { fileSystem })).result).rejects.toMatchObject({
      code: 'output',
      message: '/dumps/old.elf already exists; use --force to replace it',
    });
    expect(volume.readFileSync('/dumps/old.elf', 'utf8')).toBe('precious');
    await writeDump(planDump(guest()), fileSink('/dumps/old.elf', { fileSystem, overwrite: true })).result;
    expect(parseElf(volume.readFileSync('/dumps/old.elf') as Buffer).phdrs.length).toBe(3);
    volume.writeFileSync('/dumps/target', 'not yours');
    volume.symlinkSync('/dumps/target', '/dumps/link.elf');
    await expect(
      writeDump(planDump(guest()), fileSink('/dumps/link.elf', { fileSystem, overwrite: true })).result,
    ).rejects.toMatchObject({
      code: 'output',
      message: expect.stringMatching(/link.elf is a symbolic link; vmdump does not write through links/),
    });
    expect(volume.readFileSync('/dumps/target', 'utf8')).toBe('not yours');
    expect(volume.readdirSync('/dumps').sort()).toEqual(['link.elf', 'old.elf', 'target']);
  });

  it('an unwritable destination is an output error before anything is read', async () => {
    let reads = 0;
    const counting = guestOf({
      ram: [
        {
          ...patternRange(0n, 4096n),
          read: async (_o, into) => {
            reads += 1;
            into.fill(0);
          },
        },
      ],
    });
    await expect(writeDump(planDump(counting), fileSink(path.join(dir, 'no/such/dir/core'))).result).rejects.toMatchObject({
      code: 'output',
      message: expect.stringContaining('cannot create'),
    });
    expect(reads).toBe(0);
  });

  it('reused chunk buffers never overwrite bytes still queued: 512 small chunks, every byte checked', async () => {
    const file = path.join(dir, 'reuse.core');
    const plan = planDump(guestOf({ ram: [patternRange(0x100000n, 32n << 20n)] }));
    await writeDump(plan, fileSink(file), { chunkSize: 64 << 10 }).result;
    const parsed = readElfFile(file);
    const load = parsed.phdrs[1]!;
    const got = fs.readFileSync(file).subarray(Number(load.offset), Number(load.offset + load.filesz));
    const want = Buffer.alloc(32 << 20);
    fillPattern(want, 0x100000n);
    expect(got.equals(want)).toBe(true);
  });

  it('fsync mode writes the same file', async () => {
    const file = path.join(dir, 'synced.core');
    const plain = path.join(dir, 'unsynced.core');
    await writeDump(planDump(guest()), fileSink(file, { fsync: true })).result;
    await writeDump(planDump(guest()), fileSink(plain)).result;
    expect(readElfFile(file).phdrs.length).toBe(3);
    expectSameFile(file, plain);
  });
});

describe('gzip sink', () => {
  const plainAndGzip = async () => {
    const plain = path.join(dir, 'plain.core');
    const gz = path.join(dir, 'core.gz');
    for (const f of [plain, gz]) fs.rmSync(f, { force: true });
    await writeDump(planDump(guest()), fileSink(plain)).result;
    const summary = await writeDump(planDump(guest()), gzipSink(fileSink(gz))).result;
    return { plain, gz, summary };
  };

  it('decompresses (zlib) to the same bytes as the plain output; progress counts dump bytes', async () => {
    const { plain, gz, summary } = await plainAndGzip();
    expect(gunzipSync(fs.readFileSync(gz)).equals(fs.readFileSync(plain))).toBe(true);
    expect(summary.bytesWritten).toBe(fs.statSync(plain).size);
  });

  itWithTool('gzip', 'gzip')('decompresses with the real gzip to the same bytes', async () => {
    const { plain, gz } = await plainAndGzip();
    const result = run('gzip', ['-dc', gz]);
    expect(result.status).toBe(0);
    expect(run('sh', ['-c', `gzip -dc '${gz}' | cmp - '${plain}' && echo same`]).stdout.trim()).toBe('same');
  });
});

describe('the first error is the one reported', () => {
  /** memfs whose writes fail with ENOSPC after `budget` bytes and whose close always fails (EIO), as a dying disk's might. */
  const failingDisk = (budget: number) => {
    const { volume, fileSystem } = memfs();
    let written = 0;
    const failing: FileSystem = {
      ...fileSystem,
      write(fd, buffer, offset, length, position, callback) {
        if (written + length > budget) {
          callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 0);
          return;
        }
        written += length;
        fileSystem.write(fd, buffer, offset, length, position, callback);
      },
      close(fd, callback) {
        fileSystem.close(fd, () => callback(Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' })));
      },
    };
    return { volume, fileSystem: failing };
  };

  it.each([
    ['file sink (ELF)', (fileSystem: FileSystem) => writeDump(planDump(guest()), fileSink('/dumps/core', { fileSystem })).result],
    [
      'gzip into a file sink',
      (fileSystem: FileSystem) =>
        writeDump(planDump(guest()), gzipSink(fileSink('/dumps/core', { fileSystem }), { level: 0 })).result,
    ],
    [
      'plain kdump file (positional writes)',
      (fileSystem: FileSystem) =>
        writeKdump(
          planKdump(guest(), { codec: 'zlib' }),
          { kind: 'plain', sink: placedFileSink('/dumps/core', { fileSystem }) },
          { threads: 1 },
        ).result,
    ],
    [
      'flattened kdump into a file sink',
      (fileSystem: FileSystem) =>
        writeKdump(
          planKdump(guest(), { codec: 'zlib' }),
          { kind: 'flattened', sink: fileSink('/dumps/core', { fileSystem }) },
          { threads: 1 },
        ).result,
    ],
  ])('%s: a write fails (ENOSPC), then close fails (EIO): ENOSPC is reported, nothing is left', async (_name, dump) => {
    const { volume, fileSystem } = failingDisk(64 << 10);
    const failure = await dump(fileSystem).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'output', message: expect.stringMatching(/ENOSPC/) as unknown });
    expect(String((failure as Error).message)).not.toMatch(/EIO/);
    expect(volume.readdirSync('/dumps')).toEqual([]);
  });
});
