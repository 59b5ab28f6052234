/**
 * Hostile saved VMs: every damage ends with one line naming the byte offset, exit 3, and no
 * output file. The damage is applied to a real stream QEMU 7.2 wrote for the tiny guest: the
 * bundled example (no QEMU needed); the byte-identity checks compare with QEMU's own dump of a
 * stream saved here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSavedVm } from '../src/sources/saved-vm/saved-vm-source.js';
import { ByteReader } from '../src/formats/migration/byte-reader.js';
import { parseMigrationStream } from '../src/formats/migration/migration-stream.js';
import { locateVmdesc } from '../src/formats/migration/vmdesc.js';
import { CLI, runCli, tempDir } from './helpers/machines.js';
import { unpackExample } from '../scripts/unpack-example.js';
import { buildTinyGuests, saveReferences, startGuest, QEMU } from '../scripts/qemu-harness.js';
import { itWithTool, itWithTools, run, mayBootQemu } from './helpers/tools.js';
import { expectSameFile } from './helpers/same-file.js';
import { libvirtHeader } from './helpers/libvirt.js';

const qemuIt = itWithTool(QEMU, 'qemu-system-x86');
const dir = tempDir('vmdump-bad-stream-');
/** The bundled stream (examples/tiny-q35.vm.state.br): the damage tests' base. */
let stream: Buffer;
let bundledFile: string;
/** A stream QEMU saves here, and QEMU's own dump of the same paused guest. */
let reference: string;
let streamFile: string;

beforeAll(() => {
  bundledFile = unpackExample(path.join(dir, 'bundled'));
  stream = fs.readFileSync(bundledFile);
});

beforeAll(async () => {
  if (!mayBootQemu(QEMU)) return;
  const { tiny64 } = buildTinyGuests();
  const guest = await startGuest({ machine: 'q35', memory: '64M', smp: 1, kernel: tiny64 }, path.join(dir, 'guest'));
  try {
    const refs = await saveReferences(guest);
    streamFile = refs.stream;
    reference = refs.dump;
  } finally {
    await guest.quit();
  }
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The payload of the page at 0x201000 (the guest stamps 0x200000-0x2fffff, so these are data
 * pages sent back to back): group 1 of the main RAM block starts with the record for 0x200000.
 */
async function stampPagePayload(): Promise<number> {
  const fd = fs.openSync(bundledFile, 'r');
  const size = fs.fstatSync(fd).size;
  const parsed = await parseMigrationStream(new ByteReader(fd, size, 'x'), () => locateVmdesc(fd, size, 'x'));
  fs.closeSync(fd);
  const first = parsed.blocks[0]!.pages.checkpoint(1)!;
  expect(stream[first + 7]).toBe(0x28); // CONTINUE | PAGE
  const second = first + 8 + 4096;
  expect(stream[second + 7]).toBe(0x28);
  return second + 8;
}

async function expectRefused(name: string, bytes: Buffer, message: RegExp): Promise<void> {
  const file = path.join(dir, `${name}.state`);
  fs.writeFileSync(file, bytes);
  const out = path.join(dir, `${name}.core`);
  const result = await runCli(['saved', file, '-o', out]);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.code).toBe(3);
  expect(fs.readdirSync(dir).filter((f) => (f.startsWith(name) && f.endsWith('.core')) || f.includes('vmdump-partial'))).toEqual(
    [],
  );
}

describe('damaged streams', () => {
  it('a wrong version', async () => {
    const bytes = Buffer.from(stream);
    bytes.writeUInt32BE(2, 4);
    await expectRefused('version', bytes, /unsupported migration stream version 2 \(vmdump reads version 3\) at byte 0x4/);
  });

  it('not a stream at all', async () => {
    await expectRefused(
      'json',
      Buffer.from('{"arch": "x86_64"}\n'),
      /not a QEMU migration stream \(magic 0x7b226172.*\) at byte 0x0/,
    );
  });

  it('truncated: half the file, and the last byte', async () => {
    await expectRefused(
      'half',
      stream.subarray(0, stream.length >> 1),
      new RegExp(`ends at byte 0x${(stream.length >> 1).toString(16)} without its vmdesc trailer`),
    );
    await expectRefused('short', stream.subarray(0, stream.length - 1), /without its vmdesc trailer/);
  });

  it('a flipped bit in a section footer and in a RAM record', async () => {
    const eos = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x10, 0x7e]);
    const footer = stream.indexOf(eos) + 8;
    const bytes = Buffer.from(stream);
    bytes[footer] = 0x7f;
    await expectRefused(
      'footer',
      bytes,
      new RegExp(`unknown record type 0x7f: the stream is corrupt at byte 0x${footer.toString(16)}`),
    );
    const payload = await stampPagePayload();
    const flipped = Buffer.from(stream);
    flipped[payload - 1] = 0x28 ^ 0x01; // CONTINUE|PAGE → CONTINUE|PAGE|FULL
    await expectRefused(
      'ramflag',
      flipped,
      new RegExp(`RAM record flags 0x29 .*corrupt at byte 0x${(payload - 8).toString(16)}`),
    );
  });

  it('an encoding vmdump does not decode is refused by name (xbzrle)', async () => {
    const payload = await stampPagePayload();
    const bytes = Buffer.from(stream);
    bytes[payload - 1] = 0x28 | 0x40;
    await expectRefused('xbzrle', bytes, /uses the "xbzrle" migration capability, which vmdump does not decode/);
  });
});

describe('libvirt save images (virsh save)', () => {
  const header = (magic: 'LibvirtQemudSave' | 'LibvirtQemudPart', format: number, xml: string): Buffer =>
    libvirtHeader(magic, format, xml);

  qemuIt('a raw image with the libvirt header in front gives the same dump', async () => {
    const file = path.join(dir, 'virsh.save');
    fs.writeFileSync(
      file,
      Buffer.concat([header('LibvirtQemudSave', 0, '<domain><name>t</name></domain>'), fs.readFileSync(streamFile)]),
    );
    const out = path.join(dir, 'virsh.core');
    expect((await runCli(['saved', file, '--layout', 'qemu', '-o', out])).code).toBe(0);
    expectSameFile(out, reference);
  });

  // libvirt compresses the stream as a whole with the format's program (qemu_saveimage.c); so do these tests.
  itWithTools([
    [QEMU, 'qemu-system-x86'],
    ['gzip', 'gzip'],
    ['bzip2', 'bzip2'],
    ['xz', 'xz-utils'],
    ['lzop', 'lzop'],
    ['zstd', 'zstd'],
  ]).each([
    [1, 'gzip'],
    [2, 'bzip2'],
    [3, 'xz'],
    [4, 'lzop'],
    [5, 'zstd'],
  ] as const)(
    'a %s (%s-compressed) image is decompressed as it is read: the same dump, no spool left',
    async (format, program) => {
      const body = path.join(dir, `virsh.${program}.body`);
      expect(run('sh', ['-c', `${program} -c '${streamFile}' > '${body}'`]).status).toBe(0);
      const file = path.join(dir, `virsh.${program}.save`);
      fs.writeFileSync(file, Buffer.concat([header('LibvirtQemudSave', format, '<domain/>'), fs.readFileSync(body)]));
      fs.rmSync(body);
      const out = path.join(dir, `virsh.${program}.core`);
      const result = await runCli(['saved', file, '--layout', 'qemu', '-o', out], { tmpdir: dir });
      expect([result.code, result.stderr]).toEqual([0, expect.stringContaining('qemu layout')]);
      expectSameFile(out, reference);
      // Damaged: the program's own complaint, exit 3, nothing written.
      const damaged = path.join(dir, `virsh.${program}.damaged`);
      fs.writeFileSync(damaged, fs.readFileSync(file).subarray(0, fs.statSync(file).size - 4096));
      const refused = await runCli(['saved', damaged, '-o', path.join(dir, 'damaged.core')], { tmpdir: dir });
      expect([refused.code, refused.stderr]).toEqual([
        3,
        expect.stringMatching(
          new RegExp(`^vmdump: error: (cannot decompress this ${program}-compressed libvirt save image|the stream is truncated)`),
        ),
      ]);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('.vmdump-spool') || f === 'damaged.core')).toEqual([]);
    },
  );

  it('a compressed image through a pipe, and an incomplete one, are refused with the reason', async () => {
    const gz = path.join(dir, 'piped.gz.save');
    fs.writeFileSync(gz, Buffer.concat([header('LibvirtQemudSave', 1, '<domain/>'), stream]));
    const piped = run('bash', [
      '-c',
      `cat '${gz}' | TMPDIR='${dir}' '${process.execPath}' '${CLI}' saved - -o '${path.join(dir, 'piped.core')}'`,
    ]);
    expect([piped.status, piped.stderr]).toEqual([
      3,
      'vmdump: error: this libvirt save image is gzip-compressed; vmdump decompresses it when given the file, not a pipe (standard input)\n',
    ]);
    await expectRefused(
      'part',
      Buffer.concat([header('LibvirtQemudPart', 0, '<domain/>'), stream]),
      /incomplete \(LibvirtQemudPart/,
    );
  });
});

describe('standard input', () => {
  qemuIt('`cat vm.state | vmdump saved -` gives the same dump and leaves no spool file', async () => {
    const out = path.join(dir, 'stdin.core');
    const shell = run('bash', [
      '-c',
      `set -o pipefail; cat '${streamFile}' | TMPDIR='${dir}' '${process.execPath}' '${path.resolve('dist/src/cli/main.js')}' saved - --layout qemu > '${out}'`,
    ]);
    expect(shell.status).toBe(0);
    expectSameFile(out, reference);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.vmdump-spool'))).toEqual([]);
  });

  qemuIt('the library opens the same stream: one x86_64 vCPU', async () => {
    const guest = await openSavedVm(streamFile);
    expect(guest.vcpus).toHaveLength(1);
    expect(guest.arch.name).toBe('x86_64');
    await guest.close();
  });
});
