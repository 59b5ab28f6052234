/**
 * Parsers under fuzz (fast-check): the migration-stream parser, the machine description, the
 * HMP `info mtree -f` and QEMU-notes parsers, the QMP client against a hostile server, the
 * page-table walker, and `vmdump verify`'s readers. Every case must end in a valid result or a VmdumpError: never another exception, a
 * hang (each case has a deadline), or memory that grows with a length read from the input.
 *
 * `npm test` runs a bounded number of cases per parser (plus the corpus in test/fuzz-corpus);
 * `npm run fuzz` multiplies them (FUZZ_SCALE) for the long run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isVmdumpError, type VmdumpErrorCode } from '../src/guest/errors.js';
import { openSavedVm } from '../src/sources/saved-vm/saved-vm-source.js';
import { openRawImage } from '../src/sources/raw/raw-image.js';
import { parseFlatView } from '../src/sources/live/flat-view.js';
import { decodeQemuNotes } from '../src/targets/index.js';
import { planPagingMappings } from '../src/targets/x86/paging.js';
import type { PhysicalMemory } from '../src/guest/guest-memory.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import { writeDump } from '../src/pipeline/write-dump.js';
import { writableSink } from '../src/sinks/sink.js';
import { verifyDumpFile } from '../src/verify/verify-dump.js';
import { physAddr } from '../src/guest/units.js';
import type { GuestModel, Vcpu } from '../src/guest/guest.js';
import { x86State } from './helpers/guests.js';
import { runCli, tempDir, writeMachine } from './helpers/machines.js';

const scale = Number(process.env.FUZZ_SCALE ?? '1');
const runs = (n: number): number => Math.max(1, Math.round(n * scale));
const corpus = path.join(import.meta.dirname, 'fuzz-corpus');
const dir = tempDir('vmdump-fuzz-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let peakRss = 0;
const counted: Record<string, number> = {};

/** Runs `work` with a deadline; returns normally when it succeeded or failed with a VmdumpError. */
/**
 * Runs one case to a result or a VmdumpError within `deadlineMs`. Memory is sampled while the cases
 * run and after each (sampleMemory), so an input that makes a parser allocate by a length it read
 * is seen.
 */
async function endsWell(name: string, work: () => Promise<unknown>, deadlineMs = 20_000): Promise<void> {
  counted[name] = (counted[name] ?? 0) + 1;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no end within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    await Promise.race([work(), deadline]);
  } catch (error) {
    if (!isVmdumpError(error)) throw error;
  } finally {
    clearTimeout(timer);
    sampleMemory();
  }
}

/** RSS, and the bytes of ArrayBuffers allocated (counted at once, even for pages never touched). */
function sampleMemory(): void {
  const memory = process.memoryUsage();
  peakRss = Math.max(peakRss, memory.rss, memory.arrayBuffers + memory.heapUsed);
}
// Sampled while the cases run too, not only between them.
const sampler = setInterval(sampleMemory, 5);
afterAll(() => clearInterval(sampler));

const nullSink = () =>
  writableSink(
    new Writable({
      write(_c, _e, done) {
        done();
      },
    }),
  );

async function dumpWhole(guest: GuestModel): Promise<void> {
  try {
    await writeDump(planDump(guest, { layout: 'qemu' }), nullSink()).result;
  } finally {
    await guest.close();
  }
}

/** A mutation of `base`: truncation, bit flips, or an extreme value stamped over 1/2/4/8 bytes. */
const mutation = (size: number, focus: readonly [number, number][]) => {
  const position = fc.oneof(
    ...focus.map(([from, to]) => fc.integer({ min: Math.max(0, from), max: Math.max(0, Math.min(size - 1, to)) })),
    fc.integer({ min: 0, max: size - 1 }),
  );
  const extreme = fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe);
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: position }),
    fc.record({
      kind: fc.constant('flip' as const),
      at: fc.array(position, { minLength: 1, maxLength: 8 }),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
    fc.record({ kind: fc.constant('stamp' as const), at: position, width: fc.constantFrom(1, 2, 4, 8), byte: extreme }),
  );
};
type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number[]; bit: number }
  | { kind: 'stamp'; at: number; width: number; byte: number };

function mutate(base: Buffer, m: Mutation): Buffer {
  if (m.kind === 'truncate') return base.subarray(0, m.at);
  const copy = Buffer.from(base);
  if (m.kind === 'flip') for (const at of m.at) copy[at]! ^= 1 << m.bit;
  else copy.fill(m.byte, m.at, Math.min(copy.length, m.at + m.width));
  return copy;
}

describe('fuzz: the migration-stream parser (saved VM)', () => {
  const stream = brotliDecompressSync(fs.readFileSync(path.join(import.meta.dirname, '..', 'examples', 'tiny-q35.vm.state.br')));
  // Device state and the vmdesc JSON trailer are where the structure is; pages are mostly payload.
  const focus: [number, number][] = [
    [0, 4096],
    [stream.length - 65536, stream.length - 1],
  ];
  it(
    `ends in a dump or a typed error (${runs(150)} cases)`,
    async () => {
      const file = path.join(dir, 'fuzzed.vm.state');
      await fc.assert(
        fc.asyncProperty(mutation(stream.length, focus), async (m) => {
          fs.writeFileSync(file, mutate(stream, m));
          await endsWell('saved stream', async () => dumpWhole(await openSavedVm(file)));
        }),
        { numRuns: runs(150) },
      );
    },
    600_000 * scale,
  );
});

describe('fuzz: the machine description', () => {
  const work = fs.mkdtempSync(path.join(dir, 'machine-'));
  writeMachine(work, { arch: 'x86_64', ranges: [{ address: 0n, size: 0x10000 }] });
  const field = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(
      '0x0',
      '0xffffffffffffffff',
      '-1',
      '1e400',
      '',
      'ram0.img',
      '../../etc/passwd',
      '0x10000',
      '0x1000000000000000',
    ),
    fc.constantFrom(0, -1, 4096, 2 ** 53, 1e300, Number.NaN),
  );
  const description = fc.record(
    {
      arch: fc.oneof(fc.constantFrom('x86_64', 'i386', 'aarch64', 's390x', 'nonsense'), field),
      ram: fc.array(
        fc.record(
          { address: field, size: field, file: fc.oneof(fc.constant('ram0.img'), field), offset: fc.option(field) },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      vcpus: fc.option(
        fc.array(fc.dictionary(fc.constantFrom('rip', 'rsp', 'cr0', 'cr3', 'cr4', 'efer', 'cs', 'bogus'), field), {
          maxLength: 3,
        }),
      ),
      vmcoreinfo: fc.option(fc.oneof(fc.constant('ram0.img'), field)),
    },
    { requiredKeys: [] },
  );
  it(
    `ends in a dump or a typed error (${runs(1500)} cases)`,
    async () => {
      const file = path.join(work, 'fuzzed.json');
      await fc.assert(
        fc.asyncProperty(fc.oneof(description, fc.jsonValue({ maxDepth: 4 })), async (json) => {
          fs.writeFileSync(file, JSON.stringify(json));
          await endsWell('machine description', async () => dumpWhole(await openRawImage(file)));
        }),
        { numRuns: runs(1500) },
      );
    },
    600_000 * scale,
  );
});

describe('fuzz: the HMP and QEMU-notes parsers', () => {
  const mtree = fs.readFileSync(path.join(corpus, 'mtree-q35-64m.txt'), 'utf8');
  const notes = fs.readFileSync(path.join(corpus, 'notes-core-q35.elf'));
  it(
    `info mtree -f: ranges or a typed error (${runs(20000)} cases)`,
    async () => {
      expect(parseFlatView(mtree).length).toBeGreaterThan(2);
      const lines = mtree.split('\n');
      const edit = fc.record({
        line: fc.integer({ min: 0, max: lines.length - 1 }),
        action: fc.constantFrom('drop', 'duplicate', 'garble', 'cut'),
        text: fc.string({ maxLength: 40 }),
        at: fc.nat(),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
          const copy = [...lines];
          for (const e of edits) {
            const line = copy[e.line % copy.length] ?? '';
            if (e.action === 'drop') copy.splice(e.line % copy.length, 1);
            else if (e.action === 'duplicate') copy.splice(e.line % copy.length, 0, line);
            else if (e.action === 'garble')
              copy[e.line % copy.length] =
                line.slice(0, e.at % (line.length + 1)) + e.text + line.slice(e.at % (line.length + 1));
            else copy[e.line % copy.length] = line.slice(0, e.at % (line.length + 1));
          }
          await endsWell('info mtree', async () => {
            for (const range of parseFlatView(copy.join('\n'))) expect(range.end).toBeGreaterThan(range.start);
          });
        }),
        { numRuns: runs(20000) },
      );
    },
    600_000 * scale,
  );

  it(
    `QEMU's notes dump: vCPU notes or a typed error (${runs(20000)} cases)`,
    async () => {
      expect(decodeQemuNotes(notes).vcpus).toHaveLength(2);
      await fc.assert(
        fc.asyncProperty(
          mutation(notes.length, [
            [0, 64],
            [64, 2048],
          ]),
          async (m) => {
            await endsWell('QEMU notes', async () => decodeQemuNotes(mutate(notes, m)));
          },
        ),
        { numRuns: runs(20000) },
      );
    },
    600_000 * scale,
  );
  // QEMU 7.2's notes of the aarch64 (LE, SVE, VMCOREINFO) and s390x (BE) Linux test guests, cut after PT_NOTE.
  it.each([
    ['virt', 'aarch64'],
    ['s390x', 's390x'],
  ] as const)(
    `QEMU's %s notes: vCPU state or a typed error (${runs(5000)} cases)`,
    async (machine, kind) => {
      const archNotes = fs.readFileSync(path.join(corpus, `notes-core-${machine}.elf`));
      expect(decodeQemuNotes(archNotes).vcpus.map((v) => v.state.kind)).toEqual([kind, kind]);
      await fc.assert(
        fc.asyncProperty(
          mutation(archNotes.length, [
            [0, 64],
            [64, archNotes.length - 1],
          ]),
          async (m) => {
            await endsWell(`QEMU ${machine} notes`, async () => decodeQemuNotes(mutate(archNotes, m)));
          },
        ),
        { numRuns: runs(5000) },
      );
    },
    600_000 * scale,
  );
});

describe('fuzz: the QMP client against a hostile server', () => {
  const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}';
  const line = fc.oneof(
    fc.constantFrom(
      GREETING,
      '{"return": {}}',
      '{"return": {"status": "running", "running": true}}',
      '{"error": {"class": "GenericError", "desc": "no"}}',
      '{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}',
      '{"error": null}',
      '{"error": 5}',
      '{"retur": 1}',
      '42',
      '[]',
      'null',
      '"QMP"',
      '{',
      '}{',
      '',
    ),
    fc.json({ maxDepth: 3 }),
    fc.string({ maxLength: 60 }),
  );
  /** What the server sends: before the greeting, after each command; sometimes it hangs up or never ends a line. */
  const script = fc.record({
    greeting: fc.oneof(fc.constant(GREETING), line),
    answers: fc.array(fc.array(line, { maxLength: 3 }), { maxLength: 3 }),
    ending: fc.constantFrom('stay', 'close', 'close-mid-line', 'huge-line'),
  });
  it(
    `connect and execute end in an answer or a typed error (${runs(300)} cases)`,
    async () => {
      const { createServer } = await import('node:net');
      const { QmpClient } = await import('../src/sources/qmp/qmp-client.js');
      const socket = path.join(dir, 'fake-qmp.sock');
      await fc.assert(
        fc.asyncProperty(script, async ({ greeting, answers, ending }) => {
          fs.rmSync(socket, { force: true });
          const server = createServer((peer) => {
            peer.on('error', () => undefined);
            peer.write(`${greeting}\n`);
            let turn = 0;
            peer.on('data', () => {
              const reply = answers[turn++];
              if (reply !== undefined) {
                peer.write(reply.map((l) => `${l}\n`).join(''));
                return;
              }
              if (ending === 'close') peer.end();
              else if (ending === 'close-mid-line') peer.end('{"return": {');
              else if (ending === 'huge-line') peer.write(Buffer.alloc(17 << 20, 0x20), () => peer.end());
            });
          });
          await new Promise<void>((resolve) => server.listen(socket, resolve));
          try {
            await endsWell('QMP client', async () => {
              const client = await QmpClient.connect({ path: socket }, { timeoutMs: 300 });
              try {
                await client.execute('query-status');
                await client.hmp('info mtree -f');
              } finally {
                client.close();
              }
            });
          } finally {
            await new Promise((resolve) => server.close(resolve));
          }
        }),
        { numRuns: runs(300) },
      );
    },
    600_000 * scale,
  );
});

describe('fuzz: the page-table walker', () => {
  const PAGES = 16;
  /** Entries point into the 16 pages most of the time, so walks go deep, loop and share tables. */
  const entry = fc.oneof(
    fc
      .record({ page: fc.integer({ min: 0, max: PAGES + 2 }), flags: fc.integer({ min: 0, max: 0xfff }), nx: fc.boolean() })
      .map(({ page, flags, nx }) => (BigInt(page) << 12n) | BigInt(flags) | (nx ? 1n << 63n : 0n)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constant(0n),
  );
  const vcpu = fc.record({
    cr3: fc.integer({ min: 0, max: PAGES + 1 }).map((p) => BigInt(p) << 12n),
    cr4: fc.constantFrom(0n, 1n << 4n, 1n << 5n, (1n << 5n) | (1n << 12n), (1n << 4n) | (1n << 5n)),
    efer: fc.constantFrom(0n, (1n << 8n) | (1n << 10n), 1n << 10n),
  });
  it(
    `mappings or a typed error (${runs(3000)} cases)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.integer({ min: 0, max: PAGES * 512 - 1 }), entry), { maxLength: 400 }),
          fc.array(vcpu, { minLength: 1, maxLength: 2 }),
          fc.boolean(),
          async (entries, states, qemuQuirks) => {
            const words = new Map(entries.map(([slot, value]) => [BigInt(slot) * 8n, value]));
            const memory: PhysicalMemory = {
              async u64(address) {
                return address < BigInt(PAGES * 4096) ? (words.get(address & ~7n) ?? 0n) : undefined;
              },
              async u32(address) {
                return address < BigInt(PAGES * 4096)
                  ? Number(((words.get(address & ~7n) ?? 0n) >> ((address & 4n) * 8n)) & 0xffff_ffffn)
                  : undefined;
              },
              isMemory: (address) => address < BigInt(PAGES * 4096),
            };
            const ram = [{ start: physAddr(0n), size: BigInt(PAGES * 4096), label: 'fuzz', read: async () => undefined }];
            const vcpus: Vcpu[] = states.map((s, index) => ({
              index,
              state: x86State({ cr0: 1n << 31n, cr3: s.cr3, cr4: s.cr4, efer: s.efer }),
            }));
            await endsWell('page-table walker', async () => {
              for (const m of await planPagingMappings(ram, vcpus, memory, { qemuQuirks })) expect(m.length).toBeGreaterThan(0n);
            });
          },
        ),
        { numRuns: runs(3000) },
      );
    },
    600_000 * scale,
  );
});

describe('fuzz: vmdump verify on damaged dumps', () => {
  it(
    `a report or a typed error (${runs(150)} cases per format)`,
    async () => {
      const work = fs.mkdtempSync(path.join(dir, 'verify-'));
      const machine = writeMachine(work, {
        arch: 'x86_64',
        ranges: [
          { address: 0n, size: 0x20000 },
          { address: 0x100000n, size: 0x10000 },
        ],
        vcpus: [{ rip: '0x1000' }],
        vmcoreinfo: 'OSRELEASE=6.1\n',
      });
      for (const [name, args] of [
        ['elf', []],
        ['kdump', ['--format', 'kdump-zlib']],
        ['flat', ['--format', 'kdump-snappy', '--flattened']],
      ] as const) {
        const good = path.join(work, `good.${name}`);
        expect((await runCli(['raw', machine, ...args, '-o', good])).code).toBe(0);
        const base = fs.readFileSync(good);
        const file = path.join(work, `fuzzed.${name}`);
        await fc.assert(
          fc.asyncProperty(mutation(base.length, [[0, 8192 + 4096]]), async (m) => {
            fs.writeFileSync(file, mutate(base, m));
            await endsWell(`verify ${name}`, () => verifyDumpFile(file));
          }),
          { numRuns: runs(150) },
        );
      }
    },
    600_000 * scale,
  );
});

describe('fuzz corpus (test/fuzz-corpus/cases.json)', () => {
  interface Case {
    target: string;
    why: string;
    mutation: Mutation;
    /** What must happen: `accepted`, or the VmdumpError code it must end in. */
    outcome: 'accepted' | VmdumpErrorCode;
  }
  /** The outcome of `work`: accepted, or the code of the VmdumpError it ended in (anything else fails the test). */
  const outcomeOf = async (work: () => Promise<unknown>): Promise<string> => {
    let outcome = 'accepted';
    await endsWell('corpus', () =>
      work().catch((error: unknown) => {
        if (isVmdumpError(error)) outcome = error.code;
        throw error;
      }),
    );
    return outcome;
  };
  const { cases } = JSON.parse(fs.readFileSync(path.join(corpus, 'cases.json'), 'utf8')) as { cases: Case[] };
  /** Negative positions count from the end of the base input. */
  const placed = (m: Mutation, size: number): Mutation => {
    const at = (n: number): number => (n < 0 ? size + n : n);
    return m.kind === 'flip' ? { ...m, at: m.at.map(at) } : { ...m, at: at(m.at) };
  };
  it.each(cases)('$target: $why ($outcome)', async ({ target, mutation: m, outcome }) => {
    const work = fs.mkdtempSync(path.join(dir, 'corpus-'));
    if (target === 'notes') {
      const notes = fs.readFileSync(path.join(corpus, 'notes-core-q35.elf'));
      expect(await outcomeOf(async () => decodeQemuNotes(mutate(notes, placed(m, notes.length))))).toBe(outcome);
    } else if (target === 'saved') {
      const stream = brotliDecompressSync(
        fs.readFileSync(path.join(import.meta.dirname, '..', 'examples', 'tiny-q35.vm.state.br')),
      );
      const file = path.join(work, 'vm.state');
      fs.writeFileSync(file, mutate(stream, placed(m, stream.length)));
      expect(await outcomeOf(async () => dumpWhole(await openSavedVm(file)))).toBe(outcome);
    } else {
      const format = target.replace('verify-', '');
      const machine = writeMachine(work, {
        arch: 'x86_64',
        ranges: [{ address: 0n, size: 0x20000 }],
        vcpus: [{ rip: '0x1000' }],
        vmcoreinfo: 'OSRELEASE=6.1\n',
      });
      const args = { elf: [], kdump: ['--format', 'kdump-zlib'], flat: ['--format', 'kdump-zlib', '--flattened'] }[format]!;
      const good = path.join(work, 'good');
      expect((await runCli(['raw', machine, ...args, '-o', good])).code).toBe(0);
      const base = fs.readFileSync(good);
      fs.writeFileSync(good, mutate(base, placed(m, base.length)));
      expect(await outcomeOf(() => verifyDumpFile(good))).toBe(outcome);
    }
  });
});

describe('fuzz: bounds', () => {
  it('memory stayed bounded across every case', () => {
    console.log(
      `fuzz cases: ${JSON.stringify(counted)}; total ${Object.values(counted).reduce((a, b) => a + b, 0)}; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    );
    // Measured during this file's cases: with no case run, there is nothing to judge.
    expect(Object.values(counted).reduce((a, b) => a + b, 0)).toBeGreaterThan(1000);
    expect(peakRss).toBeLessThan(1.5 * 2 ** 30);
  });
});
