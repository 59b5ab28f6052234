import { describe, expect, it } from 'vitest';
import { EM_386, EM_RISCV, EM_X86_64 } from '../src/formats/elf/elf-constants.js';
import type { Architecture, Vcpu } from '../src/guest/guest.js';
import { buildNotes } from '../src/transforms/plan/notes.js';
import { x86State } from './helpers/guests.js';

const regNames = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
  'cr0',
  'cr1',
  'cr2',
  'cr3',
  'cr4',
  'kernelGsBase',
] as const;
/** Every register a distinct value whose high bits are set, so truncation and misplacement both show. */
const distinct = Object.fromEntries(regNames.map((name, i) => [name, 0xabcd_0000_0000_0000n + BigInt(i + 1) * 0x1_0101n]));
const seg = (n: number) => ({
  selector: 0x10 + n,
  limit: 0xfffff + n,
  flags: 0xa09b00 + n,
  base: 0xffff_8880_0000_0000n + BigInt(n),
});
const state = x86State({
  ...distinct,
  efer: 0x500n,
  cs: seg(1),
  ds: seg(2),
  es: seg(3),
  fs: seg(4),
  gs: seg(5),
  ss: seg(6),
  ldt: seg(7),
  tr: seg(8),
  gdt: { limit: 0x7f, base: 0xfffffe0000001000n },
  idt: { limit: 0xfff, base: 0xfffffe0000000000n },
});
const arch = (machine: number): Architecture => ({ name: 'x', machine, elfClass: 64, endian: 'little', pageSize: 4096 });
const cpu: Vcpu = { index: 2, state };
const u64 = (desc: Uint8Array, at: number) => new DataView(desc.buffer).getBigUint64(at, true);
const u32 = (desc: Uint8Array, at: number) => new DataView(desc.buffer).getUint32(at, true);

describe('NT_PRSTATUS, x86_64 layout (docs/elf-vmcore.md §7.3)', () => {
  const [prstatus, qemu] = buildNotes({ arch: arch(EM_X86_64), vcpus: [cpu] });
  it('is 336 bytes named CORE type 1 with pr_pid = cpu_index + 1', () => {
    expect([prstatus!.name, prstatus!.type, prstatus!.desc.length, u32(prstatus!.desc, 32)]).toEqual(['CORE', 1, 336, 3]);
  });
  it('holds pr_reg at the spec offsets', () => {
    // Offsets copied from the spec table, independently of the implementation's slot list.
    const expected: [number, bigint][] = [
      [112, state.r15],
      [120, state.r14],
      [128, state.r13],
      [136, state.r12],
      [144, state.rbp],
      [152, state.rbx],
      [160, state.r11],
      [168, state.r10],
      [176, state.r9],
      [184, state.r8],
      [192, state.rax],
      [200, state.rcx],
      [208, state.rdx],
      [216, state.rsi],
      [224, state.rdi],
      [232, 0n],
      [240, state.rip],
      [248, 0x11n],
      [256, state.rflags],
      [264, state.rsp],
      [272, 0x16n],
      [280, seg(4).base],
      [288, seg(5).base],
      [296, 0x12n],
      [304, 0x13n],
      [312, 0x14n],
      [320, 0x15n],
      [328, 0n],
    ];
    expect(expected.map(([at]) => u64(prstatus!.desc, at))).toEqual(expected.map(([, v]) => v));
  });
  it('QEMU note: version 1, size 440, registers, segments, tables, control registers (§7.5)', () => {
    const d = qemu!.desc;
    expect([qemu!.name, qemu!.type, d.length, u32(d, 0), u32(d, 4)]).toEqual(['QEMU', 0, 440, 1, 440]);
    expect([u64(d, 8), u64(d, 56), u64(d, 64), u64(d, 72), u64(d, 128), u64(d, 136), u64(d, 144)]).toEqual([
      state.rax,
      state.rsp,
      state.rbp,
      state.r8,
      state.r15,
      state.rip,
      state.rflags,
    ]);
    // cs at 152: selector, limit, flags, pad, base; tr at 152 + 7*24; gdt/idt limit and base only.
    expect([u32(d, 152), u32(d, 156), u32(d, 160), u32(d, 164), u64(d, 168)]).toEqual([
      0x11,
      0xfffff + 1,
      0xa09b01,
      0,
      seg(1).base,
    ]);
    expect([u32(d, 320), u64(d, 336)]).toEqual([0x18, seg(8).base]);
    expect([u32(d, 344), u32(d, 348), u32(d, 352), u64(d, 360)]).toEqual([0, 0x7f, 0, 0xfffffe0000001000n]);
    expect([u32(d, 372), u64(d, 384)]).toEqual([0xfff, 0xfffffe0000000000n]);
    expect([u64(d, 392), u64(d, 416), u64(d, 424), u64(d, 432)]).toEqual([state.cr0, state.cr3, state.cr4, state.kernelGsBase]);
  });
});

describe('NT_PRSTATUS, i386 layout (§7.4)', () => {
  const [prstatus] = buildNotes({
    arch: arch(EM_386),
    vcpus: [{ index: 0, state: x86State({ ...distinct, cs: seg(1), ss: seg(6) }) }],
  });
  it('is 144 bytes, pr_pid at 24, 32-bit registers at 72..136', () => {
    const d = prstatus!.desc;
    const low = (v: bigint) => Number(v & 0xffff_ffffn);
    expect([d.length, u32(d, 24)]).toEqual([144, 1]);
    expect([
      u32(d, 72),
      u32(d, 96),
      u32(d, 116),
      u32(d, 120),
      u32(d, 124),
      u32(d, 128),
      u32(d, 132),
      u32(d, 136),
      u32(d, 140),
    ]).toEqual([
      low(distinct.rbx!),
      low(distinct.rax!),
      0,
      low(distinct.rip!),
      0x11,
      low(distinct.rflags!),
      low(distinct.rsp!),
      0x16,
      0,
    ]);
  });
});

describe('note order', () => {
  it('all prstatus notes, then all QEMU notes, then VMCOREINFO (§7.1)', () => {
    const vmcoreinfo = { name: 'VMCOREINFO', type: 0, desc: new Uint8Array(3) };
    const notes = buildNotes({
      arch: arch(EM_X86_64),
      vcpus: [
        { index: 0, state },
        { index: 1, state },
      ],
      vmcoreinfo,
    });
    expect(notes.map((n) => n.name)).toEqual(['CORE', 'CORE', 'QEMU', 'QEMU', 'VMCOREINFO']);
  });
  it('refuses register notes for an architecture that has none yet, but allows its memory and VMCOREINFO', () => {
    expect(() => buildNotes({ arch: arch(EM_RISCV), vcpus: [cpu] })).toThrow(/EM_RISCV/);
    expect(buildNotes({ arch: arch(EM_RISCV), vcpus: [] })).toEqual([]);
  });
});
