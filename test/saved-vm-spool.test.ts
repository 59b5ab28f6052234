/**
 * A saved VM that arrives as a stream is spooled to an unlinked temporary file first. The spool's
 * descriptor is closed exactly once, and a failing close never hides the error that ended the
 * spool (the real-tmpfs ENOSPC and signal cases are in faults.test.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { brotliDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { openSavedVmStream, type SpoolFileSystem } from '../src/sources/saved-vm/saved-vm-source.js';
import { tempDir } from './helpers/machines.js';

const stream = brotliDecompressSync(fs.readFileSync(path.join(import.meta.dirname, '..', 'examples', 'tiny-q35.vm.state.br')));
const dir = tempDir('vmdump-spool-test-');
const chunks = (): Readable => Readable.from([stream.subarray(0, 1 << 20), stream.subarray(1 << 20)]);

describe('spooling a saved VM', () => {
  it('a write that fails (ENOSPC) and a close that then fails (EIO): ENOSPC and $TMPDIR are reported, the descriptor is closed once', async () => {
    const closed: number[] = [];
    const failing: SpoolFileSystem = {
      openSync: fs.openSync,
      unlinkSync: fs.unlinkSync,
      write: ((
        fd: number,
        _buffer: Uint8Array,
        _offset: number,
        _length: number,
        _position: number,
        callback: (error: Error | null, written: number) => void,
      ) => {
        callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 0);
        void fd;
      }) as SpoolFileSystem['write'],
      closeSync: (fd: number) => {
        closed.push(fd);
        fs.closeSync(fd);
        throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
      },
    };
    const failure = await openSavedVmStream(chunks(), 'standard input', { spoolDir: dir, spoolFileSystem: failing }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'output' });
    expect((failure as Error).message).toMatch(
      new RegExp(`^cannot spool the saved VM from standard input into \\$TMPDIR \\(${dir}\\), which is full: .*\\(ENOSPC\\)`),
    );
    expect((failure as Error).message).not.toMatch(/EIO/);
    expect(closed).toHaveLength(1);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a stream that spools whole opens as the guest, and closing it twice closes the descriptor once', async () => {
    const guest = await openSavedVmStream(chunks(), 'standard input', { spoolDir: dir });
    expect(guest.vcpus).toHaveLength(2);
    await guest.close();
    await guest.close();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
