/**
 * QEMU 7.2's paging=true mapping list: the verified 32-bit walk of docs/memory-mapping.md §6 rebuilt
 * from synthetic tables, and whole dumps compared with QEMU's own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vcpu } from '../src/guest/guest.js';
import { planPagingMappings } from '../src/targets/x86/paging.js';
import type { PhysicalMemory } from '../src/guest/guest-memory.js';
import {
  buildLinuxGuest,
  buildTinyGuests,
  fetchLinuxVmlinux,
  saveReferences,
  startGuest,
  QEMU,
  type GuestConfig,
  type TinyGuests,
  linuxGuestConfig,
} from '../scripts/qemu-harness.js';
import { patternRange, x86State } from './helpers/guests.js';
import { runCli, tempDir } from './helpers/machines.js';
import { run, itWithTools, hasTool } from './helpers/tools.js';
import { expectSameFile } from './helpers/same-file.js';

/** Page tables as sparse memory; "memory" is the q35 guest of the spec (RAM, BIOS ROM, RAM above 4 GiB). */
function syntheticMemory(words: Map<bigint, bigint>): PhysicalMemory {
  const ram = [
    [0n, 0xa0000n],
    [0xc0000n, 0x4000000n],
    [0xfffc0000n, 0x100000000n],
    [0x100000000n, 0x104000000n],
  ];
  return {
    u64: async (a) => words.get(a) ?? 0n,
    u32: async (a) => Number(words.get(a) ?? 0n),
    isMemory: (a) => ram.some(([s, e]) => s! <= a && a < e!),
  };
}

describe('32-bit paging with PSE (docs/memory-mapping.md §6, verified against QEMU 7.2)', () => {
  it('gives the same mapping list, aliases, PSE-36 and dropped I/O leaves included', async () => {
    const w = new Map<bigint, bigint>();
    const pd = 0x10000n;
    const pt = 0x11000n;
    const pte = (j: bigint, phys: bigint) => w.set(pt + j * 4n, phys | 1n);
    const pde4m = (i: bigint, value: bigint) => w.set(pd + i * 4n, value | 0x81n);
    w.set(pd, pt | 1n);
    [0n, 1n, 2n, 3n].forEach((j) => pte(j, 0x200000n + j * 0x1000n));
    pte(4n, 0x300000n);
    pte(5n, 0x301000n);
    pte(7n, 0xfec00000n);
    pte(8n, 0x200000n);
    pte(9n, 0x1ff000n);
    pte(11n, 0xfffff000n);
    pte(12n, 0xa0000n);
    pte(13n, 0n);
    pde4m(1n, 0x800000n);
    pde4m(2n, 0xc00000n);
    pde4m(3n, 0x1n << 13n); // PSE-36: PDE bit 13 → physical bit 32
    pde4m(0x300n, 0x3c00000n);
    pde4m(0x3ffn, 0xffc00000n);
    const cpu: Vcpu = { index: 0, state: x86State({ cr0: 0x80000011n, cr3: pd, cr4: 0x10n }) };
    const list = await planPagingMappings([patternRange(0n, 0x4000000n)], [cpu], syntheticMemory(w));
    expect(list.map((m) => [m.phys, m.virt, m.length])).toEqual([
      [0x0n, 0xd000n, 0x1000n],
      [0x1ff000n, 0x9000n, 0x1000n],
      [0x200000n, 0x8000n, 0x1000n],
      [0x200000n, 0x0n, 0x4000n],
      [0x300000n, 0x4000n, 0x2000n],
      [0x800000n, 0x400000n, 0x800000n],
      [0x3c00000n, 0xc0000000n, 0x400000n],
      [0xfffff000n, 0xb000n, 0x1000n],
      [0x100000000n, 0xc00000n, 0x400000n],
    ]);
  });

  it('without any vCPU in paging mode: one identity mapping per range', async () => {
    const list = await planPagingMappings(
      [patternRange(0n, 0xa0000n)],
      [{ index: 0, state: x86State() }],
      syntheticMemory(new Map()),
    );
    expect(list.map((m) => [m.phys, m.virt, m.length])).toEqual([[0n, 0n, 0xa0000n]]);
  });
});

describe('4-level: QEMU quirks for --layout qemu, fixed otherwise (docs/memory-mapping.md §4.3-4.4)', () => {
  // PML4[0] → PDPT → PD → PT: PTE0 → 0x200000, PTE1 → 0x201000 with protection-key bits 62:59 set.
  const w = new Map<bigint, bigint>([
    [0x10000n, 0x11000n | 3n],
    [0x11000n, 0x12000n | 3n],
    [0x12000n, 0x13000n | 3n],
    [0x13000n, 0x200000n | 3n],
    [0x13008n, 0x201000n | 3n | (0xfn << 59n)],
  ]);
  const cpu: Vcpu = { index: 0, state: x86State({ cr0: 0x80000011n, cr3: 0x10000n, cr4: 0x20n, efer: 0x500n }) };
  const walk = (qemuQuirks: boolean) =>
    planPagingMappings([patternRange(0n, 0x4000000n)], [cpu], syntheticMemory(w), { qemuQuirks }).then((list) =>
      list.map((m) => [m.phys, m.virt, m.length]),
    );

  it('QEMU: the 0xFFFF prefix on a lower-half address, and the page with software bits dropped', async () => {
    expect(await walk(true)).toEqual([[0x200000n, 0xffff000000000000n, 0x1000n]]);
  });
  it('default: canonical address, and the page kept', async () => {
    expect(await walk(false)).toEqual([[0x200000n, 0n, 0x2000n]]);
  });
});

describe('hostile page tables end in bounded time with a clear error', () => {
  it('a PML4 whose 512 entries all point back at itself (512^4 leaves, all at one physical page) stops at a budget', async () => {
    const self = { u64: async () => 0x10000n | 3n, u32: async () => 0x10003, isMemory: () => true };
    const cpu: Vcpu = { index: 0, state: x86State({ cr0: 0x80000011n, cr3: 0x10000n, cr4: 0x20n, efer: 0x500n }) };
    const started = performance.now();
    // Every leaf maps the same page at a new address: QEMU's merge-insert is quadratic here, so the scan budget trips first.
    await expect(
      planPagingMappings([patternRange(0n, 0x4000000n)], [cpu], self, { qemuQuirks: true, maxScanSteps: 2_000_000 }),
    ).rejects.toMatchObject({ code: 'bad-input', message: expect.stringMatching(/took more than 2000000 steps/) });
    expect(performance.now() - started).toBeLessThan(30_000);
  });

  it('every PML4 entry present over one PDPT of 1 GiB leaves (262 656 entries) stops at the entry budget', async () => {
    // PML4 at 0x10000 → PDPT at 0x20000; PDPT entry j is a 1 GiB leaf at j GiB (these merge, so only entries count).
    const memory = {
      u64: async (a: bigint) => (a < 0x20000n ? 0x20000n | 3n : (((a - 0x20000n) / 8n) << 30n) | 0x83n),
      u32: async () => 0,
      isMemory: () => true,
    };
    const cpu: Vcpu = { index: 0, state: x86State({ cr0: 0x80000011n, cr3: 0x10000n, cr4: 0x20n, efer: 0x500n }) };
    await expect(
      planPagingMappings([patternRange(0n, 0x4000000n)], [cpu], memory, { qemuQuirks: true, maxPresentEntries: 100_000 }),
    ).rejects.toMatchObject({
      code: 'bad-input',
      message: expect.stringMatching(/more than 100000 present entries \(a loop or corrupt tables\?\)/),
    });
  });
});

describe('hostile page tables through the CLI (the default caps): exit 3, one line, nothing written', () => {
  const work = tempDir('vmdump-hostile-');
  /** A 64 MiB sparse RAM image with `tables` (address → the u64 every one of its 512 entries holds), and one vCPU in 4-level paging at 0x10000. */
  const hostileGuest = (name: string, tables: readonly (readonly [number, bigint])[]): string => {
    const image = path.join(work, `${name}.img`);
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 64 << 20);
    const fd = fs.openSync(image, 'r+');
    for (const [at, entry] of tables) {
      const table = Buffer.alloc(4096);
      for (let i = 0; i < 512; i += 1) table.writeBigUInt64LE(entry, 8 * i);
      fs.writeSync(fd, table, 0, table.length, at);
    }
    fs.closeSync(fd);
    const machine = path.join(work, `${name}.json`);
    const vcpus = [{ cr0: '0x80000011', cr3: '0x10000', cr4: '0x20', efer: '0x500' }];
    fs.writeFileSync(
      machine,
      JSON.stringify({ arch: 'x86_64', ram: [{ address: '0x0', size: 64 << 20, file: `${name}.img` }], vcpus }),
    );
    return machine;
  };

  it.each([
    [
      'a PML4 whose entries all point back at itself: the merge-scan cap (50 M steps)',
      [[0x10000, 0x10000n | 3n]] as const,
      /^vmdump: error: merging the page-table mappings took more than 50000000 steps \(\d+ mappings so far\); dump without --paging\n$/,
    ],
    [
      'four levels of shared tables whose leaves lie outside RAM: the present-entry cap (16 M)',
      [
        [0x10000, 0x11000n | 3n],
        [0x11000, 0x12000n | 3n],
        [0x12000, 0x13000n | 3n],
        [0x13000, 0x7f000000n | 3n],
      ] as const,
      /^vmdump: error: the page tables have more than 16000000 present entries \(a loop or corrupt tables\?\); dump without --paging\n$/,
    ],
  ])('%s', async (_name, tables, message) => {
    const out = path.join(work, 'hostile.core');
    const result = await runCli(['raw', hostileGuest('hostile', tables), '--paging', '--progress', 'none', '-o', out]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(message);
    expect(fs.readdirSync(work).filter((name) => name.includes('core'))).toEqual([]);
  });
});

const dir = tempDir('vmdump-paging-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let guests: TinyGuests | undefined;
beforeAll(() => {
  if (hasTool('as')) guests = buildTinyGuests();
});

/**
 * Boots `config`, has QEMU write its paging=true dump (of `filter`, if given) and a stream of the
 * paused guest, and checks that `--paging --layout qemu` from the live source and from the saved
 * stream both equal QEMU's dump byte for byte.
 */
async function pagingFromSavedAndLive(
  config: GuestConfig,
  work: string,
  filter: { begin: bigint; length: bigint } | undefined,
): Promise<{ stream: string; saved: string }> {
  const socket = path.join(work, 'vmdump.sock');
  const guest = await startGuest(
    { ...config, extra: [...(config.extra ?? []), '-qmp', `unix:${socket},server=on,wait=off`] },
    work,
  );
  const range =
    filter === undefined ? [] : ['--begin', `0x${filter.begin.toString(16)}`, '--length', `0x${filter.length.toString(16)}`];
  const [live, saved] = [path.join(work, 'live.core'), path.join(work, 'saved.core')];
  let refs: { dump: string; stream: string };
  try {
    refs = await saveReferences(guest, { paging: true, ...(filter === undefined ? {} : { filter }) });
    const fromLive = await runCli(['qmp', socket, '--paging', '--layout', 'qemu', ...range, '-o', live]);
    expect([fromLive.code, fromLive.stderr]).toEqual([0, expect.stringContaining('qemu layout')]);
  } finally {
    await guest.quit();
  }
  const fromSaved = await runCli(['saved', refs.stream, '--paging', '--layout', 'qemu', ...range, '-o', saved]);
  expect([fromSaved.code, fromSaved.stderr]).toEqual([0, expect.stringContaining('qemu layout')]);
  expectSameFile(saved, refs.dump);
  expectSameFile(live, refs.dump);
  return { stream: refs.stream, saved };
}

describe('--paging --layout qemu against QEMU paging=true', () => {
  // The Linux case's dump also goes through gdb and crash: the table needs them all.
  itWithTools([
    [QEMU, 'qemu-system-x86'],
    ['readelf', 'binutils'],
    ['gdb', 'gdb'],
    ['crash', 'crash'],
  ]).each([
    '32-bit paging (4 KiB pages and an alias, 4 MiB PSE pages, a higher-half alias)',
    'PAE (4 KiB pages, 2 MiB pages with NX, a higher-half alias)',
    '4-level (4 KiB, 2 MiB and 1 GiB pages, a 1 GiB alias, the kernel-style higher half; -cpu max)',
    '5-level (LA57, the same tables at PML5[0] and PML5[1], above 2^47; -cpu max)',
    '4-level, tiny 64-bit guest (2 MiB identity pages, 2 vCPUs, one without paging)',
    "Linux guest (the kernel's own tables)",
  ])(
    '%s',
    async (name) => {
      const linux = name.startsWith('Linux') ? buildLinuxGuest() : undefined;
      const kernels: Record<string, string> = {
        '32-bit': guests!.paging32,
        PAE: guests!.pagingPae,
        '4-level (': guests!.paging4,
        '5-level': guests!.paging5,
        '4-level,': guests!.tiny64,
      };
      const kernel = Object.entries(kernels).find(([prefix]) => name.startsWith(prefix))?.[1] ?? guests!.tiny64;
      const maxCpu = name.includes('-cpu max') ? ['-cpu', 'max'] : [];
      const config: GuestConfig =
        linux === undefined
          ? { machine: 'q35', memory: '256M', smp: name.startsWith('4-level,') ? 2 : 1, kernel, extra: maxCpu }
          : linuxGuestConfig(linux, { memory: '512M', kaslr: false });
      const work = path.join(dir, name.replace(/\W+/g, '-').slice(0, 40));
      const guest = await startGuest(config, work);
      let refs: { dump: string; stream: string };
      try {
        refs = await saveReferences(guest, { paging: true });
      } finally {
        await guest.quit();
      }
      const { dump: qemu, stream } = refs;
      const ours = path.join(work, 'ours.core');
      const result = await runCli(['saved', stream, '--paging', '--layout', 'qemu', '-o', ours]);
      expect(result.code).toBe(0);
      expectSameFile(ours, qemu);
      const table = run('readelf', ['-l', '-W', ours]).stdout;
      const loads = table.match(/^\s+LOAD\s/gm)?.length ?? 0;
      expect(loads).toBeGreaterThan(linux ? 100 : 1);
      // Not vacuous: the virtual addresses are the page tables' (QEMU's 0xFFFF prefix in 4-level mode, the 0xC0000000 alias otherwise).
      const expected = name.startsWith('5-level')
        ? /0xfe01000000000000/
        : name.startsWith('4-level')
          ? /0xffff000000000000/
          : /0x00000000c0000000/;
      if (linux === undefined) expect(table).toMatch(expected);
      if (linux !== undefined) {
        // The default layout (canonical addresses): gdb reads linux_banner by its virtual address, crash opens it.
        const portable = path.join(work, 'portable.core');
        expect((await runCli(['saved', stream, '--paging', '-o', portable])).code).toBe(0);
        const banner = /VMDUMP-LINUX-BANNER=([0-9a-f]+)/.exec(guest.serialText())![1]!;
        expect(run('gdb', ['-batch', '-nx', '-ex', `x/s 0x${banner}`, '-c', portable]).stdout).toMatch(/Linux version 6\./);
        const vmlinux = fetchLinuxVmlinux();
        const crash = run('sh', ['-c', `printf 'sys\\nquit\\n' | crash -s '${vmlinux}' '${portable}'`]);
        expect(crash.stdout).toMatch(/RELEASE: 6\./);
      }
      fs.rmSync(work, { recursive: true, force: true });
    },
    300_000,
  );

  itWithTools([[QEMU, 'qemu-system-x86']]).each([
    ['the whole guest', undefined],
    ['--begin 0x100000 --length 0x300000', { begin: 0x100000n, length: 0x300000n }],
  ] as const)(
    'no vCPU in paging mode (the tiny 32-bit guest), %s: --paging --layout qemu from the saved stream and the live source is QEMU paging=true byte for byte (virtual = physical)',
    async (_name, filter) => {
      const work = path.join(dir, `no-paging-${filter === undefined ? 'whole' : 'filtered'}`);
      const refs = await pagingFromSavedAndLive({ machine: 'q35', memory: '64M', smp: 1, kernel: guests!.tiny32 }, work, filter);
      // (For such a guest QEMU's paging=true file equals its paging=false one; vmdump used to refuse it.)
      // The default layout keeps its clear refusal: there are no page-table addresses to give.
      const refused = await runCli(['saved', refs.stream, '--paging', '-o', path.join(work, 'refused.core')]);
      expect([refused.code, refused.stderr.trim()]).toEqual([
        2,
        'vmdump: error: --paging needs a vCPU with paging on (CR0.PG); every vCPU here runs without paging',
      ]);
      fs.rmSync(work, { recursive: true, force: true });
    },
    120_000,
  );

  // Firmware in pflash is a ROM device, not RAM: QEMU keeps page-table mappings of it, with no bytes in the file (issue 17).
  itWithTools([[QEMU, 'qemu-system-x86']]).each([
    ['32-bit paging', 'flash32', 'q35', [], undefined],
    ['32-bit paging on an i386 vCPU model (-cpu qemu32), pc', 'flash32', 'pc', ['-cpu', 'qemu32'], undefined],
    ['4-level paging', 'flash4', 'q35', [], undefined],
    ['4-level paging, pc', 'flash4', 'pc', [], undefined],
    ['32-bit paging, --begin 0x200000 --length 0xffe00000', 'flash32', 'q35', [], { begin: 0x200000n, length: 0xffe00000n }],
    ['4-level paging, --begin 0x200000 --length 0xffe00000', 'flash4', 'q35', [], { begin: 0x200000n, length: 0xffe00000n }],
  ] as const)(
    'a pflash-booted guest whose tables map its flash (%s): saved stream and live source are QEMU paging=true byte for byte',
    async (name, image, machine, cpu, filter) => {
      const work = path.join(dir, `flash-${name.replace(/\W+/g, '-').slice(0, 40)}`);
      const pflash = ['-drive', `if=pflash,format=raw,readonly=on,file=${guests![image]}`];
      const { saved } = await pagingFromSavedAndLive(
        { machine, memory: '64M', smp: 1, extra: [...cpu, ...pflash] },
        work,
        filter,
      );
      // Not vacuous: the flash page the higher half maps is there, with no bytes in the file.
      const flashLoad = /^\s+LOAD\s+0x(f{8}|f{16})\s+0x(0*c0803000|ffffffff80803000)\s+0x0*fffff000\s+0x0+\s+0x0*1000\s/m;
      expect(run('readelf', ['-l', '-W', saved]).stdout).toMatch(flashLoad);
      fs.rmSync(work, { recursive: true, force: true });
    },
    120_000,
  );

  it('--paging on a guest without paging is a clear usage error', async () => {
    const example = path.join(dir, 'no-paging.json');
    fs.writeFileSync(path.join(dir, 'r.img'), Buffer.alloc(0x10000));
    fs.writeFileSync(
      example,
      JSON.stringify({ arch: 'i386', ram: [{ address: 0, size: 0x10000, file: 'r.img' }], vcpus: [{ eip: '0xfff0' }] }),
    );
    const result = await runCli(['raw', example, '--paging', '-o', path.join(dir, 'x.core')]);
    expect([result.code, result.stderr.trim()]).toEqual([
      2,
      'vmdump: error: --paging needs a vCPU with paging on (CR0.PG); every vCPU here runs without paging',
    ]);
  });
});
