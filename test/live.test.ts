/**
 * The live source against real QEMU: the dump equals QEMU's own dump-guest-memory of the same
 * paused state (the tiny guests halt with interrupts off, so their state does not change between
 * vmdump's pause and the test's), and the VM is handed back in the run state it had, on success
 * and on every failure.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, spawnCliUntil, tempDir } from './helpers/machines.js';
import {
  buildLinuxGuest,
  buildTinyGuests,
  startGuest,
  QEMU,
  type GuestConfig,
  type RunningGuest,
  type TinyGuests,
  linuxGuestConfig,
} from '../scripts/qemu-harness.js';
import { hasTool, itWithTool, run, itWithTools, mayBootQemu } from './helpers/tools.js';
import { openLiveVm } from '../src/sources/live/live-source.js';
import { QmpClient } from '../src/sources/qmp/qmp-client.js';
import { expectSameFile } from './helpers/same-file.js';

const qemuIt = itWithTool(QEMU, 'qemu-system-x86');
const dir = tempDir('vmdump-live-');
let guests: TinyGuests;
beforeAll(() => {
  if (hasTool('as')) guests = buildTinyGuests();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A guest with a second QMP socket for vmdump (QMP serves one client per socket). */
async function guestWithVmdumpSocket(
  name: string,
  config: Omit<GuestConfig, 'kernel'> & { bits: 32 | 64 },
): Promise<{ guest: RunningGuest; socket: string; work: string }> {
  const work = path.join(dir, name);
  fs.mkdirSync(work, { recursive: true });
  const socket = path.join(work, 'vmdump.sock');
  const guest = await startGuest(
    {
      ...config,
      kernel: config.bits === 64 ? guests.tiny64 : guests.tiny32,
      extra: [...(config.extra ?? []), '-qmp', `unix:${socket},server=on,wait=off`],
    },
    work,
  );
  return { guest, socket, work };
}

async function status(guest: RunningGuest): Promise<string> {
  return (await guest.qmp.execute<{ status: string }>('query-status')).status;
}

async function qemuDump(guest: RunningGuest, file: string): Promise<void> {
  await guest.qmp.execute('stop');
  await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${file}` }, { timeoutMs: 120_000 });
}

const outputs = (work: string): string[] =>
  fs.readdirSync(work).filter((f) => f.endsWith('.core') || f.includes('vmdump-partial'));

describe('byte-identical to QEMU, and the VM keeps its run state', () => {
  qemuIt.each([
    { name: 'q35, 64-bit, 2 vCPUs, anonymous RAM (pmemsave)', machine: 'q35', bits: 64, smp: 2, backend: false },
    { name: 'pc, 32-bit, 1 vCPU, share=on memory-backend-file', machine: 'pc', bits: 32, smp: 1, backend: true },
    {
      name: 'q35, 64-bit, 2 vCPUs, --live (migration into vmdump)',
      machine: 'q35',
      bits: 64,
      smp: 2,
      backend: false,
      live: true,
    },
  ] as const)(
    '$name',
    async ({ name, machine, bits, smp, backend, ...rest }) => {
      const live = 'live' in rest ? ['--live'] : [];
      const work = path.join(dir, name.replace(/\W+/g, '-'));
      fs.mkdirSync(work, { recursive: true });
      const extra = backend
        ? [
            '-machine',
            'memory-backend=m0',
            '-object',
            `memory-backend-file,id=m0,size=128M,mem-path=${path.join(work, 'ram.backend')},share=on`,
          ]
        : [];
      const { guest, socket } = await guestWithVmdumpSocket(path.basename(work), { machine, memory: '128M', smp, bits, extra });
      try {
        expect(await status(guest)).toBe('running');
        const ours = path.join(work, 'vmdump.core');
        const result = await runCli(['qmp', socket, ...live, '--layout', 'qemu', '-o', ours]);
        expect(result.stderr).toMatch(/wrote/);
        expect(result.code).toBe(0);
        expect(await status(guest)).toBe('running');
        if (backend) {
          // Not vacuous: main RAM really comes from the backend file, the ROMs and VRAM through pmemsave.
          const live = await openLiveVm({ path: socket });
          expect(live.ram.map((r) => r.label.replace(/\(.*\)/, '(file)'))).toEqual(
            expect.arrayContaining(['m0 (file)', 'pc.bios via pmemsave']),
          );
          await live.close();
          expect(await status(guest)).toBe('running');
        }
        await qemuDump(guest, path.join(work, 'qemu.core'));
        expectSameFile(ours, path.join(work, 'qemu.core'));
        // A VM that was paused stays paused.
        const again = await runCli(['qmp', socket, '-o', path.join(work, 'paused.core')]);
        expect(again.code).toBe(0);
        expect(await status(guest)).toBe('paused');
      } finally {
        await guest.quit();
      }
    },
    120_000,
  );
});

describe('--paging through the live source', () => {
  qemuIt(
    'the 4-level paging guest: byte-identical to QEMU paging=true (page tables read by one-off pmemsaves)',
    async () => {
      const work = path.join(dir, 'live-paging');
      fs.mkdirSync(work, { recursive: true });
      const socket = path.join(work, 'vmdump.sock');
      const guest = await startGuest(
        {
          machine: 'q35',
          memory: '128M',
          smp: 1,
          kernel: guests.paging4,
          extra: ['-cpu', 'max', '-qmp', `unix:${socket},server=on,wait=off`],
        },
        work,
      );
      try {
        const ours = path.join(work, 'live.core');
        expect((await runCli(['qmp', socket, '--paging', '--layout', 'qemu', '-o', ours])).code).toBe(0);
        expect(await status(guest)).toBe('running');
        await guest.qmp.execute('stop');
        await guest.qmp.execute('dump-guest-memory', { paging: true, protocol: `file:${path.join(work, 'qemu.core')}` });
        expectSameFile(ours, path.join(work, 'qemu.core'));
      } finally {
        await guest.quit();
      }
    },
    120_000,
  );
});

describe('faults: one line, non-zero exit, no output file, the VM running again', () => {
  let setup: { guest: RunningGuest; socket: string; work: string };
  beforeAll(async () => {
    if (mayBootQemu(QEMU)) setup = await guestWithVmdumpSocket('faults', { machine: 'q35', memory: '1536M', smp: 1, bits: 64 });
  }, 60_000);
  afterAll(async () => {
    await setup?.guest.quit();
  });

  qemuIt(
    'the output pipe closes early',
    async () => {
      const shell = run('bash', [
        '-c',
        `'${process.execPath}' '${CLI}' qmp '${setup.socket}' 2>'${setup.work}/err' | head -c 1000 > /dev/null; echo \${PIPESTATUS[0]}`,
      ]);
      expect(shell.stdout.trim()).toBe('4');
      expect(fs.readFileSync(path.join(setup.work, 'err'), 'utf8')).toMatch(
        /^vmdump: error: the output was closed before the dump was complete \(EPIPE\) \(stdout\)\n$/,
      );
      expect(await status(setup.guest)).toBe('running');
    },
    60_000,
  );

  qemuIt(
    'the destination cannot be written',
    async () => {
      const result = await runCli(['qmp', setup.socket, '-o', path.join(setup.work, 'missing-dir', 'x.core')]);
      expect([result.code, result.stderr.trim().split('\n').length]).toEqual([4, 1]);
      expect(await status(setup.guest)).toBe('running');
    },
    60_000,
  );

  qemuIt.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s mid-dump',
    async (signal, exitCode) => {
      const out = path.join(setup.work, `${signal}.core`);
      const { child, exited } = await spawnCliUntil(['qmp', setup.socket, '-o', out]);
      child.kill(signal);
      const { code, stderr } = await exited;
      expect(code).toBe(exitCode);
      expect(stderr).toMatch(new RegExp(`vmdump: error: dump cancelled: interrupted by ${signal}`));
      expect(outputs(setup.work)).toEqual([]);
      expect(await status(setup.guest)).toBe('running');
    },
    60_000,
  );

  qemuIt(
    'a QMP socket another client holds: a clear "busy" error instead of a hang',
    async () => {
      const holder = await QmpClient.connect({ path: setup.socket });
      try {
        await expect(QmpClient.connect({ path: setup.socket }, { timeoutMs: 1500 })).rejects.toThrow(
          /sent no greeting within 1500 ms: another client is probably connected/,
        );
      } finally {
        holder.close();
      }
      expect(await status(setup.guest)).toBe('running');
    },
    60_000,
  );

  qemuIt(
    'the QMP connection is cut mid-dump',
    async () => {
      // vmdump talks to QEMU through a TCP proxy the test cuts once memory is flowing.
      const connections: net.Socket[] = [];
      const proxy = net.createServer((client) => {
        const upstream = net.connect({ path: setup.socket });
        connections.push(client, upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const port = (proxy.address() as net.AddressInfo).port;
      const out = path.join(setup.work, 'cut.core');
      const { exited } = await spawnCliUntil(['qmp', `127.0.0.1:${port}`, '-o', out]);
      for (const socket of connections) socket.destroy();
      const { code, stderr } = await exited;
      proxy.close();
      expect(code).toBe(3);
      expect(
        stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('{')),
      ).toHaveLength(1);
      expect(stderr).toMatch(/vmdump: error: .*(QMP|pmemsave)/);
      expect(outputs(setup.work)).toEqual([]);
      expect(await status(setup.guest)).toBe('running');
    },
    60_000,
  );
});

describe('faults with kdump output and a dying QEMU', () => {
  qemuIt(
    'kdump through QMP: the pipe closes early (EPIPE, exit 4), and SIGINT mid-dump (exit 130); the VM runs again',
    async () => {
      const setup = await guestWithVmdumpSocket('kdump-faults', { machine: 'q35', memory: '512M', smp: 1, bits: 64 });
      try {
        const shell = run('bash', [
          '-c',
          // `timeout`: a vmdump that hangs after the pipe closes fails here (124) instead of holding the run.
          `timeout 60 '${process.execPath}' '${CLI}' qmp '${setup.socket}' --format kdump-zlib 2>'${setup.work}/err' | head -c 1000 > /dev/null; echo \${PIPESTATUS[0]}`,
        ]);
        expect(shell.stdout.trim()).toBe('4');
        expect(fs.readFileSync(path.join(setup.work, 'err'), 'utf8')).toMatch(
          /^vmdump: error: the output was closed before the dump was complete \(EPIPE\) \(stdout\)\n$/,
        );
        expect(await status(setup.guest)).toBe('running');
        const out = path.join(setup.work, 'int.core');
        const { child, exited } = await spawnCliUntil([
          'qmp',
          setup.socket,
          '--format',
          'kdump-zlib',
          '--threads',
          '1',
          '-o',
          out,
        ]);
        child.kill('SIGINT');
        expect((await exited).code).toBe(130);
        expect(outputs(setup.work)).toEqual([]);
        expect(await status(setup.guest)).toBe('running');
      } finally {
        await setup.guest.quit();
      }
    },
    120_000,
  );

  qemuIt(
    'QEMU killed mid-dump: one line, a non-zero exit, no output file',
    async () => {
      const setup = await guestWithVmdumpSocket('killed', { machine: 'q35', memory: '1536M', smp: 1, bits: 64 });
      const out = path.join(setup.work, 'killed.core');
      const { exited } = await spawnCliUntil(['qmp', setup.socket, '-o', out]);
      setup.guest.process.kill('SIGKILL');
      const { code, stderr } = await exited;
      expect(code).toBe(3);
      expect(
        stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('{')),
      ).toHaveLength(1);
      expect(stderr).toMatch(/vmdump: error: /);
      expect(outputs(setup.work)).toEqual([]);
      await setup.guest.quit();
    },
    120_000,
  );
});

describe('QMP endpoints that are not there', () => {
  it('a missing socket and a closed TCP port: one line, exit 3', async () => {
    const missing = await runCli(['qmp', path.join(dir, 'no-such.sock'), '-o', path.join(dir, 'x.core')]);
    expect([missing.code, missing.stderr.trim()]).toEqual([
      3,
      expect.stringMatching(/^vmdump: error: cannot connect to QMP at \S+no-such\.sock: no such file or directory \(ENOENT\)$/),
    ]);
    const refused = await runCli(['qmp', '127.0.0.1:1', '-o', path.join(dir, 'x.core')]);
    expect([refused.code, refused.stderr.trim()]).toEqual([
      3,
      'vmdump: error: cannot connect to QMP at 127.0.0.1:1: connection refused (ECONNREFUSED)',
    ]);
  });
});

describe('--live: QEMU pauses the VM only for the switchover', () => {
  itWithTools([
    [QEMU, 'qemu-system-x86'],
    ['gdb', 'gdb'],
    ['readelf', 'binutils'],
    ['makedumpfile', 'makedumpfile'],
  ])(
    'a running 2 GiB Linux guest is paused for under a second, and the dump passes the readers',
    async () => {
      const linux = buildLinuxGuest();
      const work = path.join(dir, 'live-linux');
      fs.mkdirSync(work, { recursive: true });
      const socket = path.join(work, 'vmdump.sock');
      const guest = await startGuest(
        linuxGuestConfig(linux, { memory: '2048M', kaslr: false, extra: ['-qmp', `unix:${socket},server=on,wait=off`] }),
        work,
      );
      try {
        const core = path.join(work, 'live.core');
        const result = await runCli(['qmp', socket, '--live', '-o', core]);
        expect(result.code).toBe(0);
        const paused = Number(/paused for (\d+) ms/.exec(result.stderr)?.[1]);
        expect(paused).toBeGreaterThan(0);
        expect(paused).toBeLessThan(1000);
        expect(await status(guest)).toBe('running');
        const readelf = run('readelf', ['-l', '-n', '-W', core]);
        expect(readelf.stderr).toBe('');
        expect(readelf.stdout).toMatch(/VMCOREINFO/);
        const serial = guest.serialText();
        // The default layout is /proc/vmcore's: the kernel's own virtual addresses.
        const banner = BigInt(`0x${/VMDUMP-LINUX-BANNER=([0-9a-f]+)/.exec(serial)![1]}`);
        expect(run('gdb', ['-batch', '-nx', '-ex', `x/s 0x${banner.toString(16)}`, '-c', core]).stdout).toMatch(
          /Linux version 6\./,
        );
        {
          const made = run('makedumpfile', ['--dump-dmesg', core, path.join(work, 'dmesg.txt')]);
          expect(made.stdout + made.stderr).toMatch(/makedumpfile Completed/);
          expect(fs.readFileSync(path.join(work, 'dmesg.txt'), 'utf8')).toMatch(/VMDUMP-KMSG-MARKER/);
        }
      } finally {
        await guest.quit();
        fs.rmSync(work, { recursive: true, force: true });
      }
    },
    300_000,
  );

  qemuIt(
    "a VM set up for its owner's migrations (xbzrle, multifd, a bandwidth cap): --live turns them off for vmdump and puts them back",
    async () => {
      const { guest, socket, work } = await guestWithVmdumpSocket('live-settings', {
        machine: 'q35',
        memory: '128M',
        smp: 2,
        bits: 64,
      });
      try {
        const owner = [
          { capability: 'xbzrle', state: true },
          { capability: 'multifd', state: true },
        ];
        await guest.qmp.execute('migrate-set-capabilities', { capabilities: owner });
        await guest.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 12_345_678 });
        const core = path.join(work, 'live.core');
        const result = await runCli(['qmp', socket, '--live', '--layout', 'qemu', '-o', core]);
        expect([result.code, result.stderr]).toEqual([0, expect.stringContaining('and is running again')]);
        expect(await status(guest)).toBe('running');
        const capabilities = await guest.qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
        expect(capabilities.filter((c) => c.capability === 'xbzrle' || c.capability === 'multifd')).toEqual(
          expect.arrayContaining(owner),
        );
        expect((await guest.qmp.execute<{ 'max-bandwidth': number }>('query-migrate-parameters'))['max-bandwidth']).toBe(
          12_345_678,
        );
        // The tiny guest idles in hlt: its memory is the same when QEMU dumps it now.
        const qemu = path.join(work, 'qemu.core');
        await qemuDump(guest, qemu);
        expectSameFile(core, qemu);
      } finally {
        await guest.quit();
      }
    },
    120_000,
  );

  qemuIt(
    'a VM with a migration blocker: says so, points to the default mode, stays running',
    async () => {
      const work = path.join(dir, 'blocked');
      fs.mkdirSync(work, { recursive: true });
      // ivshmem without master=on blocks migration, as a passed-through device would.
      const { guest, socket } = await guestWithVmdumpSocket('blocked', {
        machine: 'q35',
        memory: '128M',
        smp: 1,
        bits: 64,
        extra: [
          '-object',
          `memory-backend-file,id=shm,size=1M,mem-path=${path.join(work, 'shm')},share=on`,
          '-device',
          'ivshmem-plain,memdev=shm',
        ],
      });
      try {
        const result = await runCli(['qmp', socket, '--live', '-o', path.join(work, 'x.core')]);
        expect(result.code).toBe(3);
        expect(result.stderr).toMatch(
          /^vmdump: error: this VM cannot be migrated, so --live cannot be used \(Migration is disabled .*ivshmem.*\); run vmdump qmp without --live/,
        );
        expect(await status(guest)).toBe('running');
        expect(outputs(work)).toEqual([]);
      } finally {
        await guest.quit();
      }
    },
    120_000,
  );
});
