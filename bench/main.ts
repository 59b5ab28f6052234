/**
 * `npm run bench`: vmdump against the reference tools in the same run, on the same image.
 *
 *   vmdump → /dev/null   vs  cat IMAGE > /dev/null
 *   vmdump → file        vs  cat IMAGE > file
 *   vmdump --gzip → file vs  gzip -6 -c IMAGE > file
 *   vmdump saved → file  vs  QEMU dump-guest-memory of the same paused guest (the tiny test
 *                            guest whose RAM is a private mapping of IMAGE, so every page counts),
 *                            and vs the floor: cat of the stream + dd of the dump's size
 *   the same for a 512 MiB mostly-zero guest (BENCH_ONLY=speed: these rows alone)
 *   vmdump qmp → file, vmdump qmp --live → file (same guest, running): time and guest pause,
 *                            beside QEMU's dump, which keeps the guest paused throughout
 *   vmdump saved --paging → file  vs  QEMU dump-guest-memory paging=true (the Linux test guest,
 *                            1 GiB: page-table walk and merge on a real kernel's tables)
 *   vmdump qmp|saved --format kdump-* → file  vs  QEMU dump-guest-memory format=kdump-zlib of
 *                            the same paused guest: BENCH_KDUMP_GIB (default 1.5) GiB of RAM, the
 *                            first 3/4 real file contents (/usr: programs, libraries, text),
 *                            the rest zero. Sizes are compared too.
 *   vmdump saved on QEMU 10.0's plain stream and mapped-ram file of the tiny guest on IMAGE  vs
 *                            QEMU 10's own dump-guest-memory (BENCH_ONLY=qemu10: these rows alone)
 *   vmdump qmp|saved on the aarch64 and s390x Linux test guests (512 MiB, paused)  vs  QEMU's
 *                            ELF and kdump-zlib dumps of them (BENCH_ONLY=arches: these rows alone)
 *   vmdump qmp|saved -d 31 --format kdump-zlib  vs  the two-pass pipeline: QEMU dump-guest-memory,
 *                            then makedumpfile -c -d 31 (the filled Linux guest, BENCH_LEVELS_MIB
 *                            MiB, default 2048, RAM shared in /dev/shm so vmdump qmp reads it;
 *                            BENCH_ONLY=levels: these rows alone). makedumpfile 1.7.2 cannot read
 *                            QEMU 7.2's ELF ("Can't get the number of PT_LOAD"), so its pass runs
 *                            on vmdump's full dump of the same paused guest, which is the same
 *                            size; the reference time is QEMU's dump plus that pass.
 *
 * The image (BENCH_GIB GiB, default 2) mixes what guest RAM holds: zero pages, text-like
 * pages and random pages, so neither the reads nor gzip meet only holes. Each case runs
 * twice; the better run counts. Peak RSS of vmdump comes from its own `done` line.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildLinuxGuest,
  buildTinyGuests,
  foreignLinuxGuestConfig,
  linuxGuestConfig,
  qemu10Root,
  saveStream,
  startGuest,
} from '../scripts/qemu-harness.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const GiB = 1024 ** 3;
const size = Number(process.env.BENCH_GIB ?? '2') * GiB;
const dir = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'vmdump-bench-'));

function makeImage(file: string): void {
  const chunk = Buffer.alloc(4 << 20);
  const fd = fs.openSync(file, 'w');
  for (let at = 0; at < size; at += chunk.length) {
    for (let page = 0; page < chunk.length; page += 4096) {
      const kind = ((at + page) / 4096) % 4;
      const view = chunk.subarray(page, page + 4096);
      if (kind === 0) view.fill(0);
      else if (kind === 1) randomFillSync(view);
      else view.write(`page ${at + page} `.repeat(256), 'latin1');
    }
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
}

interface Measured {
  seconds: number;
  peakRss?: number;
  outputBytes?: number;
}

function timeShell(command: string): Measured {
  const started = performance.now();
  const result = spawnSync('bash', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  return { seconds: (performance.now() - started) / 1000 };
}

function timeVmdump(args: string[]): Measured {
  const started = performance.now();
  const result = spawnSync(process.execPath, [CLI, ...args, '--progress=json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`vmdump ${args.join(' ')} failed: ${result.stderr}`);
  const done = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number };
  return { seconds, peakRss: done.peakRssBytes };
}

function best(run: () => Measured, cleanup: () => void = () => undefined): Measured {
  const runs = [0, 1].map(() => {
    const m = run();
    cleanup();
    return m;
  });
  return runs.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
}

const rate = (m: Measured, bytes = size): string => `${(bytes / m.seconds / 1e9).toFixed(2)} GB/s`;
const mib = (bytes: number | undefined): string => (bytes === undefined ? '' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

interface Row {
  name: string;
  ours: Measured;
  refName: string;
  ref: Measured;
  pause?: string;
  bytes?: number;
}

/** One vmdump run against the guest's second QMP socket; the pause comes from vmdump's own report. */
function timeVmdumpLive(args: string[]): Measured & { pausedMs?: number } {
  const started = performance.now();
  const result = spawnSync(process.execPath, [CLI, ...args, '--progress=json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`vmdump ${args.join(' ')} failed: ${result.stderr}`);
  const done = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number };
  const paused = /paused for (\d+) ms/.exec(result.stderr);
  return {
    seconds: (performance.now() - started) / 1000,
    peakRss: done.peakRssBytes,
    ...(paused ? { pausedMs: Number(paused[1]) } : {}),
  };
}

/**
 * The tiny guest whose RAM is a private mapping of IMAGE (every page non-zero where IMAGE is):
 * vmdump qmp --live and vmdump qmp while it runs, QEMU's dump-guest-memory of it paused, and
 * vmdump saved on a migration stream of that paused state.
 */
async function qemuRows(image: string, out: string): Promise<Row[]> {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v as'], { stdio: 'ignore' }).status !== 0) {
    console.log('(QEMU cases skipped: qemu-system-x86_64 or binutils missing)');
    return [];
  }
  const { tiny64 } = buildTinyGuests();
  const mib = size / 2 ** 20;
  const work = path.join(dir, 'guest');
  const socket = path.join(work, 'vmdump.sock');
  const guest = await startGuest(
    {
      machine: 'q35',
      memory: `${mib}M`,
      smp: 1,
      kernel: tiny64,
      extra: [
        '-machine',
        'memory-backend=m0',
        '-object',
        `memory-backend-file,id=m0,size=${mib}M,mem-path=${image},share=off`,
        '-qmp',
        `unix:${socket},server=on,wait=off`,
      ],
    },
    work,
  );
  const stream = path.join(dir, 'vm.state');
  const rm = () => fs.rmSync(out, { force: true });
  let live: Measured & { pausedMs?: number };
  let paused: Measured;
  let qemuDump: Measured;
  try {
    live = timeVmdumpLive(['qmp', socket, '--live', '-o', out]);
    rm();
    paused = timeVmdumpLive(['qmp', socket, '-o', out]);
    rm();
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${out}` }, { timeoutMs: 3_600_000 });
    qemuDump = { seconds: (performance.now() - started) / 1000 };
    rm();
    await saveStream(guest, stream);
  } finally {
    await guest.quit();
  }
  const saved = best(() => timeVmdump(['saved', stream, '-o', out]), rm);
  const floor = best(() => timeFloor(stream, out), rm);
  const qemuPause = `${(qemuDump.seconds * 1000).toFixed(0)} ms`;
  return [
    { name: 'vmdump saved → file', ours: saved, refName: 'QEMU dump-guest-memory', ref: qemuDump },
    { name: 'vmdump saved → file', ours: saved, refName: 'floor: cat + dd', ref: floor, pause: floorNote(stream, floor) },
    {
      name: 'vmdump qmp → file',
      ours: paused,
      refName: 'QEMU dump-guest-memory',
      ref: qemuDump,
      pause: `guest paused ${(paused.seconds * 1000).toFixed(0)} ms (whole dump) vs QEMU ${qemuPause}`,
    },
    {
      name: 'vmdump qmp --live',
      ours: live,
      refName: 'QEMU dump-guest-memory',
      ref: qemuDump,
      pause: `guest paused ${live.pausedMs ?? '?'} ms (switchover) vs QEMU ${qemuPause}`,
    },
  ];
}

/**
 * QEMU 10.0 (Debian 13, in the test root through chroot, the bench folder bind-mounted at the same
 * path): the tiny guest on IMAGE, QEMU 10's own dump of it paused, and vmdump on a plain stream and
 * on a mapped-ram file of that state (two boots: QEMU migrates a paused VM once; the guest's RAM is
 * a private mapping of IMAGE, the same in both). BENCH_ONLY=qemu10 runs these rows alone.
 */
async function qemu10Rows(image: string, out: string): Promise<Row[]> {
  const made = qemu10Root();
  if ('missing' in made) {
    console.log(`(QEMU 10 cases skipped: ${made.missing})`);
    return [];
  }
  const inRoot = path.join(made.root, dir);
  fs.mkdirSync(inRoot, { recursive: true });
  if (spawnSync('mount', ['--bind', dir, inRoot]).status !== 0) throw new Error(`cannot bind ${dir} into ${made.root}`);
  try {
    const { tiny64 } = buildTinyGuests();
    const kernel = path.join(dir, 'tiny64.elf');
    fs.copyFileSync(tiny64, kernel);
    const memoryMib = size / 2 ** 20;
    const boot = (name: string) =>
      startGuest(
        {
          root: made.root,
          machine: 'q35',
          memory: `${memoryMib}M`,
          smp: 1,
          kernel,
          extra: [
            '-machine',
            'memory-backend=m0',
            '-object',
            `memory-backend-file,id=m0,size=${memoryMib}M,mem-path=${image},share=off`,
          ],
        },
        path.join(dir, name),
      );
    const [stream, mapped] = [path.join(dir, 'vm10.state'), path.join(dir, 'vm10.mapped-ram')];
    let qemuDump: Measured;
    const first = await boot('qemu10-stream');
    try {
      await first.qmp.execute('stop');
      const started = performance.now();
      await first.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${out}` }, { timeoutMs: 3_600_000 });
      qemuDump = { seconds: (performance.now() - started) / 1000, outputBytes: fs.statSync(out).size };
      fs.rmSync(out);
      await saveStream(first, stream);
    } finally {
      await first.quit();
    }
    const second = await boot('qemu10-mapped');
    try {
      await second.qmp.execute('stop');
      await saveStream(second, mapped, { mappedRam: true });
    } finally {
      await second.quit();
    }
    const rm = () => fs.rmSync(out, { force: true });
    const row = (name: string, file: string): Row => ({
      name,
      ours: best(() => timeVmdump(['saved', file, '-o', out]), rm),
      refName: 'QEMU 10 dump-guest-memory',
      ref: qemuDump,
      pause: `input ${mib(fs.statSync(file).size)} (${mib(fs.statSync(file).blocks * 512)} allocated)`,
    });
    return [row('saved QEMU 10 stream', stream), row('saved QEMU 10 mapped-ram', mapped)];
  } finally {
    spawnSync('umount', [inRoot]);
    fs.rmdirSync(inRoot);
  }
}

/**
 * The floor for a saved-VM dump to a file: reading the stream once (`cat` to /dev/null) plus
 * writing the dump's size (`dd` of zeros to a file, every byte). `out` holds vmdump's dump.
 */
function timeFloor(stream: string, out: string): Measured {
  if (!fs.existsSync(out)) timeVmdump(['saved', stream, '-o', out]);
  const mibs = Math.ceil(fs.statSync(out).size / 2 ** 20);
  fs.rmSync(out);
  return timeShell(`cat '${stream}' > /dev/null && dd if=/dev/zero of='${out}' bs=1M count=${mibs} status=none`);
}

const floorNote = (stream: string, floor: Measured): string =>
  `floor = cat of the ${mib(fs.statSync(stream).size)} stream + dd of the dump's size: ${floor.seconds.toFixed(2)} s`;

/**
 * A 512 MiB guest whose RAM is mostly zero (16 MiB of random data in a sparse image), paused:
 * QEMU's dump against vmdump saved on a stream of it, and the floor.
 */
async function zeroGuestRows(out: string): Promise<Row[]> {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v as'], { stdio: 'ignore' }).status !== 0) return [];
  const image = path.join(dir, 'zero.img');
  const fd = fs.openSync(image, 'w');
  fs.writeSync(fd, randomFillSync(Buffer.alloc(16 << 20)), 0, 16 << 20, 64 << 20);
  fs.ftruncateSync(fd, 512 << 20);
  fs.closeSync(fd);
  const work = path.join(dir, 'zero-guest');
  const guest = await startGuest(
    {
      machine: 'q35',
      memory: '512M',
      smp: 1,
      kernel: buildTinyGuests().tiny64,
      extra: ['-machine', 'memory-backend=m0', '-object', `memory-backend-file,id=m0,size=512M,mem-path=${image},share=off`],
    },
    work,
  );
  const stream = path.join(dir, 'zero.state');
  let qemuDump: Measured;
  try {
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${out}` }, { timeoutMs: 3_600_000 });
    qemuDump = { seconds: (performance.now() - started) / 1000 };
    fs.rmSync(out);
    await saveStream(guest, stream);
  } finally {
    await guest.quit();
  }
  const rm = () => fs.rmSync(out, { force: true });
  const saved = best(() => timeVmdump(['saved', stream, '-o', out]), rm);
  const floor = best(() => timeFloor(stream, out), rm);
  fs.rmSync(image);
  return [
    { name: 'saved 512 MiB zero', ours: saved, refName: 'QEMU dump-guest-memory', ref: qemuDump, bytes: 512 << 20 },
    {
      name: 'saved 512 MiB zero',
      ours: saved,
      refName: 'floor: cat + dd',
      ref: floor,
      bytes: 512 << 20,
      pause: floorNote(stream, floor),
    },
  ];
}

/** The Linux test guest: QEMU's paging=true dump vs vmdump saved --paging on a stream of the same paused state. */
async function linuxPagingRow(out: string): Promise<Row[]> {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v apt-get'], { stdio: 'ignore' }).status !== 0) return [];
  const linux = buildLinuxGuest();
  const guest = await startGuest(
    {
      machine: 'q35',
      memory: '1024M',
      smp: 2,
      kernel: linux.kernel,
      initrd: linux.initrd,
      append: 'console=ttyS0',
      extra: ['-device', 'vmcoreinfo'],
      ready: { text: 'VMDUMP-LINUX-READY', on: 'serial' },
    },
    path.join(dir, 'linux'),
  );
  const stream = path.join(dir, 'linux.state');
  let qemuDump: Measured;
  try {
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute('dump-guest-memory', { paging: true, protocol: `file:${out}` }, { timeoutMs: 3_600_000 });
    qemuDump = { seconds: (performance.now() - started) / 1000 };
    fs.rmSync(out, { force: true });
    await saveStream(guest, stream);
  } finally {
    await guest.quit();
  }
  const ours = best(
    () => timeVmdump(['saved', stream, '--paging', '-o', out]),
    () => fs.rmSync(out, { force: true }),
  );
  return [{ name: 'Linux 1 GiB --paging', ours, refName: 'QEMU paging=true', ref: qemuDump, bytes: 2 ** 30 }];
}

/**
 * The aarch64 and s390x Linux test guests (512 MiB, booted, paused): QEMU's ELF and kdump-zlib
 * dumps against vmdump qmp (the live source, notes from QEMU, RAM through pmemsave) and vmdump
 * saved (a stream of the same paused state), ELF and kdump-zlib.
 */
async function archRows(out: string): Promise<Row[]> {
  const arches = [
    { debian: 'arm64', qemu: 'qemu-system-aarch64', machine: 'virt', console: 'ttyAMA0', extra: ['-device', 'vmcoreinfo'] },
    { debian: 's390x', qemu: 'qemu-system-s390x', machine: 's390-ccw-virtio', console: 'ttysclp0', extra: [] },
  ] as const;
  const rows: Row[] = [];
  const rm = () => fs.rmSync(out, { force: true });
  for (const a of arches) {
    if (spawnSync('sh', ['-c', `command -v ${a.qemu} && command -v apt-get`], { stdio: 'ignore' }).status !== 0) {
      console.log(`(${a.debian} cases skipped: ${a.qemu} missing)`);
      continue;
    }
    const linux = buildLinuxGuest(a.debian);
    const work = path.join(dir, a.debian);
    const socket = path.join(work, 'vmdump.sock');
    const guest = await startGuest(
      foreignLinuxGuestConfig(a, linux, [...a.extra, '-qmp', `unix:${socket},server=on,wait=off`]),
      work,
    );
    const stream = path.join(work, 'vm.state');
    const qemu: Partial<Record<'elf' | 'kdump-zlib', Measured>> = {};
    const live: Partial<Record<'elf' | 'kdump-zlib', Measured>> = {};
    try {
      await guest.qmp.execute('stop');
      for (const format of ['elf', 'kdump-zlib'] as const) {
        const started = performance.now();
        await guest.qmp.execute(
          'dump-guest-memory',
          { paging: false, protocol: `file:${out}`, format },
          { timeoutMs: 3_600_000 },
        );
        qemu[format] = { seconds: (performance.now() - started) / 1000, outputBytes: fs.statSync(out).size };
        rm();
        live[format] = timeVmdumpLive(['qmp', socket, '--format', format, '-o', out]);
        live[format].outputBytes = fs.statSync(out).size;
        rm();
      }
      await saveStream(guest, stream);
    } finally {
      await guest.quit();
    }
    for (const format of ['elf', 'kdump-zlib'] as const) {
      const saved = best(() => {
        const m = timeVmdump(['saved', stream, '--format', format, '-o', out]);
        m.outputBytes = fs.statSync(out).size;
        return m;
      }, rm);
      const ref = qemu[format]!;
      rows.push(
        { name: `${a.debian} saved ${format}`, ours: saved, refName: `QEMU ${format}`, ref, bytes: 512 * 2 ** 20 },
        { name: `${a.debian} qmp ${format}`, ours: live[format]!, refName: `QEMU ${format}`, ref, bytes: 512 * 2 ** 20 },
      );
    }
  }
  return rows;
}

/** Guest RAM as a page cache holds it: real files from /usr, page after page, then zeros. */
function makeFileImage(file: string, bytes: number, dataBytes: number): void {
  const list = spawnSync('sh', ['-c', 'find /usr/lib /usr/share /usr/bin -type f -size +4k 2>/dev/null'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const sources = list.stdout.split('\n').filter(Boolean);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  for (let i = 0; written < dataBytes; i = (i + 1) % sources.length) {
    let content: Buffer;
    try {
      content = fs.readFileSync(sources[i]!);
    } catch {
      continue;
    }
    const pages = content.subarray(0, Math.min(content.length - (content.length % 4096), dataBytes - written));
    if (pages.length > 0) written += fs.writeSync(fd, pages);
  }
  fs.ftruncateSync(fd, bytes);
  fs.closeSync(fd);
}

/**
 * QEMU's kdump-zlib of a paused guest beside vmdump's kdump formats of the same paused guest:
 * through QMP, reading the guest's RAM from its share=on backend file as QEMU reads its own
 * RAM, and from a migration stream of the same state (which costs parsing the stream).
 */
async function kdumpRows(out: string): Promise<Row[]> {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v as'], { stdio: 'ignore' }).status !== 0) return [];
  const gib = Number(process.env.BENCH_KDUMP_GIB ?? '1.5');
  const bytes = Math.round(gib * 1024) * 2 ** 20;
  const image = path.join(dir, 'kdump-ram.img');
  process.stderr.write(`bench: writing a ${gib} GiB guest RAM image from /usr files ...\n`);
  makeFileImage(image, bytes, (bytes / 4) * 3);
  const { tiny64 } = buildTinyGuests();
  const work = path.join(dir, 'kdump-guest');
  const socket = path.join(work, 'vmdump.sock');
  const guest = await startGuest(
    {
      machine: 'q35',
      memory: `${bytes / 2 ** 20}M`,
      smp: 1,
      kernel: tiny64,
      extra: [
        '-machine',
        'memory-backend=m0',
        '-object',
        `memory-backend-file,id=m0,size=${bytes / 2 ** 20}M,mem-path=${image},share=on`,
        '-qmp',
        `unix:${socket},server=on,wait=off`,
      ],
    },
    work,
  );
  const stream = path.join(dir, 'kdump-vm.state');
  const qemuOut = `${out}.qemu-kdump`;
  const rm = (): void => fs.rmSync(out, { force: true });
  const withSize = (m: Measured): Measured => ({ ...m, outputBytes: fs.statSync(out).size });
  const codecs = ['zlib', 'zstd', 'lzo', 'snappy'] as const;
  let qemu: Measured;
  const live: Record<string, Measured> = {};
  try {
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute(
      'dump-guest-memory',
      { paging: false, protocol: `file:${qemuOut}`, format: 'kdump-zlib' },
      { timeoutMs: 3_600_000 },
    );
    qemu = { seconds: (performance.now() - started) / 1000, outputBytes: fs.statSync(qemuOut).size };
    fs.rmSync(qemuOut, { force: true });
    for (const codec of codecs)
      live[codec] = best(() => withSize(timeVmdump(['qmp', socket, '--format', `kdump-${codec}`, '-o', out])), rm);
    await saveStream(guest, stream);
  } finally {
    await guest.quit();
    fs.rmSync(image, { force: true });
  }
  const rows: Row[] = codecs.map((codec) => ({
    name: `kdump-${codec} (qmp)`,
    bytes,
    refName: 'QEMU kdump-zlib',
    ref: qemu,
    ours: live[codec]!,
  }));
  for (const codec of ['zlib', 'zstd'] as const) {
    rows.push({
      name: `kdump-${codec} (saved)`,
      bytes,
      refName: 'QEMU kdump-zlib',
      ref: qemu,
      ours: best(() => withSize(timeVmdump(['saved', stream, '--format', `kdump-${codec}`, '-o', out])), rm),
    });
  }
  fs.rmSync(stream, { force: true });
  return rows;
}

/** Dump levels (issue 19): -d 31 in one pass against QEMU's full dump followed by makedumpfile -d 31. */
async function dumpLevelRows(out: string): Promise<Row[]> {
  const tools = 'command -v qemu-system-x86_64 && command -v apt-get && command -v makedumpfile';
  if (spawnSync('sh', ['-c', tools], { stdio: 'ignore' }).status !== 0) return [];
  const mib = Number(process.env.BENCH_LEVELS_MIB ?? '2048');
  const work = path.join(dir, 'levels');
  const shared = fs.mkdtempSync('/dev/shm/vmdump-bench-');
  const socket = path.join(work, 'vmdump.sock');
  const guest = await startGuest(
    linuxGuestConfig(buildLinuxGuest(), {
      memory: `${mib}M`,
      kaslr: true,
      fill: true,
      extra: [
        '-machine',
        'memory-backend=m0',
        '-object',
        `memory-backend-file,id=m0,size=${mib}M,mem-path=${path.join(shared, 'ram')},share=on`,
        '-qmp',
        `unix:${socket},server=on,wait=off`,
      ],
    }),
    work,
  );
  const stream = path.join(dir, 'levels.state');
  const full = path.join(dir, 'levels-full.elf');
  const qemuOut = `${out}.qemu`;
  const rm = (): void => fs.rmSync(out, { force: true });
  const withSize = (m: Measured): Measured => ({ ...m, outputBytes: fs.statSync(out).size });
  let qemuDump: Measured;
  let live: Measured;
  try {
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${qemuOut}` }, { timeoutMs: 3_600_000 });
    qemuDump = { seconds: (performance.now() - started) / 1000 };
    fs.rmSync(qemuOut, { force: true });
    live = best(() => withSize(timeVmdump(['qmp', socket, '-d', '31', '--format', 'kdump-zlib', '-o', out])), rm);
    await saveStream(guest, stream);
  } finally {
    await guest.quit();
    fs.rmSync(shared, { recursive: true, force: true });
  }
  timeVmdump(['saved', stream, '-o', full]);
  const filter = best(
    () => ({ ...timeShell(`makedumpfile -c -d 31 '${full}' '${out}'`), outputBytes: fs.statSync(out).size }),
    rm,
  );
  fs.rmSync(full, { force: true });
  const ref = {
    seconds: qemuDump.seconds + filter.seconds,
    ...(filter.outputBytes === undefined ? {} : { outputBytes: filter.outputBytes }),
  };
  const saved = best(() => withSize(timeVmdump(['saved', stream, '-d', '31', '--format', 'kdump-zlib', '-o', out])), rm);
  fs.rmSync(stream, { force: true });
  const refName = 'QEMU + makedumpfile';
  const pause = `reference: QEMU's dump ${qemuDump.seconds.toFixed(2)} s + makedumpfile -c -d 31 ${filter.seconds.toFixed(2)} s`;
  return [
    { name: `-d 31 zlib (qmp) ${mib} MiB`, ours: live, refName, ref, pause, bytes: mib * 2 ** 20 },
    { name: `-d 31 zlib (saved)`, ours: saved, refName, ref, bytes: mib * 2 ** 20 },
  ];
}

async function generalRows(out: string): Promise<Row[]> {
  const image = path.join(dir, 'ram.img');
  const machine = path.join(dir, 'machine.json');
  process.stderr.write(`bench: writing a ${size / GiB} GiB image in ${dir} ...\n`);
  makeImage(image);
  fs.writeFileSync(machine, JSON.stringify({ arch: 'x86_64', ram: [{ address: 0, size, file: 'ram.img' }] }));
  timeShell(`cat '${image}' > /dev/null`); // warm the page cache for everyone alike
  const rm = () => fs.rmSync(out, { force: true });
  const rows: Row[] = [
    {
      name: 'vmdump → /dev/null',
      ours: best(() => timeVmdump(['raw', machine, '-o', '/dev/null'])),
      refName: 'cat > /dev/null',
      ref: best(() => timeShell(`cat '${image}' > /dev/null`)),
    },
    {
      name: 'vmdump → file',
      ours: best(() => timeVmdump(['raw', machine, '-o', out]), rm),
      refName: 'cat > file',
      ref: best(() => timeShell(`cat '${image}' > '${out}'`), rm),
    },
    {
      name: 'vmdump --gzip → file',
      ours: best(() => timeVmdump(['raw', machine, '--gzip', '-o', out]), rm),
      refName: 'gzip -6 -c > file',
      ref: best(() => timeShell(`gzip -6 -c '${image}' > '${out}'`), rm),
    },
    ...(await qemuRows(image, out)),
    ...(await qemu10Rows(image, out)),
    ...(await zeroGuestRows(out)),
    ...(await linuxPagingRow(out)),
  ];
  fs.rmSync(image, { force: true });
  return rows;
}

async function main(): Promise<void> {
  const out = path.join(dir, 'out');
  // BENCH_ONLY=kdump or BENCH_ONLY=arches runs those rows alone.
  const only = process.env.BENCH_ONLY;
  const rows: Row[] = only === undefined ? await generalRows(out) : [];
  if (only === 'speed') {
    // Issue 21's figures: the stream of the tiny guest on IMAGE (QEMU 7.2) and the mostly-zero guest.
    const image = path.join(dir, 'ram.img');
    makeImage(image);
    rows.push(...(await qemuRows(image, out)), ...(await zeroGuestRows(out)));
  }
  if (only === 'qemu10') {
    const image = path.join(dir, 'ram.img');
    makeImage(image);
    rows.push(...(await qemu10Rows(image, out)));
  }
  if (only === undefined || only === 'kdump') rows.push(...(await kdumpRows(out)));
  if (only === undefined || only === 'arches') rows.push(...(await archRows(out)));
  if (only === undefined || only === 'levels') rows.push(...(await dumpLevelRows(out)));
  console.log(
    `\nimage: ${size / GiB} GiB (1/4 zero, 1/4 random, 1/2 text pages); kdump guest: see kdumpRows; ${os.cpus().length} cores, node ${process.version}\n`,
  );
  console.log(
    'case                    time     throughput  peak RSS  | reference            time     throughput  | vmdump/reference',
  );
  for (const { name, ours: m, refName, ref, pause, bytes } of rows) {
    console.log(
      `${name.padEnd(22)} ${m.seconds.toFixed(2).padStart(6)} s ${rate(m, bytes).padStart(11)} ${mib(m.peakRss).padStart(9)}  | ` +
        `${refName.padEnd(22)} ${ref.seconds.toFixed(2).padStart(6)} s ${rate(ref, bytes).padStart(11)}  | ${(ref.seconds / m.seconds).toFixed(2)}× reference speed` +
        (pause === undefined ? '' : `\n${''.padEnd(24)}${pause}`) +
        (m.outputBytes === undefined || ref.outputBytes === undefined
          ? ''
          : `\n${''.padEnd(24)}output ${mib(m.outputBytes)} vs ${mib(ref.outputBytes)} (${(m.outputBytes / ref.outputBytes).toFixed(3)}× the reference's size)`),
    );
  }
}

try {
  await main();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
