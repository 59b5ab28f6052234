/**
 * kdump-compressed layout and writer without QEMU: the spec's worked example (docs/kdump-compressed.md
 * §1, §9: q35 64 MiB SeaBIOS, 2 vCPUs) by hand, the 32-bit header offsets, the flattened framing,
 * and the writer's promises: output independent of thread count and batch size, every page
 * back intact with each codec, plain == reassembled flattened, a stalled sink stops the reader.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { physAddr } from '../src/guest/units.js';
import { architectureNamed } from '../src/targets/index.js';
import { fileOffset } from '../src/guest/units.js';
import type { GuestModel, RamRange } from '../src/guest/guest.js';
import { bitmapBytes, planKdump } from '../src/transforms/plan/kdump-plan.js';
import { kdumpHeadRecords } from '../src/transforms/encode/kdump-records.js';
import { encodeDiskDumpHeader, encodeKdumpSubHeader, type KdumpCodec } from '../src/formats/kdump/kdump-format.js';
import { flattenRecords } from '../src/formats/kdump/flattened.js';
import { writeKdump } from '../src/pipeline/write-kdump.js';
import { writableSink } from '../src/sinks/sink.js';
import { placedFileSink } from '../src/sinks/file-sink.js';
import { compressedBound, zlibPageCompressor } from '../src/transforms/compress/page-codecs.js';
import * as zlib from 'node:zlib';
import { guestOf, patternRange, q35SeaBiosRam, x86State, zeroRange, type ReadLog } from './helpers/guests.js';
import { hexBytes } from './helpers/bytes.js';
import { readFlattened, readKdump, readPage } from './helpers/kdump-reader.js';
import { runCli, spawnCliUntil, tempDir, writeMachine } from './helpers/machines.js';
import { run } from './helpers/tools.js';

const dir = tempDir('vmdump-kdump-unit-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const seaBiosGuest = (): GuestModel =>
  guestOf({
    ram: q35SeaBiosRam(),
    longMode: false,
    vcpus: [
      { index: 0, state: x86State() },
      { index: 1, state: x86State() },
    ],
  });

describe('kdump layout (docs/kdump-compressed.md §1–§4)', () => {
  it("reproduces the spec's worked example: q35 64 MiB SeaBIOS, 2 vCPUs", () => {
    const plan = planKdump(seaBiosGuest(), { codec: 'zlib', layout: 'qemu' });
    expect(plan.notes.length).toBe(1248);
    expect(plan.header).toMatchObject({
      subHdrSize: 1,
      maxMapnr: 0x100000,
      bitmapBlocks: 64,
      nrCpus: 2,
      status: 1,
      blockSize: 4096,
    });
    expect(plan.bitmapLength).toBe(131072);
    expect([plan.bitmapOffset, plan.bitmapOffset + plan.bitmapLength, plan.descriptorOffset]).toEqual([8192, 139264, 270336]);
    expect(plan.pageCount).toBe(20512);
    expect(plan.zeroPageOffset).toBe(762624);
  });

  it('encodes the 64-bit headers at the offsets of §2 and §3 (hex of §9)', () => {
    const plan = planKdump(seaBiosGuest(), { codec: 'zlib', layout: 'qemu' });
    const header = Buffer.from(encodeDiskDumpHeader(plan.header, plan.target));
    expect(header.length).toBe(464);
    expect(header.subarray(0, 12)).toEqual(Buffer.from(hexBytes('4b44554d50202020 06000000')));
    expect(header.toString('latin1', 272, 279)).toBe('x86_64\0');
    expect(header.subarray(424, 464)).toEqual(
      Buffer.from(hexBytes('01000000 00100000 01000000 40000000 00001000 00000000 00000000 00000000 00000000 02000000')),
    );
    expect(header.subarray(12, 272).every((b) => b === 0) && header.subarray(279, 424).every((b) => b === 0)).toBe(true);
    const sub = Buffer.from(encodeKdumpSubHeader(plan.subHeader, plan.target));
    expect(sub.length).toBe(104);
    expect(sub.readUInt32LE(8)).toBe(1); // dump_level
    expect(sub.readBigUInt64LE(48)).toBe(0x1068n); // offset_note = 4096 + 104
    expect(sub.readBigUInt64LE(56)).toBe(0x4e0n); // note_size 1248
    expect(sub.readBigUInt64LE(96)).toBe(0x100000n);
  });

  it('encodes the 32-bit headers (i386 alignment: 8-byte members at 4)', () => {
    const ram = [patternRange(0n, 0xa0000n), patternRange(0x100000n, 0x700000n)];
    const plan = planKdump(guestOf({ ram, longMode: false, vcpus: [{ index: 0, state: x86State() }] }), {
      codec: 'lzo',
      layout: 'portable',
    });
    expect(plan.target.elfClass).toBe(32);
    const header = Buffer.from(encodeDiskDumpHeader(plan.header, plan.target));
    expect(header.length).toBe(452);
    expect(header.toString('latin1', 272, 277)).toBe('i686\0');
    // status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr at 412..; nr_cpus at 448.
    expect([412, 416, 420, 424, 428, 448].map((at) => header.readUInt32LE(at))).toEqual([2, 4096, 1, 2, 0x800, 1]);
    const sub = Buffer.from(encodeKdumpSubHeader(plan.subHeader, plan.target));
    expect(sub.length).toBe(80);
    expect(sub.readUInt32LE(4)).toBe(1); // dump_level
    expect(sub.readBigUInt64LE(32)).toBe(BigInt(4096 + 80)); // offset_note
    expect(sub.readUInt32LE(40)).toBe(plan.notes.length); // note_size
    expect(sub.readBigUInt64LE(72)).toBe(0x800n); // max_mapnr_64
  });

  it("writes a big-endian guest's headers and descriptors big-endian (s390x)", async () => {
    const guest = guestOf({ arch: architectureNamed('s390x')!, ram: [patternRange(0n, 0x100000n)] });
    const plan = planKdump(guest, { codec: 'zlib' });
    const header = Buffer.from(encodeDiskDumpHeader(plan.header, plan.target));
    expect(header.subarray(8, 12)).toEqual(Buffer.from([0, 0, 0, 6]));
    expect(header.toString('latin1', 272, 278)).toBe('s390x\0');
    expect([424, 428, 432, 436, 440].map((at) => header.readUInt32BE(at))).toEqual([1, 4096, 1, 2, 0x100]);
    const sub = Buffer.from(encodeKdumpSubHeader(plan.subHeader, plan.target));
    expect([sub.readUInt32BE(8), Number(sub.readBigUInt64BE(48)), Number(sub.readBigUInt64BE(96))]).toEqual([
      1,
      4096 + 104,
      0x100,
    ]);
    const flat = await flattenedBytes(guest, 'zlib', 1, 64);
    const file = readFlattened(flat).reassembled;
    const descAt = plan.descriptorOffset;
    expect(Number(file.readBigInt64BE(descAt))).toBeGreaterThan(plan.zeroPageOffset); // pattern page 0 is not zero
    expect(file.readUInt32BE(descAt + 8)).toBeLessThanOrEqual(4096);
    expect(file.readUInt32BE(descAt + 12)).toBe(file.readUInt32BE(descAt + 8) === 4096 ? 0 : 1);
  });

  it('sets one bit per dumpable pfn, LSB first, partial pages included (§4)', () => {
    const runs = [
      { first: 0, count: 0xa0 },
      { first: 0xc0, count: 3 },
    ];
    const bytes = bitmapBytes(runs, 0, 32);
    expect(Buffer.from(bytes).toString('hex')).toBe(`${'ff'.repeat(20)}${'00'.repeat(4)}07${'00'.repeat(7)}`);
    expect(Buffer.from(bitmapBytes(runs, 24, 1))).toEqual(Buffer.from([0x07]));
    // A range starting and ending mid-page still marks both pages.
    const plan = planKdump(guestOf({ ram: [patternRange(0x1800n, 0x1000n)] }), { codec: 'zlib' });
    expect(plan.runs).toEqual([{ first: 1, count: 2 }]);
  });

  it('writes bitmap chunks to both bitmaps, chunk by chunk, as QEMU does', () => {
    const plan = planKdump(seaBiosGuest(), { codec: 'zlib', layout: 'qemu' });
    const records = [...kdumpHeadRecords(plan)];
    expect(records.slice(0, 3).map((r) => [r.offset, r.bytes.length])).toEqual([
      [0n, 464],
      [4096n, 104],
      [4200n, 1248],
    ]);
    const bitmaps = records.slice(3);
    expect(bitmaps.length).toBe(64);
    expect(bitmaps.slice(0, 4).map((r) => r.offset)).toEqual([8192n, 139264n, 12288n, 143360n]);
    expect(Buffer.from(bitmaps[0]!.bytes.subarray(0, 25)).toString('hex')).toBe(`${'ff'.repeat(20)}00000000ff`);
  });
});

describe('the header utsname (docs/kdump-compressed.md §2)', () => {
  it('writes the six 65-byte fields at 12, 77, 142, 207, 272 and 337, NUL-padded, longer values cut to 64 bytes', () => {
    const utsname = {
      sysname: 'Linux',
      nodename: 'n'.repeat(70),
      release: '6.1.0-41-cloud-amd64',
      version: '#1 SMP',
      machine: 'x86_64',
      domainname: '(none)',
    };
    const header = { utsname, status: 1, blockSize: 4096, subHdrSize: 1, bitmapBlocks: 2, maxMapnr: 16, nrCpus: 1 };
    const bytes = Buffer.from(encodeDiskDumpHeader(header, { elfClass: 64, endian: 'little' }));
    const field = (at: number): string => bytes.toString('latin1', at, at + 65);
    expect(field(12)).toBe(`Linux${'\0'.repeat(60)}`);
    expect(field(77)).toBe(`${'n'.repeat(64)}\0`);
    expect(field(142)).toBe(`6.1.0-41-cloud-amd64${'\0'.repeat(45)}`);
    expect(field(207)).toBe(`#1 SMP${'\0'.repeat(59)}`);
    expect(field(272)).toBe(`x86_64${'\0'.repeat(59)}`);
    expect(field(337)).toBe(`(none)${'\0'.repeat(59)}`);
    expect(bytes.subarray(402, 424).every((b) => b === 0)).toBe(true); // the timestamp after the 390 bytes
  });
});

describe('flattened framing (§7)', () => {
  it('writes the start header, big-endian record headers, and the end marker; never an empty record', async () => {
    async function* records() {
      yield { offset: fileOffset(0x1234n), bytes: new Uint8Array([1, 2, 3]) };
      yield { offset: fileOffset(9n), bytes: new Uint8Array(0) };
    }
    const chunks: Uint8Array[] = [];
    for await (const chunk of flattenRecords(records())) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    expect(bytes.length).toBe(4096 + 16 + 3 + 16);
    expect(bytes.subarray(0, 32)).toEqual(
      Buffer.from(hexBytes(`${Buffer.from('makedumpfile').toString('hex')}00000000 0000000000000001 0000000000000001`)),
    );
    expect(bytes.subarray(32, 4096).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(4096, 4115)).toEqual(Buffer.from(hexBytes('0000000000001234 0000000000000003 010203')));
    expect(bytes.subarray(4115).every((b) => b === 0xff)).toBe(true);
  });
});

/** RAM of mixed pages: zero, random (stored raw), and pattern (compressible); one range ends mid-page. */
function mixedGuest(log?: ReadLog): GuestModel {
  const random = Buffer.alloc(0x40000);
  randomFillSync(random);
  const randomRange: RamRange = {
    start: physAddr(0x200000n),
    size: BigInt(random.length),
    label: 'random',
    async read(offset, into) {
      into.set(random.subarray(Number(offset), Number(offset) + into.length));
      if (log) log.bytes += into.length;
    },
  };
  const text: RamRange = {
    start: physAddr(0x300000n),
    size: 0x180000n,
    label: 'text',
    async read(offset, into) {
      const bytes = Buffer.from(into.buffer, into.byteOffset, into.length);
      for (let at = 0; at < into.length; at += 4096)
        bytes.fill(`text page ${(offset + BigInt(at)) / 4096n} `, at, at + 4096, 'latin1');
    },
  };
  return guestOf({
    ram: [patternRange(0n, 0x9f800n, log), zeroRange(0x100000n, 0x100000n), randomRange, text],
    vcpus: [{ index: 0, state: x86State({ rip: 0x1234n }) }],
  });
}

async function flattenedBytes(guest: GuestModel, codec: KdumpCodec, threads: number, batchPages: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = writableSink(
    new Writable({
      write(chunk: Buffer, _e, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    }),
  );
  await writeKdump(planKdump(guest, { codec }), { kind: 'flattened', sink }, { threads, batchPages }).result;
  return Buffer.concat(chunks);
}

async function guestPage(guest: GuestModel, pfn: number): Promise<Buffer> {
  const page = Buffer.alloc(4096);
  for (const range of guest.ram) {
    const start = BigInt(pfn) * 4096n;
    const from = range.start > start ? range.start : start;
    const to = range.start + range.size < start + 4096n ? range.start + range.size : start + 4096n;
    if (from < to) await range.read(from - range.start, page.subarray(Number(from - start), Number(to - start)));
  }
  return page;
}

describe('writeKdump', () => {
  it.each(['zlib', 'lzo', 'snappy', 'zstd'] as const)(
    '%s: same bytes for 1 or 3 threads and any batch size; every page comes back',
    async (codec) => {
      const guest = mixedGuest();
      const one = await flattenedBytes(guest, codec, 1, 256);
      const three = await flattenedBytes(guest, codec, 3, 7);
      expect(three.equals(one)).toBe(true);
      const dump = readKdump(readFlattened(one).reassembled);
      const counts = { zero: 0, raw: 0, compressed: 0 };
      for (const [i, pfn] of dump.pfns.entries()) {
        expect(readPage(dump, i).equals(await guestPage(guest, pfn))).toBe(true);
        const d = dump.descriptors[i]!;
        if (d.flags !== 0) counts.compressed += 1;
        else if (readPage(dump, i).every((b) => b === 0)) counts.zero += 1;
        else counts.raw += 1;
      }
      expect(dump.pfns.length).toBe(0xa0 + 0x100 + 0x40 + 0x180);
      expect(counts.zero).toBe(0x100);
      expect(counts.raw).toBeGreaterThanOrEqual(0x40); // random pages never shrink (lzo cannot shrink the pattern either)
      expect(counts.compressed).toBeGreaterThanOrEqual(0x180); // text pages always do
      const randomIndex = dump.pfns.indexOf(0x200);
      expect(dump.descriptors.slice(randomIndex, randomIndex + 0x40).every((d) => d.flags === 0 && d.size === 4096)).toBe(true);
      expect(dump.bitmap1.equals(dump.bitmap2)).toBe(true);
    },
  );

  it('the plain file is the flattened stream put in place', async () => {
    const guest = mixedGuest();
    const flat = await flattenedBytes(guest, 'zstd', 2, 64);
    const file = path.join(dir, 'plain.kdump');
    const summary = await writeKdump(
      planKdump(guest, { codec: 'zstd' }),
      { kind: 'plain', sink: placedFileSink(file) },
      { threads: 2 },
    ).result;
    const plain = fs.readFileSync(file);
    expect(plain.equals(readFlattened(flat).reassembled)).toBe(true);
    expect(summary.bytesWritten).toBe(plain.length);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('stops reading while the sink does not take bytes', async () => {
    const log: ReadLog = { bytes: 0, calls: 0 };
    const big = guestOf({ ram: [patternRange(0n, 256n << 20n, log)] });
    let release: (() => void) | undefined;
    const stalled = new Writable({
      highWaterMark: 1 << 16,
      write(_chunk, _e, done) {
        release = done;
      },
    });
    const run = writeKdump(
      planKdump(big, { codec: 'lzo' }),
      { kind: 'flattened', sink: writableSink(stalled) },
      { threads: 2, batchPages: 256 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const readWhileStalled = log.bytes;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(log.bytes).toBe(readWhileStalled);
    expect(readWhileStalled).toBeLessThan(64 << 20); // of 256 MiB
    stalled.destroy(new Error('stop'));
    release?.();
    await expect(run.result).rejects.toThrow();
  });

  it("the reused zlib context gives deflateSync's bytes at level 2 (page-codecs.ts: Node's level 1 compresses worse than makedumpfile's)", () => {
    const compress = zlibPageCompressor();
    const page = Buffer.alloc(4096);
    const into = Buffer.alloc(compressedBound(4096));
    for (let i = 0; i < 20; i += 1) {
      page.write(`line ${i} of some text that repeats `.repeat(120), 'latin1');
      page[i * 100] = i;
      const length = compress(page, into);
      expect(into.subarray(0, length).equals(zlib.deflateSync(page, { level: 2 }))).toBe(true);
    }
    randomFillSync(page);
    expect(compress(page, into)).toBe(0); // not smaller: stored raw
  });
});

describe('vmdump --format kdump-*', () => {
  const machine = (): string => {
    const work = fs.mkdtempSync(path.join(dir, 'cli-'));
    return writeMachine(work, {
      arch: 'x86_64',
      ranges: [
        { address: 0n, size: 0x9f000 },
        { address: 0x100000n, size: 0x300000 },
      ],
    });
  };

  it('writes the flattened stream to a pipe and the plain file to a file: the same dump', async () => {
    const description = machine();
    const piped = await runCli(['raw', description, '--format', 'kdump-snappy', '--threads', '2']);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toMatch(/kdump-snappy, flattened, 927 pages/);
    const file = path.join(path.dirname(description), 'core.kdump');
    const plain = await runCli(['raw', description, '--format', 'kdump-snappy', '-o', file, '--progress', 'json']);
    expect(plain.code).toBe(0);
    const done = JSON.parse(plain.stderr.trim().split('\n').at(-1)!) as { event: string; flattened: boolean; pages: number };
    expect(done).toMatchObject({ event: 'done', flattened: false, pages: 927 });
    expect(fs.readFileSync(file).equals(readFlattened(piped.stdout).reassembled)).toBe(true);
  });

  it('-o FIFO gets the flattened stream (a FIFO cannot seek)', async () => {
    const description = machine();
    const fifo = path.join(path.dirname(description), 'fifo');
    run('mkfifo', [fifo]);
    const reader = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      fs.createReadStream(fifo)
        .on('data', (c) => chunks.push(c as Buffer))
        .on('end', () => resolve(Buffer.concat(chunks)));
    });
    const result = await runCli(['raw', description, '--format', 'kdump-zlib', '-o', fifo]);
    expect(result.code).toBe(0);
    expect(readKdump(readFlattened(await reader).reassembled).pfns.length).toBe(927);
  });

  it.each([
    [['--format', 'kdump-gzip'], /--format must be elf, kdump-zlib/],
    [['--format', 'kdump-zlib', '--paging'], /--paging, --begin and --length go with --format elf/],
    [['--format', 'kdump-zlib', '--begin', '0', '--length', '4096'], /--paging, --begin and --length go with --format elf/],
    [['--threads', '2'], /--threads and --flattened go with a kdump --format/],
    [['--format', 'kdump-lzo', '--threads', '0'], /--threads must be between 1 and 256/],
  ])('refuses %j with a usage error', async (args, message) => {
    const result = await runCli(['raw', machine(), ...args, '-o', path.join(dir, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
  });
});

describe('vmdump --format kdump-* on bigger guests', () => {
  /** One 64 MiB RAM file mapped `copies` times, 4 GiB apart: GiBs of non-zero guest RAM from 64 MiB of disk. */
  const repeated = (name: string, copies: number): string => {
    const folder = fs.mkdtempSync(path.join(dir, `${name}-`));
    const ram = Buffer.alloc(64 << 20);
    for (let at = 0; at < ram.length; at += 4096)
      ram.fill(`page ${at} of a file-backed guest `, at, at + 2048, 'latin1').fill(at & 0xff, at + 2048, at + 2048 + (at % 2048));
    fs.writeFileSync(path.join(folder, 'ram.img'), ram);
    const ranges = Array.from({ length: copies }, (_, i) => ({ address: i * 2 ** 32, size: ram.length, file: 'ram.img' }));
    fs.writeFileSync(path.join(folder, 'machine.json'), JSON.stringify({ arch: 'x86_64', ram: ranges }));
    return path.join(folder, 'machine.json');
  };

  it('peak memory does not grow with guest size (64 MiB vs 2 GiB of non-zero pages)', async () => {
    const peak = async (machinePath: string): Promise<number> => {
      const result = await runCli([
        'raw',
        machinePath,
        '--format',
        'kdump-lzo',
        '-o',
        path.join(path.dirname(machinePath), 'core.kdump'),
        '--progress=json',
      ]);
      expect(result.code).toBe(0);
      const done = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number; compressedPages: number };
      expect(done.compressedPages).toBeGreaterThan(0);
      return done.peakRssBytes;
    };
    const small = await peak(repeated('small', 1));
    const large = await peak(repeated('large', 32));
    expect(large - small).toBeLessThan(96 << 20);
    expect(large).toBeLessThanOrEqual(150 << 20);
  }, 120_000);

  /** One 8 GiB sparse image for the five formats below: 64 MiB of data at 3 GiB, the rest zero (holes). */
  let eightGiB: string | undefined;
  const eightGiBGuest = (): string => {
    if (eightGiB !== undefined) return eightGiB;
    const folder = fs.mkdtempSync(path.join(dir, 'eight-'));
    const fd = fs.openSync(path.join(folder, 'ram.img'), 'w');
    const data = Buffer.alloc(64 << 20);
    for (let at = 0; at < data.length; at += 4096) data.fill(`page ${at} `, at, at + 4096, 'latin1');
    fs.writeSync(fd, data, 0, data.length, 3 * 2 ** 30);
    fs.ftruncateSync(fd, 8 * 2 ** 30);
    fs.closeSync(fd);
    const ram = [{ address: 0, size: 8 * 2 ** 30, file: 'ram.img' }];
    fs.writeFileSync(path.join(folder, 'machine.json'), JSON.stringify({ arch: 'x86_64', ram }));
    return (eightGiB = path.join(folder, 'machine.json'));
  };

  it.each(['elf', 'kdump-zlib', 'kdump-lzo', 'kdump-snappy', 'kdump-zstd'])(
    '%s: an 8 GiB guest (64 MiB of data, the rest zero) dumps in at most 150 MiB of peak memory',
    async (format) => {
      const machinePath = eightGiBGuest();
      const out = path.join(path.dirname(machinePath), `core.${format}`);
      const args = ['raw', machinePath, '--vmcoreinfo', 'none', '--format', format, '-o', out, '--progress=json'];
      const result = await runCli(args);
      expect(result.code).toBe(0);
      const done = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number };
      expect(done.peakRssBytes).toBeLessThanOrEqual(150 << 20);
      fs.rmSync(out);
    },
    120_000,
  );

  it('SIGINT mid-dump: exit 130, no file and no temporary file', async () => {
    const machinePath = repeated('sigint', 32);
    const out = path.join(path.dirname(machinePath), 'core.kdump');
    const { child, exited } = await spawnCliUntil(['raw', machinePath, '--format', 'kdump-zlib', '-o', out]);
    child.kill('SIGINT');
    const { code, stderr } = await exited;
    expect(code).toBe(130);
    expect(stderr).toMatch(/vmdump: error: dump cancelled: interrupted by SIGINT/);
    expect(fs.readdirSync(path.dirname(machinePath)).sort()).toEqual(['machine.json', 'ram.img']);
  }, 60_000);

  it('a full disk: exit 4, one line naming ENOSPC, nothing left behind', async () => {
    const machinePath = repeated('full', 4);
    const result = await runCli(['raw', machinePath, '--format', 'kdump-snappy', '-o', '/dev/full']);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^vmdump: error: no space left on the output device \(ENOSPC\)/m);
  });
});
