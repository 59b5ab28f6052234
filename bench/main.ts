/**
 * `npm run bench`: vmdump against the reference tools in the same run, on the same image.
 *
 *   vmdump → /dev/null   vs  cat IMAGE > /dev/null
 *   vmdump → file        vs  cat IMAGE > file
 *   vmdump --gzip → file vs  gzip -6 -c IMAGE > file
 *   vmdump saved → file  vs  QEMU dump-guest-memory of the same paused guest (the tiny test
 *                            guest whose RAM is a private mapping of IMAGE, so every page counts)
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
import { buildTinyGuests, startGuest } from '../scripts/qemu-harness.js';

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

interface Measured { seconds: number; peakRss?: number }

function timeShell(command: string): Measured {
  const started = performance.now();
  const result = spawnSync('bash', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  return { seconds: (performance.now() - started) / 1000 };
}

function timeVmdump(args: string[]): Measured {
  const started = performance.now();
  const result = spawnSync(process.execPath, [CLI, ...args, '--progress=json'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`vmdump ${args.join(' ')} failed: ${result.stderr}`);
  const done = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number };
  return { seconds, peakRss: done.peakRssBytes };
}

function best(run: () => Measured, cleanup: () => void = () => undefined): Measured {
  const runs = [0, 1].map(() => { const m = run(); cleanup(); return m; });
  return runs.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
}

const rate = (m: Measured): string => `${(size / m.seconds / 1e9).toFixed(2)} GB/s`;
const mib = (bytes: number | undefined): string => (bytes === undefined ? '' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

/** QEMU's dump-guest-memory vs vmdump saved on a migration stream of the same paused guest. */
async function savedVmRow(image: string, out: string): Promise<[string, Measured, string, Measured] | undefined> {
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v as'], { stdio: 'ignore' }).status !== 0) {
    console.log('(saved-VM case skipped: qemu-system-x86_64 or binutils missing)');
    return undefined;
  }
  const { tiny64 } = buildTinyGuests();
  const mib = size / 2 ** 20;
  const guest = await startGuest({
    machine: 'q35', memory: `${mib}M`, smp: 1, kernel: tiny64,
    extra: ['-machine', 'memory-backend=m0', '-object', `memory-backend-file,id=m0,size=${mib}M,mem-path=${image},share=off`],
  }, path.join(dir, 'guest'));
  const stream = path.join(dir, 'vm.state');
  let qemuDump: Measured;
  try {
    await guest.qmp.execute('stop');
    const started = performance.now();
    await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${out}` }, { timeoutMs: 3_600_000 });
    qemuDump = { seconds: (performance.now() - started) / 1000 };
    fs.rmSync(out, { force: true });
    await guest.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 107374182400 });
    await guest.qmp.execute('migrate', { uri: `exec:cat > '${stream}'` });
    while ((await guest.qmp.execute<{ status: string }>('query-migrate')).status !== 'completed') await new Promise((r) => setTimeout(r, 100));
  } finally {
    await guest.quit();
  }
  const ours = best(() => timeVmdump(['saved', stream, '-o', out]), () => fs.rmSync(out, { force: true }));
  process.stderr.write(`bench: stream ${(fs.statSync(stream).size / GiB).toFixed(2)} GiB\n`);
  return ['vmdump saved → file', ours, 'QEMU dump-guest-memory', qemuDump];
}

async function main(): Promise<void> {
  const image = path.join(dir, 'ram.img');
  const machine = path.join(dir, 'machine.json');
  const out = path.join(dir, 'out');
  process.stderr.write(`bench: writing a ${size / GiB} GiB image in ${dir} ...\n`);
  makeImage(image);
  fs.writeFileSync(machine, JSON.stringify({ arch: 'x86_64', ram: [{ address: 0, size, file: 'ram.img' }] }));
  timeShell(`cat '${image}' > /dev/null`); // warm the page cache for everyone alike
  const rm = () => fs.rmSync(out, { force: true });
  const rows: [string, Measured, string, Measured][] = [
    ['vmdump → /dev/null', best(() => timeVmdump(['raw', machine, '-o', '/dev/null'])),
      'cat > /dev/null', best(() => timeShell(`cat '${image}' > /dev/null`))],
    ['vmdump → file', best(() => timeVmdump(['raw', machine, '-o', out]), rm),
      'cat > file', best(() => timeShell(`cat '${image}' > '${out}'`), rm)],
    ['vmdump --gzip → file', best(() => timeVmdump(['raw', machine, '--gzip', '-o', out]), rm),
      'gzip -6 -c > file', best(() => timeShell(`gzip -6 -c '${image}' > '${out}'`), rm)],
  ];
  const saved = await savedVmRow(image, out);
  if (saved !== undefined) rows.push(saved);
  console.log(`\nimage: ${size / GiB} GiB (1/4 zero, 1/4 random, 1/2 text pages), ${os.cpus().length} cores, node ${process.version}\n`);
  console.log('case                    time     throughput  peak RSS  | reference            time     throughput  | vmdump/reference');
  for (const [name, m, refName, ref] of rows) {
    console.log(`${name.padEnd(22)} ${m.seconds.toFixed(2).padStart(6)} s ${rate(m).padStart(11)} ${mib(m.peakRss).padStart(9)}  | `
      + `${refName.padEnd(18)} ${ref.seconds.toFixed(2).padStart(6)} s ${rate(ref).padStart(11)}  | ${(ref.seconds / m.seconds).toFixed(2)}× reference speed`);
  }
}

try {
  await main();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
