/**
 * The x86_64 Linux guest's dump readers as judges: readelf (a VMCOREINFO note), gdb (linux_banner
 * by kernel virtual address), makedumpfile (--dump-dmesg, -c -d 31, and vmdump verify of its
 * output), crash (sys, log) and drgn when the debug vmlinux is at hand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { drgnReadsKernel } from './drgn.js';
import { CLI } from './machines.js';
import { run } from './tools.js';

/** Every reader check on one core; returns what failed (empty when all pass). */
export function linuxReaderFailures(
  core: string,
  banner: bigint,
  release: string,
  work: string,
  vmlinux: string | undefined,
): string[] {
  const failures: string[] = [];
  const readelf = run('readelf', ['-h', '-l', '-n', '-W', core]);
  if (readelf.stderr !== '' || !/VMCOREINFO/.test(readelf.stdout)) failures.push('readelf');
  if (
    !run('gdb', ['-batch', '-nx', '-ex', `x/s 0x${banner.toString(16)}`, '-c', core]).stdout.includes(`Linux version ${release}`)
  )
    failures.push('gdb');
  const dmesg = path.join(work, `${path.basename(core)}.dmesg`);
  fs.rmSync(dmesg, { force: true });
  run('makedumpfile', ['--dump-dmesg', core, dmesg]);
  if (!fs.existsSync(dmesg) || !fs.readFileSync(dmesg, 'utf8').includes('VMDUMP-KMSG-MARKER'))
    failures.push('makedumpfile --dump-dmesg');
  const filtered = path.join(work, `${path.basename(core)}.kdump`);
  fs.rmSync(filtered, { force: true });
  if (!/makedumpfile Completed/.test(run('makedumpfile', ['-c', '-d', '31', core, filtered]).stdout))
    failures.push('makedumpfile -c -d 31');
  // README: `vmdump verify` accepts makedumpfile's own files too (here one with excluded pages).
  else if (run(process.execPath, [CLI, 'verify', filtered]).status !== 0) failures.push('vmdump verify of makedumpfile -c -d 31');
  fs.rmSync(filtered, { force: true });
  if (vmlinux !== undefined) {
    const crash = run('sh', ['-c', `printf 'sys\\nlog\\nquit\\n' | crash -s '${vmlinux}' '${core}'`]);
    if (!crash.stdout.includes(`RELEASE: ${release}`) || !crash.stdout.includes('VMDUMP-KMSG-MARKER')) failures.push('crash');
    if (!drgnReadsKernel(core, vmlinux, release, work)) failures.push('drgn');
  }
  return failures;
}
