/** Machine descriptions on disk for CLI tests: RAM files filled with the address pattern. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, inject } from 'vitest';
import { fillPattern } from './guests.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/**
 * A fresh folder in the run's scratch folder (test/global-setup.ts), removed when the test file
 * ends: call it at file level (while vitest collects the file), so the clean-up hook belongs to it.
 */
export function tempDir(prefix = 'vmdump-test-'): string {
  const dir = fs.mkdtempSync(path.join(inject('scratch'), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RangeOnDisk {
  address: bigint;
  size: number;
}

export function writeMachine(
  dir: string,
  machine: { arch: string; ranges: RangeOnDisk[]; vcpus?: object[]; vmcoreinfo?: string },
): string {
  const ram = machine.ranges.map((r, i) => {
    const bytes = Buffer.alloc(r.size);
    fillPattern(bytes, r.address);
    const file = `ram${i}.img`;
    fs.writeFileSync(path.join(dir, file), bytes);
    return { address: `0x${r.address.toString(16)}`, size: r.size, file };
  });
  const description: Record<string, unknown> = { arch: machine.arch, ram };
  if (machine.vcpus) description.vcpus = machine.vcpus;
  if (machine.vmcoreinfo !== undefined) {
    fs.writeFileSync(path.join(dir, 'vmcoreinfo.txt'), machine.vmcoreinfo);
    description.vmcoreinfo = 'vmcoreinfo.txt';
  }
  const file = path.join(dir, 'machine.json');
  fs.writeFileSync(file, JSON.stringify(description, null, 2));
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the built CLI; `stdout` is collected unless the caller wires it elsewhere. */
export function runCli(args: readonly string[], options: { cwd?: string; tmpdir?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = options.tmpdir === undefined ? process.env : { ...process.env, TMPDIR: options.tmpdir };
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr }));
  });
}

/** One `--progress=json` line of the CLI. */
export interface ProgressLine {
  readonly phase: string;
  readonly bytesWritten: number;
  readonly totalBytes: number;
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** The exit code and everything written on stderr, once the CLI has ended. */
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

/**
 * Starts the CLI with `--progress=json` added and resolves once a progress line satisfies `until`
 * (default: the memory phase has begun), so a test can signal, cut or freeze it mid-dump. A CLI
 * that ends before that rejects at once, with what it said, instead of waiting for the timeout.
 */
export function spawnCliUntil(
  args: readonly string[],
  until: (progress: ProgressLine) => boolean = (progress) => progress.phase === 'memory',
): Promise<RunningCli> {
  const child = spawn(process.execPath, [CLI, ...args, '--progress=json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      const lines = stderr.split('\n').filter((line) => line.startsWith('{"event":"progress"'));
      if (lines.some((line) => until(JSON.parse(line) as ProgressLine))) resolve({ child, exited });
    });
    void exited.then(({ code, stderr: said }) =>
      reject(new Error(`the CLI ended (exit ${code}) before the awaited progress: ${said}`)),
    );
  });
}
