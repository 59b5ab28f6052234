/**
 * What the aarch64 and s390x machines add to a migration stream (docs/other-arches.md §5, §8.3), on
 * small streams assembled here from the record grammar (docs/qemu-migration-stream.md §3-5): the page
 * size comes from the stream, a non-RAM iterative section (s390-storage_attributes) may sit
 * between two RAM chunks of the same 2 MiB group and a re-read steps over it, and a section whose
 * compressed array began with a null pointer is stepped over to its footer. Real QEMU streams of
 * both machines are in other-arches.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ByteReader } from '../src/formats/migration/byte-reader.js';
import { readBlock } from '../src/formats/migration/block-reader.js';
import { parseMigrationStream } from '../src/formats/migration/migration-stream.js';
import { locateVmdesc } from '../src/formats/migration/vmdesc.js';
import { tempDir } from './helpers/machines.js';

const dir = tempDir('vmdump-grammar-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const be64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const str8 = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
const footer = (id: number): Buffer => Buffer.concat([Buffer.from([0x7e]), be32(id)]);
const sectionStart = (type: number, id: number, name: string, version = 1): Buffer =>
  Buffer.concat([Buffer.from([type]), be32(id), str8(name), be32(0), be32(version)]);
const sectionPart = (type: number, id: number): Buffer => Buffer.concat([Buffer.from([type]), be32(id)]);

/** RAM flags (§5): PAGE 0x08, EOS 0x10, CONTINUE 0x20, MEM_SIZE 0x04. */
function pageRecord(address: bigint, block: string, first: boolean, pageSize: number): Buffer {
  const payload = Buffer.alloc(pageSize, Number((address / BigInt(pageSize)) & 0xffn) + 1);
  return Buffer.concat([be64(address | (first ? 0x08n : 0x28n)), ...(first ? [str8(block)] : []), payload]);
}

interface Built {
  file: string;
  pageSize: number;
  pages: number;
}

/**
 * RAM block "s390.ram" of `pages` pages; its records are split in two RAM chunks with a storage-
 * attributes PART between them (inside one 512-page group), then a device section with a null-
 * pointer-compressed array holding one real element, then the vmdesc trailer.
 */
function buildStream(pageSize: number, pages: number, options: { pageBits?: number; splitNulls?: boolean } = {}): Built {
  const length = BigInt(pageSize * pages);
  const half = Math.floor(pages / 2);
  const records = (from: number, to: number, firstRecord: boolean): Buffer[] =>
    Array.from({ length: to - from }, (_, i) =>
      pageRecord(BigInt((from + i) * pageSize), 's390.ram', firstRecord && i === 0, pageSize),
    );
  const eos = be64(0x10n);
  const css = {
    name: 's390_css',
    instance_id: 0,
    vmsd_name: 's390_css',
    version: 1,
    fields: [
      { name: 'max_cssid', type: 'uint8', size: 1 },
      ...(options.splitNulls === true
        ? [
            // QEMU 9.1.3 and later: the array in runs of one kind each, every run sized.
            { name: 'css', array_len: 2, type: 'nullptr', size: 1 },
            {
              name: 'css',
              type: 'struct',
              size: 10,
              struct: { vmsd_name: 'css', version: 1, fields: [{ name: 'image', type: 'buffer', size: 10 }] },
            },
            { name: 'css', type: 'nullptr', size: 1 },
          ]
        : [{ name: 'css', array_len: 4, type: 'struct', struct: {}, size: 1 }]),
      { name: 'default_cssid', type: 'uint8', size: 1 },
    ],
  };
  const vmdesc = Buffer.from(JSON.stringify({ page_size: pageSize, devices: [css] }));
  // The third css element is a real struct (10 bytes the trailer does not describe): 0x30 marks null pointers.
  const cssBody = Buffer.concat([Buffer.from([0xfe, 0x30, 0x30]), Buffer.from('0123456789'), Buffer.from([0x30, 0xfe])]);
  const stream = Buffer.concat([
    be32(0x5145564d),
    be32(3),
    Buffer.from([0x07]),
    be32(10),
    Buffer.from('virt-7.2xx'),
    ...(options.pageBits === undefined
      ? []
      : [Buffer.from([0x05]), str8('configuration/target-page-bits'), be32(1), be32(options.pageBits)]),
    sectionStart(0x01, 1, 'ram', 4),
    be64(length | 0x04n),
    str8('s390.ram'),
    be64(length),
    eos,
    footer(1),
    sectionStart(0x01, 2, 's390-storage_attributes', 0),
    be64(0x1n),
    footer(2),
    sectionPart(0x02, 1),
    ...records(0, half, true),
    eos,
    footer(1),
    // MORE: 3 bytes of attributes, then EOS.
    sectionPart(0x02, 2),
    be64(0x2n),
    be64(3n),
    Buffer.from([1, 2, 3]),
    be64(0x1n),
    footer(2),
    sectionPart(0x03, 1),
    ...records(half, pages, false),
    eos,
    footer(1),
    sectionPart(0x03, 2),
    be64(0x8n),
    be64(0x1n),
    footer(2),
    sectionStart(0x04, 3, 's390_css'),
    cssBody,
    footer(3),
    Buffer.from([0x00]),
    Buffer.from([0x06]),
    be32(vmdesc.length),
    vmdesc,
  ]);
  const file = path.join(dir, `stream-${pageSize}-${pages}-${options.pageBits ?? 'none'}-${options.splitNulls === true}.state`);
  fs.writeFileSync(file, stream);
  return { file, pageSize, pages };
}

async function parse(file: string) {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  try {
    return { fd, size, stream: await parseMigrationStream(new ByteReader(fd, size, file), () => locateVmdesc(fd, size, file)) };
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
}

describe('migration stream grammar of the aarch64 and s390x machines', () => {
  it.each([4096, 65536])(
    'page size %i from the trailer; a re-read steps over the storage attributes between RAM chunks',
    async (pageSize) => {
      const built = buildStream(pageSize, 8, { pageBits: Math.log2(pageSize) });
      const { fd, size, stream } = await parse(built.file);
      try {
        const block = stream.blocks[0]!;
        expect([block.id, block.pageSize, block.usedLength]).toEqual(['s390.ram', pageSize, BigInt(pageSize * 8)]);
        // Pass 1 indexed the three storage-attributes chunks as steps to take.
        expect(block.foreignChunks.size).toBe(3);
        const whole = Buffer.alloc(pageSize * 8);
        await readBlock({ fd, size, label: built.file }, block, 0n, whole);
        for (let page = 0; page < 8; page += 1) {
          expect(whole.subarray(page * pageSize, (page + 1) * pageSize).every((b) => b === page + 1)).toBe(true);
        }
        // The device whose array the trailer cannot size: decoded up to it, then stepped over to its footer.
        const css = stream.devices.find((d) => d.name === 's390_css')!;
        expect([css.complete, css.uint('max_cssid')]).toEqual([false, 0xfen]);
      } finally {
        fs.closeSync(fd);
      }
    },
  );

  it('reads an array of pointers that QEMU 9.1.3+ describes in runs (nulls, a struct, a null) as one sized field', async () => {
    const built = buildStream(4096, 4, { splitNulls: true });
    const { fd, stream } = await parse(built.file);
    fs.closeSync(fd);
    const css = stream.devices.find((d) => d.name === 's390_css')!;
    expect(css.complete).toBe(true);
    // Two null markers (0x30), the struct's 10 bytes, one null marker.
    expect(css.raw('css').toString('latin1')).toBe('\x30\x30' + '0123456789' + '\x30');
    expect([css.uint('max_cssid'), css.uint('default_cssid'), css.has('css.image')]).toEqual([0xfen, 0xfen, false]);
  });

  it('pass 1 notes the pages whose sent bytes begin like VMCOREINFO (text, or a note in either byte order)', async () => {
    const built = buildStream(4096, 8);
    const bytes = fs.readFileSync(built.file);
    // Page payloads follow their 8-byte headers (and the block id on the first): plant heads in pages 1, 3 and 6.
    const payloadOf = (page: number): number => bytes.indexOf(Buffer.alloc(64, page + 1));
    bytes.write('OSRELEASE=6.1.0', payloadOf(1), 'latin1');
    const note = (writeU32: (value: number, at: number) => void, at: number): void => {
      writeU32(11, at);
      writeU32(0x100, at + 4);
      writeU32(0, at + 8);
      bytes.write('VMCOREINFO\0', at + 12, 'latin1');
    };
    note((v, o) => bytes.writeUInt32LE(v, o), payloadOf(3));
    note((v, o) => bytes.writeUInt32BE(v, o), payloadOf(6));
    bytes.write('OSRELEASE', payloadOf(7), 'latin1'); // no '=': not a copy
    fs.writeFileSync(built.file, bytes);
    const { fd, stream } = await parse(built.file);
    fs.closeSync(fd);
    expect(stream.blocks[0]!.vmcoreinfoPages).toEqual({ pages: [1, 3, 6], complete: true });
  });

  it("refuses target-page-bits that disagree with the trailer's page size", async () => {
    const built = buildStream(4096, 4, { pageBits: 16 });
    await expect(parse(built.file)).rejects.toThrow(/target page bits 16 disagree with the vmdesc page size 4096/);
  });

  it('refuses a storage-attributes record that runs past the end, naming the byte', async () => {
    const built = buildStream(4096, 4);
    const bytes = fs.readFileSync(built.file);
    const more = bytes.indexOf(Buffer.concat([be64(0x2n), be64(3n)]));
    bytes.writeBigUInt64BE(1n << 40n, more + 8);
    fs.writeFileSync(built.file, bytes);
    await expect(parse(built.file)).rejects.toThrow(
      new RegExp(`storage-attributes record of ${1n << 40n} bytes runs past the end.*at byte 0x${more.toString(16)}`),
    );
  });
});
