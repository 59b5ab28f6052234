/**
 * vmdump verify and --checksum: good dumps pass (ours here; QEMU's own in kdump-qemu.test.ts),
 * and each corrupted variant is rejected with exit 3 and a message naming what is wrong.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir, writeMachine } from './helpers/machines.js';
import { run } from './helpers/tools.js';

const dir = tempDir('vmdump-verify-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let machine: string;
const dumps: Record<string, string> = {};
beforeAll(async () => {
  machine = writeMachine(dir, {
    arch: 'x86_64',
    ranges: [
      { address: 0n, size: 0x9f000 },
      { address: 0x100000n, size: 0x200000 },
    ],
    vcpus: [{ rip: '0xffffffff81000000' }, { rip: '0xffffffff81000010' }],
    vmcoreinfo: 'OSRELEASE=6.1\n',
  });
  for (const [name, args] of Object.entries({
    elf: [],
    kdump: ['--format', 'kdump-zlib'],
    flat: ['--format', 'kdump-zstd', '--flattened'],
  })) {
    dumps[name] = path.join(dir, `good.${name}`);
    const result = await runCli(['raw', machine, ...args, '--checksum', 'sha256', '-o', dumps[name]]);
    expect(result.code).toBe(0);
  }
});

/** A copy of a good dump with `change` applied (and no digest file, unless asked). */
function variant(name: string, of: string, change: (bytes: Buffer) => Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, change(Buffer.from(fs.readFileSync(dumps[of]!))));
  return file;
}

async function verify(file: string): Promise<{ code: number | null; out: string; err: string }> {
  const result = await runCli(['verify', file]);
  return { code: result.code, out: result.stdout.toString(), err: result.stderr };
}

describe('vmdump verify', () => {
  it.each(['elf', 'kdump', 'flat'])('accepts a good %s dump and its digest; sha256sum agrees', async (name) => {
    const result = await verify(dumps[name]!);
    // The raw guest's VMCOREINFO has OSRELEASE but no kernel to read a version from: a kdump header
    // without one is sound, but libkdumpfile refuses it, and verify says so.
    expect(result.err).toBe(
      name === 'elf'
        ? ''
        : `vmdump: warning: ${dumps[name]}: the header's utsname has no version: drgn (libkdumpfile) will not open this file; crash and makedumpfile will\n`,
    );
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/: OK: .*SHA-256 matches the \.sha256 file/);
    expect(result.out).toMatch(
      name === 'elf'
        ? /ELF64 little-endian EM_X86_64 core: 3 program headers, 2 PT_LOAD .* 5 notes \(2 NT_PRSTATUS, VMCOREINFO\)/
        : /kdump-compressed \(header version 6, 64-bit little-endian, x86_64\): 2 CPUs, 671 pages/,
    );
    expect(run('sh', ['-c', `cd '${dir}' && sha256sum -c '${path.basename(dumps[name]!)}.sha256'`]).status).toBe(0);
  });

  const elfPhoff = (b: Buffer): number => Number(b.readBigUInt64LE(32));
  const notesOffset = (b: Buffer): number => Number(b.readBigUInt64LE(elfPhoff(b) + 8)); // PT_NOTE is first
  const kdumpDescriptor = (b: Buffer): number => (1 + b.readUInt32LE(432) + b.readUInt32LE(436)) * 4096;

  it.each([
    [
      'ELF truncated',
      'elf',
      (b: Buffer) => b.subarray(0, b.length - 5000),
      /program header 2 \(PT_LOAD\): bytes \[0x[0-9a-f]+, 0x[0-9a-f]+\) run past the end of the file/,
    ],
    [
      'ELF e_phoff out of range',
      'elf',
      (b: Buffer) => {
        b.writeBigUInt64LE(0xffffff00n, 32);
        return b;
      },
      /the program header table \[0xffffff00, .*\) runs past the end of the file/,
    ],
    [
      'ELF note size wrong',
      'elf',
      (b: Buffer) => {
        b.writeUInt32LE(0x10000, notesOffset(b) + 4);
        return b;
      },
      /PT_NOTE 0: note 0 \(n_namesz 5, n_descsz 65536\) ends at \d+, past the segment's \d+ bytes/,
    ],
    [
      'ELF section headers out of range',
      'elf',
      (b: Buffer) => {
        b.writeBigUInt64LE(0x7fff0000n, 40);
        b.writeUInt16LE(64, 58);
        b.writeUInt16LE(1, 60);
        return b;
      },
      /the section header table \[0x7fff0000, 0x7fff0040\) runs past the end of the file/,
    ],
    [
      'ELF not a core',
      'elf',
      (b: Buffer) => {
        b.writeUInt16LE(2, 16);
        return b;
      },
      /e_type 2 is not ET_CORE/,
    ],
    [
      'kdump truncated',
      'kdump',
      (b: Buffer) => b.subarray(0, b.length - 100),
      /page descriptor \d+: data \[0x[0-9a-f]+, \+\d+\) is outside the page data/,
    ],
    [
      'kdump sub_hdr_size out of range',
      'kdump',
      (b: Buffer) => {
        b.writeUInt32LE(100000, 432);
        return b;
      },
      /the sub-header area \(100000 blocks\) runs past the end of the file/,
    ],
    [
      // Found by fuzzing: counted before this check, verify read terabytes of zeros past the end (minutes).
      'kdump bitmap_blocks past the end of the file',
      'kdump',
      (b: Buffer) => {
        b.writeUInt32LE(0x4000_0002, 436);
        return b;
      },
      /bitmap_blocks 1073741826 puts the bitmaps' end at 0x[0-9a-f]+, past the end of the file/,
    ],
    [
      'kdump note_size wrong',
      'kdump',
      (b: Buffer) => {
        b.writeBigUInt64LE(b.readBigUInt64LE(4096 + 56) + 8192n, 4096 + 56);
        return b;
      },
      /the notes \[0x1068, \+0x[0-9a-f]+\) are outside the sub-header area/,
    ],
    [
      'kdump descriptor past the end',
      'kdump',
      (b: Buffer) => {
        b.writeBigInt64LE(BigInt(b.length), kdumpDescriptor(b));
        return b;
      },
      /page descriptor 0: data \[0x[0-9a-f]+, \+\d+\) is outside the page data/,
    ],
    [
      'kdump page data corrupt',
      'kdump',
      (b: Buffer) => {
        const at = kdumpDescriptor(b);
        const offset = Number(b.readBigInt64LE(at));
        b.fill(0xee, offset, offset + 16);
        return b;
      },
      /page descriptor 0: data does not decompress/,
    ],
    [
      'flattened truncated',
      'flat',
      (b: Buffer) => b.subarray(0, b.length - 20),
      /flattened (stream truncated at byte \d+: no end marker|record at byte \d+ .* runs past the end of the file)/,
    ],
    [
      'flattened bytes after the end marker',
      'flat',
      (b: Buffer) => Buffer.concat([b, Buffer.from('junk')]),
      /4 bytes follow the flattened end marker/,
    ],
    ['not a dump', 'elf', () => Buffer.from('hello, world\n'), /neither an ELF core nor a kdump file/],
  ])('rejects %s (exit 3, a specific message)', async (name, of, change, message) => {
    const result = await verify(variant(name.replace(/ /g, '-'), of, change));
    expect(result.code).toBe(3);
    expect(result.out).toBe('');
    expect(result.err).toMatch(message);
    expect(result.err.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('rejects a dump changed after its digest was written', async () => {
    const file = variant('tampered.kdump', 'kdump', (b) => {
      b[b.length - 1]! ^= 1;
      return b;
    });
    fs.copyFileSync(`${dumps.kdump}.sha256`, `${file}.sha256`);
    const result = await verify(file);
    expect(result.code).toBe(3);
    expect(result.err).toMatch(
      /SHA-256 [0-9a-f]{64} differs from [0-9a-f]{64} in .*tampered\.kdump\.sha256: the file changed after it was written/,
    );
  });
});

describe('--checksum sha256', () => {
  it('to standard output: the digest of the bytes written, on stderr', async () => {
    const result = await runCli(['raw', machine, '--format', 'kdump-lzo', '--checksum', 'sha256']);
    expect(result.code).toBe(0);
    const digest = /vmdump: sha256 ([0-9a-f]{64}) {2}-/.exec(result.stderr)?.[1];
    const { createHash } = await import('node:crypto');
    expect(digest).toBe(createHash('sha256').update(result.stdout).digest('hex'));
  });

  it('an existing digest file is not overwritten without --force', async () => {
    const out = path.join(dir, 'again.elf');
    fs.writeFileSync(`${out}.sha256`, 'old\n');
    const result = await runCli(['raw', machine, '--checksum', 'sha256', '-o', out]);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/the dump is complete, but its digest could not be written: .*EEXIST/);
    expect(fs.readFileSync(`${out}.sha256`, 'utf8')).toBe('old\n');
  });
});
