/**
 * A minimal ELF core reader written for the tests from the gABI, sharing nothing with
 * src/transforms: if the encoder and this disagree, one of them is wrong.
 */
import * as fs from 'node:fs';

export interface ReadElf {
  elfClass: 32 | 64;
  little: boolean;
  type: number;
  machine: number;
  phoff: bigint;
  shoff: bigint;
  ehsize: number;
  phnumField: number;
  shnum: number;
  shstrndx: number;
  phdrs: { type: number; flags: number; offset: bigint; vaddr: bigint; paddr: bigint; filesz: bigint; memsz: bigint }[];
  notes: { name: string; type: number; desc: Buffer; at: number }[];
}

/** Reads only what it parses (headers, section 0, notes), so multi-GiB cores are fine. */
export function readElfFile(path: string): ReadElf {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    return parseElfAt((offset, length) => {
      const bytes = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      fs.readSync(fd, bytes, 0, bytes.length, offset);
      return bytes;
    });
  } finally {
    fs.closeSync(fd);
  }
}

export function parseElf(b: Buffer): ReadElf {
  return parseElfAt((offset, length) => b.subarray(offset, offset + length));
}

function parseElfAt(read: (offset: number, length: number) => Buffer): ReadElf {
  const head = read(0, 64);
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error('not ELF');
  const is64 = head[4] === 2;
  const little = head[5] === 1;
  const at16 = (b: Buffer, at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const at32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const at64 = (b: Buffer, at: number) => (is64 ? (little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : BigInt(at32(b, at)));
  const w = is64 ? 8 : 4;
  const phoffH = at64(head, 24 + w);
  const shoffH = at64(head, 24 + 2 * w);
  const phnumH = at16(head, 24 + 3 * w + 4 + 4);
  const phnumReal = phnumH === 0xffff ? at32(read(Number(shoffH), 64), is64 ? 44 : 28) : phnumH;
  const phEnd = Number(phoffH) + phnumReal * (is64 ? 56 : 32);
  const headers = read(0, phEnd);
  const noteProbe = parseHeaders(headers, is64, little, phnumReal);
  const noteSeg = noteProbe.phdrs.find((p) => p.type === 4);
  const noteBytes = noteSeg === undefined ? Buffer.alloc(0) : read(Number(noteSeg.offset), Number(noteSeg.filesz));
  return { ...noteProbe, notes: parseNotes(noteBytes, little) };
}

function parseNotes(b: Buffer, little: boolean): ReadElf['notes'] {
  const u32 = (at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const notes: ReadElf['notes'] = [];
  for (let at = 0; at < b.length;) {
    const namesz = u32(at);
    const descsz = u32(at + 4);
    const type = u32(at + 8);
    const name = b.subarray(at + 12, at + 12 + namesz - 1).toString('latin1');
    const descAt = at + 12 + Math.ceil(namesz / 4) * 4;
    notes.push({ name, type, desc: b.subarray(descAt, descAt + descsz), at });
    at = descAt + Math.ceil(descsz / 4) * 4;
  }
  return notes;
}

/** ELF header fields and the program header table from a buffer that starts at offset 0. */
function parseHeaders(b: Buffer, is64: boolean, little: boolean, phnum: number): ReadElf {
  const u16 = (at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const u64 = (at: number) => (little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
  const word = (at: number) => (is64 ? u64(at) : BigInt(u32(at)));
  const w = is64 ? 8 : 4;
  const phoff = word(24 + w);
  const shoff = word(24 + 2 * w);
  const after = 24 + 3 * w + 4; // e_flags
  const header = {
    type: u16(16),
    machine: u16(18),
    phoff,
    shoff,
    ehsize: u16(after),
    phnumField: u16(after + 4),
    shnum: u16(after + 8),
    shstrndx: u16(after + 10),
  };
  const phdrs = [];
  for (let i = 0; i < phnum; i += 1) {
    const at = Number(phoff) + i * (is64 ? 56 : 32);
    phdrs.push(
      is64
        ? {
            type: u32(at),
            flags: u32(at + 4),
            offset: u64(at + 8),
            vaddr: u64(at + 16),
            paddr: u64(at + 24),
            filesz: u64(at + 32),
            memsz: u64(at + 40),
          }
        : {
            type: u32(at),
            offset: BigInt(u32(at + 4)),
            vaddr: BigInt(u32(at + 8)),
            paddr: BigInt(u32(at + 12)),
            filesz: BigInt(u32(at + 16)),
            memsz: BigInt(u32(at + 20)),
            flags: u32(at + 24),
          },
    );
  }
  return { elfClass: is64 ? 64 : 32, little, ...header, phdrs, notes: [] };
}

/**
 * The PT_LOADs of vmdump's filtered ELF, each against makedumpfile's in order (it has the VRAM and
 * ROM segments after them), and whether the segments' bytes are the same (compared in 1 MiB reads).
 */
export function elfAgainstMakedumpfile(ours: string, theirs: string): { headers: string[][]; bytesEqual: boolean } {
  const loads = (file: string) => readElfFile(file).phdrs.filter((p) => p.type === 1);
  const a = loads(ours);
  const b = loads(theirs).slice(0, a.length);
  const text = (p: (typeof a)[number]): string =>
    `${p.vaddr.toString(16)} ${p.paddr.toString(16)} ${p.filesz.toString(16)} ${p.memsz.toString(16)} ${p.filesz === 0n ? p.offset : '-'}`;
  const headers = a.map((p, i) => [text(p), text(b[i]!)]).filter(([x, y]) => x !== y);
  const span = (loadsOf: typeof a): [number, number] => {
    const withBytes = loadsOf.filter((p) => p.filesz > 0n);
    return [Number(withBytes[0]!.offset), Number(withBytes.at(-1)!.offset + withBytes.at(-1)!.filesz)];
  };
  const [[fromA, toA], [fromB, toB]] = [span(a), span(b)];
  let bytesEqual = toA - fromA === toB - fromB;
  const [fa, fb] = [fs.openSync(ours, 'r'), fs.openSync(theirs, 'r')];
  const [ba, bb] = [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)];
  for (let at = 0; bytesEqual && at < toA - fromA; at += ba.length) {
    const length = Math.min(ba.length, toA - fromA - at);
    fs.readSync(fa, ba, 0, length, fromA + at);
    fs.readSync(fb, bb, 0, length, fromB + at);
    bytesEqual = ba.subarray(0, length).equals(bb.subarray(0, length));
  }
  fs.closeSync(fa);
  fs.closeSync(fb);
  return { headers, bytesEqual };
}
