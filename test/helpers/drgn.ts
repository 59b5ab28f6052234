/**
 * drgn as a judge: what it sees of a dump with the kernel's debug vmlinux. It opens ELF cores
 * itself and kdump files through libkdumpfile (plain files only: libkdumpfile 0.5.1 does not read
 * the flattened form).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './tools.js';

const SCRIPT = `from drgn.helpers.linux.pid import for_each_task
print("flags", prog.flags)
print("release", prog["init_uts_ns"].name.release.string_().decode())
print("tasks", " ".join(t.comm.string_().decode() for t in for_each_task(prog)))
`;

export interface DrgnView {
  /** drgn took it for a Linux kernel core (ProgramFlags.IS_LINUX_KERNEL). */
  readonly isLinuxKernel: boolean;
  /** init_uts_ns.name.release, or undefined when drgn could not open or read it. */
  readonly release: string | undefined;
  readonly tasks: readonly string[];
  /** What drgn printed on stderr (why it refused, when it did). */
  readonly stderr: string;
}

export function drgnView(core: string, vmlinux: string, work: string): DrgnView {
  const script = path.join(work, 'drgn-check.py');
  fs.writeFileSync(script, SCRIPT);
  const drgn = run('drgn', ['-q', '-c', core, '-s', vmlinux, script]);
  return {
    isLinuxKernel: drgn.stdout.includes('IS_LINUX_KERNEL'),
    release: /^release (.*)$/m.exec(drgn.stdout)?.[1],
    tasks: /^tasks (.*)$/m.exec(drgn.stdout)?.[1]?.split(' ') ?? [],
    stderr: drgn.stderr,
  };
}

/** drgn reads `core` as the kernel `release`: a Linux kernel, its release, and a task list with init among 10 or more. */
export function drgnReadsKernel(core: string, vmlinux: string, release: string, work: string): boolean {
  const view = drgnView(core, vmlinux, work);
  return view.isLinuxKernel && view.release === release && view.tasks.length >= 10 && view.tasks.includes('init');
}
