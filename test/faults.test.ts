/**
 * The fault matrix's file-system and device rows against real ones: a tmpfs of 3 MiB the test
 * mounts, and a loop device (root only; skipped loudly otherwise, required under CI, which runs
 * as root).
 * Every output form fills it: exit 4, one line naming ENOSPC, and nothing left behind — no
 * file that looks finished, no temporary file, and an existing file replaced with --force is
 * still the old one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, runCli, tempDir, writeMachine } from './helpers/machines.js';
import { unpackExample } from '../scripts/unpack-example.js';
import { run, inCi } from './helpers/tools.js';

const dir = tempDir('vmdump-faults-');
const mountPoint = path.join(dir, 'small');
fs.mkdirSync(mountPoint);
const mounted = process.getuid?.() === 0 && run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint]).status === 0;
if (!mounted) {
  if (inCi) throw new Error('CI runs as root and must be able to mount a tmpfs for the full-disk tests');
  console.warn('\n*** SKIPPING full-disk and device-error tests: a tmpfs and a loop device need root (CI runs them) ***\n');
}
const asRootIt = it.skipIf(!mounted);
afterAll(() => {
  if (mounted) run('umount', [mountPoint]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a destination that fills up (3 MiB tmpfs)', () => {
  let machine: string;
  beforeAll(() => {
    // 8 MiB of random RAM: no codec shrinks it, so every form overflows 3 MiB.
    machine = writeMachine(dir, { arch: 'x86_64', ranges: [{ address: 0n, size: 4096 }], vcpus: [{ rip: '0x1000' }] });
    fs.writeFileSync(path.join(dir, 'random.img'), randomBytes(8 << 20));
    const description = JSON.parse(fs.readFileSync(machine, 'utf8')) as { ram: object[] };
    description.ram = [{ address: '0x0', size: 8 << 20, file: 'random.img' }];
    fs.writeFileSync(machine, JSON.stringify(description));
  });
  afterEach(() => {
    if (mounted) for (const name of fs.readdirSync(mountPoint)) fs.rmSync(path.join(mountPoint, name));
  });

  asRootIt.each([
    ['ELF', []],
    ['ELF --gzip', ['--gzip']],
    ['kdump-lzo (plain, positional writes)', ['--format', 'kdump-lzo']],
    ['kdump-snappy --flattened', ['--format', 'kdump-snappy', '--flattened']],
    ['ELF --checksum sha256', ['--checksum', 'sha256']],
  ])('%s: exit 4, ENOSPC in one line, nothing left', async (_name, args) => {
    const out = path.join(mountPoint, 'core');
    const result = await runCli(['raw', machine, ...args, '-o', out]);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^vmdump: error: no space left on the output device \(ENOSPC\) \(.*\)\n$/);
    expect(fs.readdirSync(mountPoint)).toEqual([]);
  });

  asRootIt('--force over an existing file: the old file survives the failed dump', async () => {
    const out = path.join(mountPoint, 'core');
    fs.writeFileSync(out, 'the previous dump\n');
    const result = await runCli(['raw', machine, '--format', 'kdump-zlib', '--force', '-o', out]);
    expect(result.code).toBe(4);
    expect(fs.readdirSync(mountPoint)).toEqual(['core']);
    expect(fs.readFileSync(out, 'utf8')).toBe('the previous dump\n');
  });
});

/**
 * The CLI reading a saved VM on standard input, a real pipe from `producer` (a shell command),
 * with `env` added. Resolves when the CLI exits; the producer is ended then.
 */
function cliOnPipe(
  producer: string,
  args: readonly string[],
  env: Record<string, string>,
): { cli: ChildProcess; exited: Promise<{ code: number | null; stderr: string }> } {
  const writer = spawn('sh', ['-c', producer], { stdio: ['ignore', 'pipe', 'ignore'] });
  const cli = spawn(process.execPath, [CLI, 'saved', '-', ...args], {
    env: { ...process.env, ...env },
    stdio: [writer.stdout, 'ignore', 'pipe'],
  });
  let stderr = '';
  cli.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    cli.on('error', reject);
    cli.on('close', (code) => {
      writer.kill('SIGKILL');
      resolve({ code, stderr });
    });
  });
  return { cli, exited };
}

/** Resolves once `pid` holds an open, already unlinked spool file (vmdump is spooling). */
async function spooling(pid: number): Promise<void> {
  for (;;) {
    const links = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    if (links.some((link) => link.includes('.vmdump-spool-') && link.endsWith('(deleted)'))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a saved VM on a pipe, spooled into $TMPDIR', () => {
  let stream: string;
  beforeAll(() => {
    stream = unpackExample(path.join(dir, 'example'));
  });
  afterEach(() => {
    if (mounted) for (const name of fs.readdirSync(mountPoint)) fs.rmSync(path.join(mountPoint, name));
  });

  asRootIt(
    'a $TMPDIR too small for the stream (3 MiB tmpfs, the 1.8 MB stream twice): exit 4, one line naming ENOSPC and $TMPDIR, nothing left',
    async () => {
      const out = path.join(dir, 'spooled.elf');
      const { exited } = cliOnPipe(`cat '${stream}' '${stream}'`, ['--progress', 'none', '-o', out], { TMPDIR: mountPoint });
      const result = await exited;
      expect(result.code).toBe(4);
      expect(result.stderr.split('\n')).toHaveLength(2);
      expect(result.stderr).toContain(`into $TMPDIR (${mountPoint}), which is full: `);
      expect(result.stderr).toMatch(/^vmdump: error: cannot spool the saved VM from standard input .*\(ENOSPC\)/);
      expect(fs.readdirSync(mountPoint)).toEqual([]);
      expect(fs.existsSync(out)).toBe(false);
    },
  );

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s while spooling: exit %i, one line, nothing left in $TMPDIR or at the destination', async (signal, exit) => {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    const out = path.join(dir, `signalled-${signal}.elf`);
    try {
      // The stream's first megabyte, then a writer that keeps the pipe open: vmdump is still spooling.
      const { cli, exited } = cliOnPipe(`head -c 1000000 '${stream}'; sleep 30`, ['--progress', 'none', '-o', out], {
        TMPDIR: spool,
      });
      await spooling(cli.pid!);
      cli.kill(signal);
      const result = await exited;
      expect(result.code).toBe(exit);
      expect(result.stderr).toBe(`vmdump: error: dump cancelled: interrupted by ${signal}\n`);
      expect(fs.readdirSync(spool)).toEqual([]);
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      fs.rmSync(spool, { recursive: true, force: true });
    }
  });
});

describe('a source device that fails under vmdump', () => {
  /**
   * A RAM image on a loop device whose backing file then shrinks: the device still claims its
   * size, and the kernel answers reads past the new end with EIO — a real I/O error from a real
   * device, half-way through the guest's RAM.
   */
  asRootIt('EIO from a block device half-way through: exit 3, one line naming the range and offset, no output file', async () => {
    const backing = path.join(dir, 'loop.img');
    fs.writeFileSync(backing, randomBytes(8 << 20));
    const attach = run('losetup', ['-f', '--show', backing]);
    if (attach.status !== 0) throw new Error(`losetup failed: ${attach.stderr}`);
    const device = attach.stdout.trim();
    try {
      fs.truncateSync(backing, 4 << 20);
      const description = path.join(dir, 'loop-machine.json');
      fs.writeFileSync(description, JSON.stringify({ arch: 'x86_64', ram: [{ address: 0, size: 8 << 20, file: device }] }));
      const out = path.join(dir, 'from-loop.kdump');
      for (const args of [[], ['--format', 'kdump-zstd']]) {
        const result = await runCli(['raw', description, ...args, '-o', out]);
        expect(result.code).toBe(3);
        expect(result.stderr).toMatch(
          /^vmdump: error: cannot read guest memory: i\/o error, read \(EIO\) \(ram\[0\] \(loop\d+ at 0x0\), range offset 0x[0-9a-f]+\)\n$/,
        );
        expect(fs.readdirSync(dir).filter((f) => f.includes('from-loop'))).toEqual([]);
      }
    } finally {
      run('losetup', ['-d', device]);
    }
  });
});
