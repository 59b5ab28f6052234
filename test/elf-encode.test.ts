import { describe, expect, it } from 'vitest';
import { EM_386, EM_PPC, EM_S390, ET_CORE, PT_LOAD, SHT_STRTAB } from '../src/formats/elf/elf-constants.js';
import { encodeElfHeader, encodeNotes, encodeProgramHeaders, encodeSectionHeaders } from '../src/formats/elf/elf-encode.js';
import { NOT_IN_FILE, type ElfHeader, type ProgramHeader, type SectionHeader } from '../src/formats/elf/elf-structs.js';
import { hexBytes, toHex } from './helpers/bytes.js';

const le64 = { elfClass: 64, endian: 'little', machine: EM_386 } as const;
const be64 = { elfClass: 64, endian: 'big', machine: EM_S390 } as const;
const le32 = { elfClass: 32, endian: 'little', machine: EM_386 } as const;
const be32 = { elfClass: 32, endian: 'big', machine: EM_PPC } as const;

describe('ELF header', () => {
  it('matches the real QEMU 7.2 header of docs/elf-vmcore.md §8 byte for byte (ELF64 LE, EM_386)', () => {
    const header: ElfHeader = {
      type: ET_CORE,
      machine: EM_386,
      version: 1,
      entry: 0n,
      phoff: 0xc0n,
      shoff: 0x40n,
      flags: 0,
      ehsize: 8,
      phentsize: 56,
      phnum: 5,
      shentsize: 64,
      shnum: 2,
      shstrndx: 1,
    };
    expect(toHex(encodeElfHeader(header, le64))).toBe(
      toHex(
        hexBytes(`
      7f 45 4c 46 02 01 01 00 00 00 00 00 00 00 00 00
      04 00 03 00 01 00 00 00 00 00 00 00 00 00 00 00
      c0 00 00 00 00 00 00 00 40 00 00 00 00 00 00 00
      00 00 00 00 08 00 38 00 05 00 40 00 02 00 01 00`),
      ),
    );
  });

  it('matches the real QEMU 7.2 ELF32 header of docs/elf-vmcore.md §8', () => {
    const header: ElfHeader = {
      type: ET_CORE,
      machine: EM_386,
      version: 1,
      entry: 0n,
      phoff: 0x84n,
      shoff: 0x34n,
      flags: 0,
      ehsize: 8,
      phentsize: 32,
      phnum: 5,
      shentsize: 40,
      shnum: 2,
      shstrndx: 1,
    };
    expect(toHex(encodeElfHeader(header, le32))).toBe(
      toHex(
        hexBytes(`
      7f 45 4c 46 01 01 01 00 00 00 00 00 00 00 00 00
      04 00 03 00 01 00 00 00 | 00 00 00 00 | 84 00 00 00 | 34 00 00 00 | 00 00 00 00
      08 00 | 20 00 | 05 00 | 28 00 | 02 00 | 01 00`),
      ),
    );
  });

  it('writes big-endian ELF32 and ELF64 headers (hand-assembled from the gABI)', () => {
    const base = { type: ET_CORE, version: 1, entry: 0n, shoff: 0n, flags: 0, shentsize: 0, shnum: 0, shstrndx: 0 };
    expect(toHex(encodeElfHeader({ ...base, machine: EM_PPC, phoff: 0x34n, ehsize: 52, phentsize: 32, phnum: 3 }, be32))).toBe(
      toHex(
        hexBytes(`
        7f 45 4c 46 01 02 01 00 00 00 00 00 00 00 00 00
        00 04 | 00 14 | 00 00 00 01 | 00 00 00 00 | 00 00 00 34 | 00 00 00 00 | 00 00 00 00
        00 34 | 00 20 | 00 03 | 00 00 | 00 00 | 00 00`),
      ),
    );
    expect(
      toHex(encodeElfHeader({ ...base, machine: EM_S390, phoff: 0x40n, ehsize: 64, phentsize: 56, phnum: 0xffff }, be64)),
    ).toBe(
      toHex(
        hexBytes(`
        7f 45 4c 46 02 02 01 00 00 00 00 00 00 00 00 00
        00 04 | 00 16 | 00 00 00 01 | 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 40 | 00 00 00 00 00 00 00 00
        00 00 00 00 | 00 40 | 00 38 | ff ff | 00 00 | 00 00 | 00 00`),
      ),
    );
  });
});

describe('program headers', () => {
  const load: ProgramHeader = {
    type: PT_LOAD,
    flags: 0,
    offset: 0x6b8n,
    vaddr: 0xc0000n,
    paddr: 0xc0000n,
    filesz: 0x3f40000n,
    memsz: 0x3f40000n,
    align: 0n,
  };

  it('ELF64 puts p_flags second; both byte orders', () => {
    expect(toHex(encodeProgramHeaders([load], le64))).toBe(
      toHex(
        hexBytes(`
      01 00 00 00 | 00 00 00 00 | b8 06 00 00 00 00 00 00 | 00 00 0c 00 00 00 00 00 | 00 00 0c 00 00 00 00 00
      00 00 f4 03 00 00 00 00 | 00 00 f4 03 00 00 00 00 | 00 00 00 00 00 00 00 00`),
      ),
    );
    expect(toHex(encodeProgramHeaders([load], be64))).toBe(
      toHex(
        hexBytes(`
      00 00 00 01 | 00 00 00 00 | 00 00 00 00 00 00 06 b8 | 00 00 00 00 00 0c 00 00 | 00 00 00 00 00 0c 00 00
      00 00 00 00 03 f4 00 00 | 00 00 00 00 03 f4 00 00 | 00 00 00 00 00 00 00 00`),
      ),
    );
  });

  it('ELF32 keeps p_flags after p_memsz; both byte orders', () => {
    const withFlags = { ...load, flags: 7 };
    expect(toHex(encodeProgramHeaders([withFlags], le32))).toBe(
      toHex(
        hexBytes('01 00 00 00 | b8 06 00 00 | 00 00 0c 00 | 00 00 0c 00 | 00 00 f4 03 | 00 00 f4 03 | 07 00 00 00 | 00 00 00 00'),
      ),
    );
    expect(toHex(encodeProgramHeaders([withFlags], be32))).toBe(
      toHex(
        hexBytes('00 00 00 01 | 00 00 06 b8 | 00 0c 00 00 | 00 0c 00 00 | 03 f4 00 00 | 03 f4 00 00 | 00 00 00 07 | 00 00 00 00'),
      ),
    );
  });

  it('writes "not in file" as all ones in either class (docs/elf-vmcore.md §4)', () => {
    const absent = { ...load, offset: NOT_IN_FILE, filesz: 0n };
    expect(toHex(encodeProgramHeaders([absent], le64).subarray(8, 16))).toBe('ff ff ff ff ff ff ff ff');
    expect(toHex(encodeProgramHeaders([absent], le32).subarray(4, 8))).toBe('ff ff ff ff');
  });

  it('refuses a value that does not fit an ELF32 word instead of truncating it', () => {
    expect(() => encodeProgramHeaders([{ ...load, paddr: 0x1_0000_0000n }], le32)).toThrow(
      /paddr = 0x100000000 does not fit in 4 bytes/,
    );
  });
});

describe('section headers', () => {
  const strtab: SectionHeader = {
    name: 1,
    type: SHT_STRTAB,
    flags: 0n,
    addr: 0n,
    offset: 0x50206b8n,
    size: 11n,
    link: 0,
    info: 0,
    addralign: 0n,
    entsize: 0n,
  };
  it('matches the .shstrtab header of docs/elf-vmcore.md §8 (ELF64 LE) and its ELF32/BE forms', () => {
    expect(toHex(encodeSectionHeaders([strtab], le64))).toBe(
      toHex(
        hexBytes(`
      01 00 00 00 03 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00
      b8 06 02 05 00 00 00 00 | 0b 00 00 00 00 00 00 00 | 00 00 00 00 | 00 00 00 00
      00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00`),
      ),
    );
    expect(toHex(encodeSectionHeaders([{ ...strtab, info: 66049 }], be32))).toBe(
      toHex(
        hexBytes(`
      00 00 00 01 | 00 00 00 03 | 00 00 00 00 | 00 00 00 00 | 05 02 06 b8 | 00 00 00 0b | 00 00 00 00 | 00 01 02 01
      00 00 00 00 | 00 00 00 00`),
      ),
    );
  });
});

describe('notes', () => {
  const note = { name: 'CORE', type: 1, desc: Uint8Array.of(1, 2, 3, 4, 5) };
  it('pads name and desc to 4 bytes with a 12-byte header in both classes (docs/elf-vmcore.md §7.2)', () => {
    expect(toHex(encodeNotes([note], le64))).toBe(
      toHex(hexBytes('05 00 00 00 | 05 00 00 00 | 01 00 00 00 | 43 4f 52 45 00 00 00 00 | 01 02 03 04 05 00 00 00')),
    );
    expect(toHex(encodeNotes([note], be32))).toBe(
      toHex(hexBytes('00 00 00 05 | 00 00 00 05 | 00 00 00 01 | 43 4f 52 45 00 00 00 00 | 01 02 03 04 05 00 00 00')),
    );
  });
  it('VMCOREINFO has an 11-byte name padded to 12', () => {
    const bytes = encodeNotes([{ name: 'VMCOREINFO', type: 0, desc: new TextEncoder().encode('A=1\n') }], le64);
    expect(toHex(bytes)).toBe(
      toHex(hexBytes('0b 00 00 00 | 04 00 00 00 | 00 00 00 00 | 56 4d 43 4f 52 45 49 4e 46 4f 00 00 | 41 3d 31 0a')),
    );
  });
});
