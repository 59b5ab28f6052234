import { describe, expect, it } from 'vitest';
import { EM_386, EM_X86_64, PT_LOAD, PT_NOTE } from '../src/formats/elf/elf-constants.js';
import type { DumpPlan, DumpRecord } from '../src/transforms/plan/dump-plan.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import { guestOf, patternRange, q35SeaBiosRam, x86State, zeroRange } from './helpers/guests.js';

type Kind = DumpRecord['kind'];
function record<K extends Kind>(plan: DumpPlan, kind: K): Extract<DumpRecord, { kind: K }> {
  const found = plan.records.find((r) => r.kind === kind);
  if (found === undefined) throw new Error(`no ${kind} record`);
  return found as Extract<DumpRecord, { kind: K }>;
}
const phdrs = (plan: DumpPlan) => record(plan, 'program-headers').headers;
const vcpus = (n: number, longMode: boolean) =>
  Array.from({ length: n }, (_, index) => ({ index, state: x86State({ efer: longMode ? 0x500n : 0n }) }));

describe('qemu layout reproduces the offsets of real QEMU 7.2 dumps (docs/elf-vmcore.md §1, §8)', () => {
  it('q35 64 MiB SeaBIOS, 2 vCPUs in protected mode: ELF64 + EM_386, 84 018 883 bytes', () => {
    const ram = q35SeaBiosRam();
    const plan = planDump(guestOf({ ram, vcpus: vcpus(2, false), longMode: false }), { layout: 'qemu' });
    expect(plan.target).toEqual({ elfClass: 64, endian: 'little', machine: EM_386 });
    expect(plan.totalSize).toBe(84_018_883n);
    const header = record(plan, 'elf-header').header;
    expect([header.phoff, header.shoff, header.ehsize, header.phnum, header.shnum, header.shstrndx]).toEqual([
      0xc0n,
      0x40n,
      8,
      5,
      2,
      1,
    ]);
    const [note, ...loads] = phdrs(plan);
    expect(note).toMatchObject({ type: PT_NOTE, offset: 0x1d8n, filesz: 0x4e0n, memsz: 0x4e0n });
    expect(loads.map((l) => [l.type, l.offset, l.paddr, l.vaddr, l.filesz])).toEqual([
      [PT_LOAD, 0x6b8n, 0n, 0n, 0xa0000n],
      [PT_LOAD, 0xa06b8n, 0xc0000n, 0xc0000n, 0x3f40000n],
      [PT_LOAD, 0x3fe06b8n, 0xfd000000n, 0xfd000000n, 0x1000000n],
      [PT_LOAD, 0x4fe06b8n, 0xfffc0000n, 0xfffc0000n, 0x40000n],
    ]);
    const [, strtab] = record(plan, 'section-headers').headers;
    expect([strtab!.offset, strtab!.size]).toEqual([0x50206b8n, 11n]);
    expect(record(plan, 'string-table').offset).toBe(0x50206b8n);
  });

  it('pflash guest, 1 vCPU at reset: ELF32 with phdrs at 0x84, PT_NOTE 0x270 at 0x124, memory at 0x394', () => {
    const ram = [
      patternRange(0n, 0xa0000n),
      patternRange(0xc0000n, 0x20000n),
      patternRange(0xe0000n, 0x20000n),
      patternRange(0x100000n, 0x4000000n - 0x100000n),
    ];
    const plan = planDump(guestOf({ ram, vcpus: vcpus(1, false), longMode: false }), { layout: 'qemu' });
    expect(plan.target.elfClass).toBe(32);
    const header = record(plan, 'elf-header').header;
    expect([header.phoff, header.shoff]).toEqual([0x84n, 0x34n]);
    expect(phdrs(plan)[0]).toMatchObject({ offset: 0x124n, filesz: 0x270n });
    expect(phdrs(plan)[1]!.offset).toBe(0x394n);
  });

  it('OVMF 256 MiB in long mode, 2 vCPUs: EM_X86_64, PT_NOTE 0x660 at 0x280, memory at 0x8e0; VMCOREINFO adds 104', () => {
    const ram = [
      [0n, 0xa0000n],
      [0xa0000n, 0x10000n],
      [0xc0000n, 0x4000n],
      [0xc4000n, 0x1c000n],
      [0xe0000n, 0x20000n],
      [0x100000n, 0x10000000n - 0x100000n],
      [0xc0000000n, 0x1000000n],
    ].map(([s, n]) => patternRange(s!, n!));
    const plan = planDump(guestOf({ ram, vcpus: vcpus(2, true) }), { layout: 'qemu' });
    expect(plan.target).toMatchObject({ elfClass: 64, machine: EM_X86_64 });
    expect(phdrs(plan)[0]).toMatchObject({ offset: 0x280n, filesz: 0x660n });
    expect(phdrs(plan)[1]!.offset).toBe(0x8e0n);
    const vmcoreinfo = { name: 'VMCOREINFO', type: 0, desc: new Uint8Array(78) };
    const withInfo = planDump(guestOf({ ram, vcpus: vcpus(2, true), vmcoreinfo }), { layout: 'qemu' });
    expect(phdrs(withInfo)[0]!.filesz).toBe(0x6c8n);
  });
});

describe('portable layout', () => {
  it('puts program headers at 64 with PT_NOTE first, a true e_ehsize and no section headers', () => {
    const plan = planDump(guestOf({ ram: q35SeaBiosRam(), vcpus: vcpus(2, true) }));
    const header = record(plan, 'elf-header').header;
    expect([header.phoff, header.ehsize, header.shoff, header.shnum]).toEqual([64n, 64, 0n, 0]);
    expect(phdrs(plan)[0]!.type).toBe(PT_NOTE);
    expect(plan.records.map((r) => r.kind)).not.toContain('section-headers');
    expect(plan.totalSize).toBe(64n + 5n * 56n + 2n * (356n + 460n) + 0x40a0000n - 0xc0000n + 0x1000000n + 0x40000n);
  });

  it('keeps ELF32 where every value fits, and refuses the qemu layout whose .shstrtab offset passes 4 GiB', () => {
    const guest = guestOf({ ram: [zeroRange(0n, 0xffff_ffffn)], vcpus: vcpus(1, false), longMode: false });
    expect(guest.arch.elfClass).toBe(32);
    expect(planDump(guest).target).toMatchObject({ elfClass: 32, machine: EM_386 });
    expect(() => planDump(guest, { layout: 'qemu' })).toThrow(/ELF32 dump cannot hold this guest/);
  });

  it('widens to ELF64 when a PN_XNUM section header would sit past 4 GiB', () => {
    // 65 535 adjacent 64 KiB ranges end at 0xffff0000; 2 MiB of program headers push the payload's end past 4 GiB.
    const ram = Array.from({ length: 0xffff }, (_, i) => zeroRange(BigInt(i) * 0x10000n, 0x10000n));
    const guest = guestOf({ ram, longMode: false });
    expect(guest.arch.elfClass).toBe(32);
    expect(planDump(guest).target.elfClass).toBe(64);
  });
});

describe('begin/length filter (docs/memory-mapping.md §7 examples on the 64 MiB q35 guest)', () => {
  const guest = () => guestOf({ ram: q35SeaBiosRam(), vcpus: vcpus(1, false), longMode: false });

  it('begin 0x9f000 length 0x22000: two 4 KiB PT_LOADs at 0x9f000 and 0xc0000, 8192 payload bytes', () => {
    const plan = planDump(guest(), { layout: 'qemu', filter: { begin: 0x9f000n, length: 0x22000n } });
    expect(plan.memoryBytes).toBe(8192n);
    const loads = phdrs(plan).slice(1);
    expect(loads.map((l) => [l.paddr, l.memsz, l.filesz])).toEqual([
      [0x9f000n, 0x1000n, 0x1000n],
      [0xc0000n, 0x1000n, 0x1000n],
    ]);
    expect(loads[1]!.offset - loads[0]!.offset).toBe(0x1000n);
  });

  it('begin 0x123 length 0x1000: one PT_LOAD at p_paddr 0x123 with 4096 bytes', () => {
    const plan = planDump(guest(), { filter: { begin: 0x123n, length: 0x1000n } });
    expect(
      phdrs(plan)
        .slice(1)
        .map((l) => [l.paddr, l.vaddr, l.filesz]),
    ).toEqual([[0x123n, 0x123n, 0x1000n]]);
    expect(record(plan, 'memory').piece.rangeOffset).toBe(0x123n);
  });

  it("gives QEMU's errors: a filter inside a hole, a zero length, negative values", () => {
    expect(() => planDump(guest(), { filter: { begin: 0xa0000n, length: 0x20000n } })).toThrow('no guest memory to dump');
    expect(() => planDump(guest(), { filter: { begin: 0n, length: 0n } })).toThrow("Invalid parameter 'length'");
    expect(() => planDump(guest(), { filter: { begin: -4096n, length: 4096n } })).toThrow(/must not be negative/);
  });
});

describe('guest checks', () => {
  it('rejects overlapping and empty RAM', () => {
    expect(() => planDump(guestOf({ ram: [patternRange(0n, 0x2000n), patternRange(0x1000n, 0x1000n)] }))).toThrow(/overlaps/);
    expect(() => planDump(guestOf({ ram: [] }))).toThrow('no guest memory to dump');
  });
});

describe('Linux /proc/vmcore mappings (docs/elf-vmcore.md §9.1)', () => {
  const facts = {
    directMapBase: 0xffff888000000000n,
    kernelTextVirtual: 0xffffffff81000000n,
    kernelTextPhysical: 0x1000000n,
    kernelImageEnd: 0xffffffffc0000000n,
  };
  const ram = () => [
    patternRange(0n, 0xa0000n),
    patternRange(0xc0000n, 0x80000000n - 0xc0000n),
    { ...patternRange(0xfd000000n, 0x1000000n), systemRam: false },
  ];

  it('kernel image first (aliasing the RAM bytes), RAM at the direct map, VRAM at virtual 0', () => {
    const plan = planDump(guestOf({ ram: ram() }), { linux: facts });
    const loads = phdrs(plan).slice(1);
    expect(loads.map((l) => [l.vaddr, l.paddr])).toEqual([
      [0xffffffff81000000n, 0x1000000n],
      [0xffff888000000000n, 0n],
      [0xffff8880000c0000n, 0xc0000n],
      [0n, 0xfd000000n],
    ]);
    // The image segment's bytes are the RAM segment's: same file offset for the same physical address.
    expect(loads[0]!.offset).toBe(loads[2]!.offset + 0x1000000n - 0xc0000n);
  });

  it("stops the kernel image segment at the image window's end, never past 2^64 (2 GiB guest)", () => {
    const image = phdrs(planDump(guestOf({ ram: ram() }), { linux: facts }))[1]!;
    expect(image.vaddr + image.memsz).toBe(0xffffffffc0000000n);
    expect(image.memsz).toBe(image.filesz);
  });

  it('the qemu layout ignores the Linux facts', () => {
    expect(
      phdrs(planDump(guestOf({ ram: ram() }), { layout: 'qemu', linux: facts }))
        .slice(1)
        .map((l) => l.vaddr),
    ).toEqual([0n, 0xc0000n, 0xfd000000n]);
  });
});
