/**
 * Real QEMU for tests and benchmarks: boots a test guest, waits for its ready marker, stops it, and has QEMU
 * itself write `dump-guest-memory` (paging false) and a migration stream of the same paused state.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repositoryRoot } from './repository-root.js';
import { QmpClient } from '../src/sources/qmp/qmp-client.js';

export const GUEST_DIR = path.join(repositoryRoot(), 'test-guests');
export const QEMU = 'qemu-system-x86_64';

export interface TinyGuests {
  tiny32: string;
  tiny64: string;
  paging32: string;
  pagingPae: string;
  paging4: string;
  paging5: string;
  /** 64 KiB pflash images (test-guests/flash.S): paging maps the flash, 32-bit and 4-level. */
  flash32: string;
  flash4: string;
}

/**
 * Runs a test-guests script and returns the folder it printed last: its output in the test cache
 * (test-guests/cache.sh: outside the checkout, keyed by what it was built from, built under a lock).
 */
function runGuestScript(script: string, args: readonly string[], what: string): string {
  const result = spawnSync('sh', [path.join(GUEST_DIR, script), ...args], { encoding: 'utf8' });
  const folder = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.status !== 0 || folder === '') throw new Error(`${what} failed: ${result.stderr}`);
  return folder;
}

export function buildTinyGuests(): TinyGuests {
  const folder = runGuestScript('build.sh', [], 'building the tiny guests');
  const out = (name: string): string => path.join(folder, `${name}.elf`);
  return {
    tiny32: out('tiny32'),
    tiny64: out('tiny64'),
    paging32: out('paging32'),
    pagingPae: out('pagingpae'),
    paging4: out('paging4'),
    paging5: out('paging5'),
    flash32: path.join(folder, 'flash32.bin'),
    flash4: path.join(folder, 'flash4.bin'),
  };
}

export interface GuestConfig {
  /** QEMU binary (default qemu-system-x86_64). */
  readonly qemu?: string;
  /**
   * A root to run QEMU in through chroot (qemu10Root()): every path given to QEMU, the guest's
   * folder included, must lie inside it and is passed as the root sees it.
   */
  readonly root?: string;
  readonly machine: string;
  readonly cpu?: string;
  readonly memory: string; // -m value, e.g. '128M', '4608M'
  readonly smp: number;
  /** -kernel; absent for a guest that boots from its firmware (pflash, in `extra`). */
  readonly kernel?: string;
  readonly initrd?: string;
  readonly append?: string;
  readonly extra?: readonly string[];
  /** Text that says the guest is ready, and where it appears (default: the tiny guests' debugcon line). */
  readonly ready?: { readonly text: string; readonly on: 'debugcon' | 'serial' };
}

export interface LinuxGuest {
  readonly kernel: string;
  readonly initrd: string;
  readonly version: string;
}

export type DebianArch = 'amd64' | 'arm64' | 's390x';
/** Builds (once) the Debian kernel + busybox initramfs guest of `arch`; needs apt-get (and the foreign architecture added). */
export function buildLinuxGuest(arch: DebianArch = 'amd64'): LinuxGuest {
  const out = runGuestScript('build-linux.sh', [arch], `building the ${arch} Linux guest`);
  return {
    kernel: path.join(out, 'vmlinuz'),
    initrd: path.join(out, 'initrd.gz'),
    version: fs.readFileSync(path.join(out, 'version'), 'utf8').trim(),
  };
}

/**
 * The Linux test guest on q35 with 2 vCPUs, its serial console's ready line and `-device
 * vmcoreinfo` (unless `vmcoreinfoDevice` is false, as most VMs run); KASLR unless `kaslr` is
 * false; `extra` QEMU arguments after those.
 */
export function linuxGuestConfig(
  linux: LinuxGuest,
  options: {
    readonly memory: string;
    readonly kaslr: boolean;
    readonly vmcoreinfoDevice?: boolean;
    /** Fill memory with every page class makedumpfile's dump levels tell apart before the ready line (test-guests/build-linux.sh). */
    readonly fill?: boolean;
    readonly extra?: readonly string[];
  },
): GuestConfig {
  return {
    machine: 'q35',
    memory: options.memory,
    smp: 2,
    kernel: linux.kernel,
    initrd: linux.initrd,
    append: `console=ttyS0${options.kaslr ? '' : ' nokaslr'}${options.fill === true ? ' vmdump.fill' : ''}`,
    ready: { text: 'VMDUMP-LINUX-READY', on: 'serial' },
    extra: [...(options.vmcoreinfoDevice === false ? [] : ['-device', 'vmcoreinfo']), ...(options.extra ?? [])],
  };
}

/** The Linux guest of another architecture (cpu max, 2 vCPUs, 512 MiB) on its machine, with `extra` QEMU arguments. */
export function foreignLinuxGuestConfig(
  machine: { readonly qemu: string; readonly machine: string; readonly console: string },
  linux: LinuxGuest,
  extra: readonly string[],
): GuestConfig {
  return {
    qemu: machine.qemu,
    machine: machine.machine,
    cpu: 'max',
    memory: '512M',
    smp: 2,
    kernel: linux.kernel,
    initrd: linux.initrd,
    append: `console=${machine.console} rdinit=/init panic=-1`,
    ready: { text: 'VMDUMP-LINUX-READY', on: 'serial' },
    extra,
  };
}

export interface RunningGuest {
  readonly qmp: QmpClient;
  readonly dir: string;
  /** A host path as QEMU sees it (inside its chroot root, if any). */
  qemuPath(hostPath: string): string;
  /** What the guest printed on its serial console. */
  serialText(): string;
  readonly process: ChildProcess;
  quit(): Promise<void>;
}

export async function startGuest(config: GuestConfig, dir: string): Promise<RunningGuest> {
  fs.mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, 'qmp.sock');
  const debugcon = path.join(dir, 'debugcon.txt');
  const serial = path.join(dir, 'serial.txt');
  fs.rmSync(socket, { force: true });
  fs.writeFileSync(debugcon, '');
  fs.writeFileSync(serial, '');
  const x86 = config.qemu === undefined || config.qemu === QEMU;
  // Only x86 machines have the ISA debug console; the others start without default devices, as measured (docs/other-arches.md §3).
  const machineArgs = x86 ? ['-debugcon', `file:${debugcon}`] : ['-nodefaults'];
  const args = [
    '-machine',
    config.machine,
    '-accel',
    'tcg',
    '-m',
    config.memory,
    '-smp',
    String(config.smp),
    ...(config.cpu === undefined ? [] : ['-cpu', config.cpu]),
    '-display',
    'none',
    '-no-reboot',
    ...(config.kernel === undefined ? [] : ['-kernel', config.kernel]),
    ...machineArgs,
    '-serial',
    `file:${serial}`,
    ...(config.initrd ? ['-initrd', config.initrd] : []),
    ...(config.append ? ['-append', config.append] : []),
    '-qmp',
    `unix:${socket},server=on,wait=off`,
    ...(config.extra ?? []),
  ];
  const qemuPath = rootRelative(config.root);
  const child =
    config.root === undefined
      ? spawn(config.qemu ?? QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('chroot', [config.root, config.qemu ?? QEMU, ...args.map(qemuPath)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = config.ready ?? { text: 'VMDUMP-TINY-READY', on: 'debugcon' };
  const watched = ready.on === 'serial' ? serial : debugcon;
  for (let waited = 0; !fs.readFileSync(watched, 'utf8').includes(ready.text); waited += 50) {
    if (child.exitCode !== null) throw new Error(`QEMU exited: ${stderr}`);
    if (waited > 180_000) {
      child.kill();
      throw new Error(`guest never printed ${ready.text}`);
    }
    await sleep(50);
  }
  const qmp = await QmpClient.connect({ path: socket });
  return {
    qmp,
    dir,
    qemuPath,
    process: child,
    serialText: () => fs.readFileSync(serial, 'utf8'),
    async quit() {
      await qmp.execute('quit').catch(() => undefined);
      qmp.close();
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** `root/x` → `/x` in every place a string names a path under `root`; identity without a root. */
function rootRelative(root: string | undefined): (text: string) => string {
  if (root === undefined) return (text) => text;
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return (text) => text.split(prefix).join('/');
}

/**
 * Saves the (stopped) guest as a migration stream in `file`, unthrottled, and waits for it; with
 * `mappedRam` (QEMU 9.0+) as a mapped-ram file (`migrate file:` with that capability).
 */
export async function saveStream(
  guest: RunningGuest,
  file: string,
  options: { mappedRam?: boolean; multifd?: boolean; offset?: number } = {},
): Promise<void> {
  await guest.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 107374182400 });
  const mappedRam = options.mappedRam === true;
  const capabilities = [
    { capability: 'mapped-ram', state: mappedRam },
    ...(options.multifd === true ? [{ capability: 'multifd', state: true }] : []),
  ];
  await guest.qmp.execute('migrate-set-capabilities', { capabilities }).catch((error: unknown) => {
    if (mappedRam) throw error;
  });
  const at = options.offset === undefined ? '' : `,offset=${options.offset}`;
  const uri = mappedRam ? `file:${guest.qemuPath(file)}${at}` : `exec:cat > '${guest.qemuPath(file)}'`;
  await guest.qmp.execute('migrate', { uri });
  for (;;) {
    const status = await guest.qmp.execute<{ status: string; 'error-desc'?: string }>('query-migrate');
    if (status.status === 'completed') return;
    if (status.status === 'failed') throw new Error(`migration failed: ${status['error-desc'] ?? ''}`);
    await sleep(50);
  }
}

/**
 * Stops the guest and writes QEMU's own dump (paging false, or true), optionally its
 * kdump-zlib dump (the flattened stream QEMU 7.2 always writes), and a migration stream of that
 * paused state (mapped-ram with `mappedRam`: QEMU migrates a paused VM only once).
 */
export async function saveReferences(
  guest: RunningGuest,
  options: {
    paging?: boolean;
    kdump?: boolean;
    filter?: { begin: bigint; length: bigint };
    mappedRam?: boolean;
    /** Where in the (mapped-ram) file the stream starts: room for a libvirt header. */
    streamOffset?: number;
    /** mapped-ram written by multifd channels (libvirt's parallel save). */
    multifd?: boolean;
  } = {},
): Promise<{ dump: string; stream: string; kdump?: string }> {
  const dump = path.join(guest.dir, 'qemu.core');
  const stream = path.join(guest.dir, 'vm.state');
  const filter =
    options.filter === undefined ? {} : { begin: Number(options.filter.begin), length: Number(options.filter.length) };
  await guest.qmp.execute('stop');
  await guest.qmp.execute(
    'dump-guest-memory',
    { paging: options.paging ?? false, protocol: `file:${guest.qemuPath(dump)}`, ...filter },
    { timeoutMs: 300_000 },
  );
  let kdump: string | undefined;
  if (options.kdump === true) {
    kdump = path.join(guest.dir, 'qemu.kdump-zlib.flat');
    await guest.qmp.execute(
      'dump-guest-memory',
      { paging: false, protocol: `file:${guest.qemuPath(kdump)}`, format: 'kdump-zlib' },
      { timeoutMs: 300_000 },
    );
  }
  await saveStream(guest, stream, {
    mappedRam: options.mappedRam === true,
    multifd: options.multifd === true,
    ...(options.streamOffset === undefined ? {} : { offset: options.streamOffset }),
  });
  return { dump, stream, ...(kdump === undefined ? {} : { kdump }) };
}

/**
 * The Debian 13 root whose QEMU 10.0 the tests run through chroot (test-guests/qemu10-root.sh:
 * debootstrap, cached), or undefined with the reason where it cannot be made here.
 */
export function qemu10Root(): { root: string } | { missing: string } {
  if (process.getuid?.() !== 0) return { missing: 'QEMU 10 runs in a chroot: the tests must run as root' };
  const made = spawnSync('sh', [path.join(GUEST_DIR, 'qemu10-root.sh')], { encoding: 'utf8' });
  const root = made.stdout.trim().split('\n').at(-1) ?? '';
  if (made.status !== 0 || root === '') return { missing: `test-guests/qemu10-root.sh failed: ${made.stderr.trim()}` };
  return { root };
}

/** The debug vmlinux of the Linux guest's kernel, for crash and drgn (fetched once; about 280 MB). */
export function fetchLinuxVmlinux(arch: DebianArch = 'amd64'): string {
  const guest = path.dirname(buildLinuxGuest(arch).kernel);
  return path.join(runGuestScript('fetch-vmlinux.sh', [arch, guest], `fetching the ${arch} debug vmlinux`), 'vmlinux');
}

/** Debian's `arch` builds of crash and makedumpfile in a private root, for qemu-user-static (see the script). */
export function fetchForeignReaders(arch: Exclude<DebianArch, 'amd64'>): { root: string; crash: string; makedumpfile: string } {
  const root = path.join(
    runGuestScript('fetch-foreign-readers.sh', [arch], `fetching the ${arch} crash and makedumpfile`),
    'root',
  );
  return { root, crash: path.join(root, 'usr/bin/crash'), makedumpfile: path.join(root, 'usr/bin/makedumpfile') };
}
