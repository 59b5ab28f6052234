/**
 * The command as a user meets it: real processes, real pipes, real signals. Bad input ends
 * with one clear line, a documented exit code, and no output file.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElfFile } from './helpers/elf-reader.js';
import { CLI, runCli, spawnCliUntil, tempDir, writeMachine } from './helpers/machines.js';
import { itWithTool, run } from './helpers/tools.js';

const dir = tempDir();
let machine: string;
beforeAll(() => {
  machine = writeMachine(dir, {
    arch: 'x86_64',
    ranges: [
      { address: 0n, size: 0xa0000 },
      { address: 0x100000n, size: 0x400000 },
    ],
    vcpus: [{ rip: '0xffffffff81000000' }],
    vmcoreinfo: 'OSRELEASE=6.1\n',
  });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Files in `folder` other than the inputs: a failed run must leave none. */
function outputsIn(folder: string): string[] {
  return fs.readdirSync(folder).filter((f) => !/^(ram\d+\.img|machine\.json|vmcoreinfo\.txt|bad.*\.json)$/.test(f));
}

function description(name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  return file;
}

describe('bad input: one line, a documented exit code, nothing left behind', () => {
  const range = (extra: object) => ({ address: '0x0', size: '0x1000', file: 'ram0.img', ...extra });
  it.each([
    [
      'a missing description',
      () => path.join(dir, 'nope.json'),
      3,
      /cannot read the machine description \S+nope.json: no such file or directory \(ENOENT\)/,
    ],
    ['malformed JSON', () => description('bad-json.json', '{"arch": "x86_64", "ram": [}'), 3, /not valid JSON/],
    [
      'a missing RAM file',
      () => description('bad-file.json', { arch: 'x86_64', ram: [range({ file: 'missing.img' })] }),
      3,
      /^vmdump: error: cannot open \S*missing\.img: no such file or directory \(ENOENT\) \(ram\[0\]\)$/m,
    ],
    [
      'a range beyond the file end',
      () => description('bad-size.json', { arch: 'x86_64', ram: [range({ size: '0x100000' })] }),
      3,
      /range ends at file offset 0x100000 but .*ram0\.img has only 0xa0000 bytes \(ram\[0\]\)/,
    ],
    [
      'overlapping ranges',
      () => description('bad-overlap.json', { arch: 'x86_64', ram: [range({}), range({ address: '0x800', fileOffset: 0 })] }),
      3,
      /RAM range at 0x800 overlaps ram\[0\].*ending at 0x1000/,
    ],
    [
      'a field of the wrong type',
      () => description('bad-type.json', { arch: 'x86_64', ram: [range({ size: -5 })] }),
      3,
      /ram\[0\]\.size: -5 is out of range/,
    ],
    [
      'a misspelt register',
      () => description('bad-reg.json', { arch: 'x86_64', ram: [range({})], vcpus: [{ rpi: 1 }] }),
      3,
      /vcpus\[0\]\.rpi: unknown field/,
    ],
    [
      'an unknown architecture',
      () => description('bad-arch.json', { arch: 'vax', ram: [range({})] }),
      3,
      /arch: unknown architecture "vax"/,
    ],
  ])('%s', async (_what, file, code, message) => {
    const result = await runCli(['raw', file(), '-o', path.join(dir, 'out.core')]);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.code).toBe(code);
    expect(outputsIn(dir)).toEqual([]);
  });

  it('an unwritable destination: exit 4', async () => {
    const result = await runCli(['raw', machine, '-o', path.join(dir, 'no-such-dir', 'core')]);
    expect(result.stderr).toMatch(/^vmdump: error: cannot create \S*no-such-dir\/core: no such file or directory \(ENOENT\)$/m);
    expect(result.code).toBe(4);
  });

  it('usage errors: exit 2', async () => {
    expect((await runCli(['raw'])).code).toBe(2);
    expect((await runCli(['frobnicate', machine])).stderr).toMatch(/unknown command "frobnicate"/);
    expect((await runCli(['raw', machine, '--begin', '0x1000'])).stderr).toMatch(/--begin and --length go together/);
    expect((await runCli(['raw', machine, '--bogus'])).code).toBe(2);
    const hole = await runCli(['raw', machine, '--begin', '0xa0000', '--length', '0x1000', '-o', path.join(dir, 'x.core')]);
    expect([hole.code, hole.stderr.trim()]).toEqual([2, 'vmdump: error: no guest memory to dump']);
    expect(outputsIn(dir)).toEqual([]);
  });

  it('a --vmcoreinfo file that cannot be read: exit 3 before the guest is opened; with --layout qemu: exit 2', async () => {
    const missing = await runCli(['raw', machine, '--vmcoreinfo', path.join(dir, 'nope.txt'), '-o', path.join(dir, 'x.core')]);
    expect([missing.code, missing.stderr]).toEqual([
      3,
      `vmdump: error: cannot read the VMCOREINFO file ${path.join(dir, 'nope.txt')}: no such file or directory (ENOENT) (--vmcoreinfo)\n`,
    ]);
    const qemu = await runCli(['raw', machine, '--layout', 'qemu', '--vmcoreinfo', 'none', '-o', path.join(dir, 'x.core')]);
    expect([qemu.code, qemu.stderr]).toEqual([
      2,
      'vmdump: error: --vmcoreinfo goes with the default layout; --layout qemu writes what QEMU would\n',
    ]);
    expect(outputsIn(dir)).toEqual([]);
  });

  it('--help documents the exit codes', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toMatch(/Exit codes: 0 done, 1 internal error, 2 usage, 3 bad input, 4 output failed/);
  });
});

describe('where VMCOREINFO comes from', () => {
  const work = tempDir('vmdump-vmcoreinfo-');
  let bare: string;
  beforeAll(() => {
    // RAM of a byte pattern: no page of it starts OSRELEASE= or a VMCOREINFO note.
    bare = writeMachine(work, { arch: 'x86_64', ranges: [{ address: 0n, size: 0x200000 }] });
    fs.writeFileSync(path.join(work, 'given.txt'), 'OSRELEASE=6.1.0-given\nPAGESIZE=4096\n');
  });
  const vmcoreinfoLine = (stderr: string) => stderr.split('\n').find((line) => line.startsWith('vmdump: VMCOREINFO:'));
  const lastNote = (core: string) => readElfFile(core).notes.at(-1);

  it('the VM, a search of RAM that finds none, no search, or a file: the summary says which, the notes follow', async () => {
    const core = path.join(work, 'out.core');
    const fromVm = await runCli(['raw', machine, '--force', '-o', core]);
    expect(vmcoreinfoLine(fromVm.stderr)).toBe(
      'vmdump: VMCOREINFO: from the VM (vmcoreinfo device, s390x lowcore pointer or machine description)',
    );
    const searched = await runCli(['raw', bare, '--force', '-o', core]);
    expect(vmcoreinfoLine(searched.stderr)).toBe(
      'vmdump: VMCOREINFO: none: none in guest RAM (a kernel without CONFIG_CRASH_CORE, or not Linux)',
    );
    expect(lastNote(core)?.name).not.toBe('VMCOREINFO');
    const off = await runCli(['raw', bare, '--vmcoreinfo', 'none', '--force', '-o', core]);
    expect(vmcoreinfoLine(off.stderr)).toBe('vmdump: VMCOREINFO: none: the search is off (--vmcoreinfo none)');
    const given = path.join(work, 'given.txt');
    const fromFile = await runCli(['raw', bare, '--vmcoreinfo', given, '--force', '-o', core, '--progress', 'json']);
    expect(fromFile.code).toBe(0);
    const done = JSON.parse(fromFile.stderr.trim().split('\n').at(-1)!) as { vmcoreinfo: unknown };
    expect(done.vmcoreinfo).toEqual({ origin: 'given' });
    expect([lastNote(core)?.name, lastNote(core)?.desc.toString('latin1')]).toEqual([
      'VMCOREINFO',
      'OSRELEASE=6.1.0-given\nPAGESIZE=4096\n',
    ]);
    // A given file wins over the VM's own.
    const override = await runCli(['raw', machine, '--vmcoreinfo', given, '--force', '-o', core]);
    expect(vmcoreinfoLine(override.stderr)).toBe(`vmdump: VMCOREINFO: from ${given}`);
    expect(lastNote(core)?.desc.toString('latin1')).toBe('OSRELEASE=6.1.0-given\nPAGESIZE=4096\n');
    fs.rmSync(core);
  });
});

describe('output destinations', () => {
  it('writes a file and reports a summary; --progress=json ends with a done line', async () => {
    const core = path.join(dir, 'ok.core');
    const result = await runCli(['raw', machine, '-o', core, '--progress=json']);
    expect(result.code).toBe(0);
    const lines = result.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; bytesWritten: number; totalBytes: number });
    const done = lines.at(-1)!;
    expect(done).toMatchObject({ event: 'done', bytesWritten: fs.statSync(core).size, totalBytes: fs.statSync(core).size });
    expect(readElfFile(core).phdrs.map((p) => p.paddr)).toEqual([0n, 0n, 0x100000n]);
    fs.rmSync(core);
  });

  it('with no -o and a non-terminal stdout, the dump goes to stdout (-o - too)', async () => {
    const core = path.join(dir, 'file.core');
    await runCli(['raw', machine, '-o', core]);
    const implicit = await runCli(['raw', machine]);
    const explicit = await runCli(['raw', machine, '-o', '-']);
    expect(implicit.code).toBe(0);
    expect(implicit.stdout.equals(fs.readFileSync(core))).toBe(true);
    expect(explicit.stdout.equals(fs.readFileSync(core))).toBe(true);
    fs.rmSync(core);
  });

  itWithTool('gzip', 'gzip')('`vmdump raw m.json | gzip > core.gz` through a real shell pipe', async () => {
    const plain = path.join(dir, 'pipe.core');
    await runCli(['raw', machine, '-o', plain]);
    const gz = path.join(dir, 'pipe.core.gz');
    const shell = run('bash', ['-c', `set -o pipefail; '${process.execPath}' '${CLI}' raw '${machine}' | gzip > '${gz}'`]);
    expect(shell.status).toBe(0);
    expect(run('bash', ['-c', `gzip -dc '${gz}' | cmp - '${plain}' && echo same`]).stdout.trim()).toBe('same');
    const viaFlag = await runCli(['raw', machine, '--gzip', '-o', path.join(dir, 'flag.core.gz')]);
    expect(viaFlag.code).toBe(0);
    expect(
      run('bash', ['-c', `gzip -dc '${path.join(dir, 'flag.core.gz')}' | cmp - '${plain}' && echo same`]).stdout.trim(),
    ).toBe('same');
    for (const f of [plain, gz, path.join(dir, 'flag.core.gz')]) fs.rmSync(f);
  });

  it('an existing output file is refused (exit 4, untouched) unless --force; a symlink is refused', async () => {
    const existing = path.join(dir, 'existing.core');
    fs.writeFileSync(existing, 'an earlier dump');
    const refused = await runCli(['raw', machine, '-o', existing]);
    expect([refused.code, refused.stderr.trim()]).toEqual([
      4,
      `vmdump: error: ${existing} already exists; use --force to replace it`,
    ]);
    expect(fs.readFileSync(existing, 'utf8')).toBe('an earlier dump');
    expect((await runCli(['raw', machine, '--force', '-o', existing])).code).toBe(0);
    expect(readElfFile(existing).phdrs.length).toBe(3);
    // A link to a file that is not a dump: a write through it (or a rename over it) would show.
    const target = path.join(dir, 'not-yours.txt');
    fs.writeFileSync(target, "someone else's file\n");
    const link = path.join(dir, 'link.core');
    fs.symlinkSync(target, link);
    const viaLink = await runCli(['raw', machine, '--force', '-o', link]);
    expect(viaLink.code).toBe(4);
    expect(viaLink.stderr).toMatch(/is a symbolic link/);
    expect(fs.readFileSync(target, 'utf8')).toBe("someone else's file\n");
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(dir).filter((name) => name.includes('vmdump-partial'))).toEqual([]);
    for (const f of [existing, link, target]) fs.rmSync(f);
  });

  it('-o /dev/null writes to the device and leaves it a device (a rename would replace it with a file)', async () => {
    const result = await runCli(['raw', machine, '-o', '/dev/null']);
    expect(result.code).toBe(0);
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.readdirSync('/dev').filter((f) => f.includes('vmdump-partial'))).toEqual([]);
  });

  it('-o FIFO streams into the process reading it', async () => {
    const plain = path.join(dir, 'fifo-ref.core');
    await runCli(['raw', machine, '-o', plain]);
    const fifo = path.join(dir, 'dump.fifo');
    run('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    const received: Buffer[] = [];
    reader.stdout.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise((resolve) => reader.on('close', resolve));
    const result = await runCli(['raw', machine, '-o', fifo]);
    await closed;
    expect(result.code).toBe(0);
    expect(Buffer.concat(received).equals(fs.readFileSync(plain))).toBe(true);
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    for (const f of [plain, fifo]) fs.rmSync(f);
  });

  it('a reader that closes the pipe early: one line naming EPIPE, exit 4', () => {
    const shell = run('bash', [
      '-c',
      `'${process.execPath}' '${CLI}' raw '${machine}' 2>'${dir}/epipe.err' | head -c 100 > /dev/null; echo \${PIPESTATUS[0]}`,
    ]);
    expect(shell.stdout.trim()).toBe('4');
    expect(fs.readFileSync(path.join(dir, 'epipe.err'), 'utf8')).toMatch(
      /^vmdump: error: the output was closed before the dump was complete \(EPIPE\) \(stdout\)\n$/,
    );
    fs.rmSync(path.join(dir, 'epipe.err'));
  });
});

describe('big sparse guests', () => {
  const sparse = (name: string, bytes: number): string => {
    const folder = path.join(dir, name);
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'ram.img'), 'hello');
    fs.truncateSync(path.join(folder, 'ram.img'), bytes);
    fs.writeFileSync(
      path.join(folder, 'machine.json'),
      JSON.stringify({ arch: 'x86_64', ram: [{ address: 0, size: bytes, file: 'ram.img' }] }),
    );
    return path.join(folder, 'machine.json');
  };

  it.each([
    ['SIGTERM', 143, 'as memory starts', (p: { phase: string }) => p.phase === 'memory'],
    ['SIGINT', 130, 'at the first progress line (headers)', () => true],
    [
      'SIGTERM',
      143,
      'past half the memory',
      (p: { bytesWritten: number; totalBytes: number }) => p.bytesWritten > p.totalBytes / 2,
    ],
  ] as const)(
    '%s (exit %i) %s: no file, not even the temporary one',
    async (signal, exitCode, _when, reached) => {
      const big = sparse(`${signal}-${exitCode}-${Math.random().toString(16).slice(2)}`, 2 * 1024 ** 3);
      const out = path.join(path.dirname(big), 'core.gz');
      const { child, exited } = await spawnCliUntil(['raw', big, '--gzip', '-o', out], reached);
      child.kill(signal);
      const { code, stderr } = await exited;
      expect(code).toBe(exitCode);
      expect(stderr).toMatch(new RegExp(`vmdump: error: dump cancelled: interrupted by ${signal}`));
      expect(fs.readdirSync(path.dirname(big)).sort()).toEqual(['machine.json', 'ram.img']);
    },
    60_000,
  );

  it('while it is written the dump is only .FILE.<random>.vmdump-partial, mode 0600; FILE appears, whole, at the end', async () => {
    const machine = sparse('partial', 256 << 20);
    const folder = path.dirname(machine);
    const out = path.join(folder, 'core.elf');
    const { child, exited } = await spawnCliUntil(['raw', machine, '--gzip', '-o', out]);
    child.kill('SIGSTOP'); // frozen mid-dump: what a reader of the folder would see now
    try {
      const during = fs.readdirSync(folder).filter((name) => name !== 'machine.json' && name !== 'ram.img');
      expect(during).toHaveLength(1);
      expect(during[0]).toMatch(/^\.core\.elf\.[0-9a-f]{8}\.vmdump-partial$/);
      expect(fs.statSync(path.join(folder, during[0]!)).mode & 0o777).toBe(0o600);
    } finally {
      child.kill('SIGCONT');
    }
    expect((await exited).code).toBe(0);
    expect(fs.readdirSync(folder).sort()).toEqual(['core.elf', 'machine.json', 'ram.img']);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
  });

  it('peak memory does not grow with guest size (64 MiB vs 4 GiB to /dev/null)', async () => {
    const peak = async (machinePath: string) => {
      const result = await runCli(['raw', machinePath, '-o', '/dev/null', '--progress=json']);
      expect(result.code).toBe(0);
      return (JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { peakRssBytes: number }).peakRssBytes;
    };
    const small = await peak(sparse('small', 64 << 20));
    const large = await peak(sparse('large', 4 * 1024 ** 3));
    expect(large).toBeLessThan(small + (24 << 20));
    expect(large).toBeLessThan(150 << 20);
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
  });
});
