/**
 * aarch64 and s390x notes in both byte orders, against offsets worked out by hand from
 * docs/other-arches.md §4.2–§4.3 and Linux's structs (elf_prstatus, user_fpsimd_state,
 * user_sve_header, s390 user_regs): every register a distinct value, so a misplaced, truncated
 * or byte-swapped field shows. The real-QEMU byte-identity is in other-arches.test.ts, the round
 * trip through QEMU's own notes in targets.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { architectureNamed } from '../src/targets/index.js';
import type { Aarch64CpuState, Architecture, Endian, S390CpuState } from '../src/guest/guest.js';
import { encodeNotes, encodeSectionHeaders } from '../src/formats/elf/elf-encode.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import { buildNotes } from '../src/transforms/plan/notes.js';
import { planKdump } from '../src/transforms/plan/kdump-plan.js';
import { guestOf, patternRange } from './helpers/guests.js';

const value = (i: number): bigint => 0x8000_0000_0000_0000n + BigInt(i) * 0x0101_0101n + BigInt(i);
const range = (n: number, from: number): bigint[] => Array.from({ length: n }, (_, i) => value(from + i));

const aarch64State: Aarch64CpuState = {
  kind: 'aarch64',
  x: range(31, 0),
  sp: value(31),
  pc: value(32),
  pstate: 0x3c5n,
  v: Array.from({ length: 32 }, (_, k) => [value(100 + 2 * k), value(101 + 2 * k)] as const),
  fpsr: 0x0800_0010,
  fpcr: 0x0300_0000,
  sctlrEl1: 0x30d0_0980n,
  sve: {
    vq: 4,
    maxVq: 16,
    z: Array.from({ length: 32 }, (_, k) => range(16, 200 + 16 * k)),
    p: Array.from({ length: 17 }, (_, k) => range(4, 800 + 4 * k)),
  },
};

const s390State: S390CpuState = {
  kind: 's390x',
  pswMask: value(1),
  pswAddr: value(2),
  gprs: range(16, 10),
  acrs: Array.from({ length: 16 }, (_, i) => 0xa000_0000 + i),
  fpc: 0x0008_0000,
  v: Array.from({ length: 32 }, (_, k) => [value(100 + 2 * k), value(101 + 2 * k)] as const),
  prefix: 0x1f_e000,
  crs: range(16, 60),
  cpuTimer: value(80),
  clockComparator: value(81),
  todProgrammable: 0x1234,
};

const arch = (base: Architecture, endian: Endian): Architecture => ({ ...base, endian });
const reader = (desc: Uint8Array, endian: Endian) => {
  const view = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const little = endian === 'little';
  return {
    u16: (at: number) => view.getUint16(at, little),
    u32: (at: number) => view.getUint32(at, little),
    u64: (at: number) => view.getBigUint64(at, little),
  };
};

describe.each(['little', 'big'] as const)('aarch64 notes, %s-endian (docs/other-arches.md §4.2)', (endian) => {
  const notes = buildNotes({ arch: arch(architectureNamed('aarch64')!, endian), vcpus: [{ index: 1, state: aarch64State }] });

  it('per vCPU: NT_PRSTATUS 392, NT_PRFPREG 528, NT_ARM_SVE 2224 (vl 64)', () => {
    expect(notes.map((n) => [n.name, n.type, n.desc.length])).toEqual([
      ['CORE', 1, 392],
      ['CORE', 2, 528],
      ['LINUX', 0x405, 2224],
    ]);
  });

  it('NT_PRSTATUS: pr_pid 32, x0..x30 from 112, sp 360, pc 368, pstate 376, pr_fpvalid 384', () => {
    const r = reader(notes[0]!.desc, endian);
    expect(r.u32(32)).toBe(2);
    expect(Array.from({ length: 31 }, (_, i) => r.u64(112 + 8 * i))).toEqual(aarch64State.x);
    expect([r.u64(360), r.u64(368), r.u64(376), r.u32(384)]).toEqual([value(31), value(32), 0x3c5n, 1]);
  });

  it('NT_PRFPREG: v0..v31 low lane then high lane, fpsr 512, fpcr 516', () => {
    const r = reader(notes[1]!.desc, endian);
    expect([r.u64(0), r.u64(8), r.u64(16 * 31), r.u64(16 * 31 + 8)]).toEqual([value(100), value(101), value(162), value(163)]);
    expect([r.u32(512), r.u32(516), r.u64(520)]).toEqual([0x0800_0010, 0x0300_0000, 0n]);
  });

  it('NT_ARM_SVE: header, Z from 16 (64 bytes each), P from 2064 (8 each), FFR 2192, fpsr 2208, fpcr 2212', () => {
    const desc = notes[2]!.desc;
    const r = reader(desc, endian);
    expect([r.u32(0), r.u32(4), r.u16(8), r.u16(10), r.u16(12), r.u16(14)]).toEqual([2224, 8768, 64, 256, 1, 0]);
    // Z k holds its first vl/8 = 8 lanes; lanes 8.. are beyond the current vector length.
    expect(Array.from({ length: 8 }, (_, i) => r.u64(16 + 64 + 8 * i))).toEqual(range(8, 216));
    expect([r.u64(2064), r.u64(2064 + 8 * 15), r.u64(2192)]).toEqual([value(800), value(860), value(864)]);
    expect([r.u32(2200), r.u32(2204), r.u32(2208), r.u32(2212), r.u64(2216)]).toEqual([0, 0, 0x0800_0010, 0x0300_0000, 0n]);
  });

  it('leaves NT_ARM_SVE out when the CPU has no SVE', () => {
    const { sve: _sve, ...noSve } = aarch64State;
    const plain = buildNotes({ arch: arch(architectureNamed('aarch64')!, endian), vcpus: [{ index: 0, state: noSve }] });
    expect(plain.map((n) => n.type)).toEqual([1, 2]);
  });
});

describe.each(['big', 'little'] as const)('s390x notes, %s-endian (docs/other-arches.md §4.3)', (endian) => {
  const s390 = arch(architectureNamed('s390x')!, endian);
  const notes = buildNotes({
    arch: s390,
    vcpus: [
      { index: 0, state: s390State },
      { index: 1, state: s390State },
    ],
  });
  const qemuNotes = buildNotes({ arch: s390, vcpus: [{ index: 1, state: s390State }] }, 'qemu');

  it("ten notes per vCPU in QEMU's order, names and sizes", () => {
    expect(notes.slice(0, 10).map((n) => [n.name, n.type, n.desc.length])).toEqual([
      ['CORE', 1, 336],
      ['CORE', 2, 136],
      ['LINUX', 0x305, 4],
      ['LINUX', 0x304, 128],
      ['LINUX', 0x301, 8],
      ['LINUX', 0x302, 8],
      ['LINUX', 0x303, 4],
      ['LINUX', 0x309, 128],
      ['LINUX', 0x30a, 256],
      ['LINUX', 0x30b, 32],
    ]);
    expect(notes.length).toBe(20);
  });

  it('NT_PRSTATUS: pr_pid 32, psw 112, gprs 128, acrs 256 (u32), 16 zero bytes to 336', () => {
    const r = reader(notes[10]!.desc, endian);
    expect([r.u32(32), r.u64(112), r.u64(120)]).toEqual([2, value(1), value(2)]);
    expect(Array.from({ length: 16 }, (_, i) => r.u64(128 + 8 * i))).toEqual(s390State.gprs);
    expect(Array.from({ length: 16 }, (_, i) => r.u32(256 + 4 * i))).toEqual(s390State.acrs);
    expect([r.u64(320), r.u64(328)]).toEqual([0n, 0n]);
  });

  it("--layout qemu writes pr_pid little-endian whatever the dump's order (QEMU bug 2)", () => {
    expect(new DataView(qemuNotes[0]!.desc.buffer).getUint32(32, true)).toBe(2);
  });

  it('FPREGSET, PREFIX, CTRS, TIMER, TODCMP, TODPREG, VXRS_LOW/HIGH, GS_CB contents', () => {
    const at = (i: number) => reader(notes[i]!.desc, endian);
    expect([at(1).u32(0), at(1).u32(4), at(1).u64(8), at(1).u64(8 + 8 * 15)]).toEqual([0x0008_0000, 0, value(100), value(130)]);
    expect([at(2).u32(0), at(3).u64(0), at(3).u64(120), at(4).u64(0), at(5).u64(0), at(6).u32(0)]).toEqual([
      0x1f_e000,
      value(60),
      value(75),
      value(80),
      value(81),
      0x1234,
    ]);
    // VXRS_LOW: the low halves of v0..v15; VXRS_HIGH: v16..v31, high half first.
    expect([at(7).u64(0), at(7).u64(120), at(8).u64(0), at(8).u64(8), at(8).u64(248)]).toEqual([
      value(101),
      value(131),
      value(132),
      value(133),
      value(163),
    ]);
    expect(Array.from(notes[9]!.desc)).toEqual(new Array(32).fill(0));
  });

  it('the VMCOREINFO note goes into the portable layout only: QEMU writes none for s390x', () => {
    const vmcoreinfo = { name: 'VMCOREINFO', type: 0, desc: new Uint8Array(4) };
    const guest = { arch: s390, vcpus: [{ index: 0, state: s390State }], vmcoreinfo };
    expect(buildNotes(guest).at(-1)?.name).toBe('VMCOREINFO');
    expect(buildNotes(guest, 'qemu').at(-1)?.name).toBe('LINUX');
  });
});

describe('note headers in both byte orders (docs/elf-vmcore.md §7.2)', () => {
  it.each([
    ['big', '00000005 00000003 00000001'],
    ['little', '05000000 03000000 01000000'],
  ] as const)('%s-endian: n_namesz, n_descsz, n_type, then name and desc padded to 4', (endian, header) => {
    const bytes = encodeNotes([{ name: 'CORE', type: 1, desc: new Uint8Array([0xaa, 0xbb, 0xcc]) }], {
      elfClass: 64,
      endian,
      machine: 22,
    });
    expect(Buffer.from(bytes).toString('hex')).toBe(`${header.replace(/ /g, '')}434f524500000000aabbcc00`);
  });
});

describe('s390x layouts (docs/other-arches.md §4.3 bug 1, §4.1)', () => {
  const guest = guestOf({
    arch: architectureNamed('s390x')!,
    ram: [patternRange(0n, 0x10000n)],
    vcpus: [{ index: 0, state: s390State }],
  });

  it('--layout qemu writes the .shstrtab section header little-endian in a big-endian file, as QEMU 7.2 does', () => {
    const plan = planDump(guest, { layout: 'qemu' });
    const record = plan.records.find((r) => r.kind === 'section-headers');
    if (record?.kind !== 'section-headers') throw new Error('no section headers');
    const bytes = Buffer.from(encodeSectionHeaders(record.headers, plan.target));
    // sh_name 1, sh_type SHT_STRTAB, sh_offset = the file's last 11 bytes: little-endian.
    expect([bytes.readUInt32LE(64), bytes.readUInt32LE(68), bytes.readBigUInt64LE(64 + 24)]).toEqual([
      1,
      3,
      plan.totalSize - 11n,
    ]);
    expect(plan.target.endian).toBe('big');
  });

  it('kdump: QEMU\'s machine "S390X" for --layout qemu, the kernel\'s name "s390x" otherwise; 4 KiB blocks', () => {
    expect(planKdump(guest, { codec: 'zlib', layout: 'qemu' }).header.utsname.machine).toBe('S390X');
    const portable = planKdump(guest, { codec: 'zlib' });
    expect([portable.header.utsname.machine, portable.blockSize, portable.subHeader.physBase]).toEqual(['s390x', 4096, 0n]);
  });
});

describe('aarch64 kdump choices (docs/other-arches.md §4.2)', () => {
  const ram = [patternRange(0x4000_0000n, 0x100_0000n)];
  const vmcoreinfo = {
    name: 'VMCOREINFO',
    type: 0,
    desc: new TextEncoder().encode('PAGESIZE=4096\nNUMBER(PHYS_OFFSET)=0x40000000\n'),
  };
  const guest = guestOf({ arch: architectureNamed('aarch64')!, ram, vcpus: [{ index: 0, state: aarch64State }], vmcoreinfo });

  it('--layout qemu: 64 KiB blocks, machine "Unknown", max_mapnr in 64 KiB frames from 0', () => {
    const plan = planKdump(guest, { codec: 'zlib', layout: 'qemu' });
    expect([plan.blockSize, plan.header.utsname.machine, plan.maxMapnr, plan.subHeader.physBase]).toEqual([
      65536,
      'Unknown',
      0x4100,
      0x4000_0000n,
    ]);
  });

  it("portable: the guest's 4 KiB pages, so makedumpfile can read it; phys_base = PHYS_OFFSET", () => {
    const plan = planKdump(guest, { codec: 'zlib' });
    expect([plan.blockSize, plan.header.utsname.machine, plan.maxMapnr, plan.subHeader.physBase]).toEqual([
      4096,
      'aarch64',
      0x41000,
      0x4000_0000n,
    ]);
  });
});
