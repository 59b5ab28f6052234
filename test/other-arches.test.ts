/**
 * aarch64 and big-endian s390x guests, judged by QEMU and the readers (issue 9, docs/other-arches.md):
 * Debian's arm64 cloud kernel on `virt -cpu max` and Debian's s390x kernel on s390-ccw-virtio boot
 * busybox initramfs guests; QEMU 7.2 writes its ELF and kdump-zlib dumps of the paused guest and a
 * migration stream of the same state.
 *
 * - `--layout qemu` from the saved stream and from the live source (vmdump qmp) is QEMU's ELF byte
 *   for byte (s390x: its little-endian pr_pid and .shstrtab header included); its kdump-zlib has
 *   QEMU's header, sub-header, notes and bitmaps, and every page decompresses to QEMU's page.
 * - The default layout passes readelf, gdb-multiarch (linux_banner by kernel virtual address),
 *   drgn (a Linux kernel, its tasks), and Debian's arm64/s390x builds of crash and makedumpfile run
 *   under qemu-user-static (ELF and kdump); QEMU's own dump fails the checks the spec names (§7).
 * - `vmdump qmp --live` migrates the running guest into vmdump, which resumes it: the dump reads as
 *   that kernel (gdb-multiarch, vmdump verify).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { runCli, tempDir } from './helpers/machines.js';
import { drgnReadsKernel } from './helpers/drgn.js';
import { pageMismatches, readFlattened, readKdump } from './helpers/kdump-reader.js';
import {
  buildLinuxGuest,
  fetchForeignReaders,
  fetchLinuxVmlinux,
  foreignLinuxGuestConfig,
  saveReferences,
  saveStream,
  startGuest,
  type GuestConfig,
  type LinuxGuest,
  type RunningGuest,
} from '../scripts/qemu-harness.js';
import { itWithTool, run, itWithTools, mayBootQemu } from './helpers/tools.js';
import { foreignMachine, type ForeignMachine } from './helpers/foreign-machines.js';

interface ArchCase extends ForeignMachine {
  /** What readers fail on QEMU's own ELF dump of the guest (§7). */
  readonly qemuElfFailures: readonly string[];
  /** ... and on QEMU's kdump-zlib (crash reads it; makedumpfile does not). */
  readonly qemuKdumpFailures: readonly string[];
}

const cases: readonly ArchCase[] = [
  {
    ...foreignMachine('arm64'),
    // No PT_LOAD at kernel virtual addresses: gdb and drgn cannot read the kernel.
    qemuElfFailures: ['gdb-multiarch', 'drgn', 'makedumpfile'],
    // 64 KiB blocks over 4 KiB guest pages: "pfn … is excluded".
    qemuKdumpFailures: ['drgn', 'makedumpfile'],
  },
  {
    ...foreignMachine('s390x'),
    // The little-endian .shstrtab header makes readelf print an error; no VMCOREINFO: drgn sees no kernel, makedumpfile no log_buf.
    qemuElfFailures: ['readelf', 'drgn', 'makedumpfile'],
    // No VMCOREINFO: "Can't find some symbols for log_buf".
    qemuKdumpFailures: ['drgn', 'makedumpfile'],
  },
];

const dir = tempDir('vmdump-arches-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs a command without blocking the event loop, so the slow emulated readers can run side by side. */
function runAsync(
  command: string,
  args: readonly string[],
  input = '',
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

function fileHead(file: string, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(length);
    return head.subarray(0, fs.readSync(fd, head, 0, length, 0));
  } finally {
    fs.closeSync(fd);
  }
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe.each(cases)('$debian guest ($machine)', (c) => {
  const qemuIt = itWithTool(c.qemu, c.qemuPackage);
  const readersIt = itWithTools([
    [c.qemu, c.qemuPackage],
    [c.user, 'qemu-user-static'],
    ['readelf', 'binutils'],
    ['gdb-multiarch', 'gdb-multiarch'],
    ['drgn', 'python3-drgn'],
  ]);
  const work = path.join(dir, c.debian);
  let release = '';
  let refs: { elf: string; kdump: string; stream: string; liveElf: string; liveKdump: string; migrated: string } | undefined;
  let vmlinux = '';

  /** The Linux guest of this architecture, 2 vCPUs and 512 MiB, with `extra` QEMU arguments. */
  const linuxGuest = (linux: LinuxGuest, extra: readonly string[]): GuestConfig => foreignLinuxGuestConfig(c, linux, extra);

  beforeAll(async () => {
    if (!mayBootQemu(c.qemu)) return;
    const linux = buildLinuxGuest(c.debian);
    release = linux.version;
    vmlinux = fetchLinuxVmlinux(c.debian);
    const guest: RunningGuest = await startGuest(
      // A second monitor for vmdump: QMP serves one client at a time, and the harness holds the first.
      linuxGuest(linux, [...c.extra, '-qmp', `unix:${path.join(work, 'vmdump-qmp.sock')},server=on,wait=off`]),
      work,
    );
    try {
      // --live on the running guest first: QEMU migrates it into vmdump and it runs on (a paused VM
      // would be left 'postmigrate', where QEMU refuses the later migrations this test makes).
      const migrated = path.join(work, 'migrated.core');
      const socket = path.join(work, 'vmdump-qmp.sock');
      const live = await runCli(['qmp', socket, '--live', '-o', migrated]);
      expect([live.code, live.stderr]).toEqual([
        0,
        expect.stringMatching(/paused for \d+ ms \(live migration switchover\) and is running again/),
      ]);
      expect((await guest.qmp.execute<{ status: string }>('query-status')).status).toBe('running');
      const elf = path.join(work, 'qemu.core');
      const kdump = path.join(work, 'qemu.kdump-zlib.flat');
      await guest.qmp.execute('stop');
      await guest.qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${elf}` }, { timeoutMs: 300_000 });
      await guest.qmp.execute(
        'dump-guest-memory',
        { paging: false, protocol: `file:${kdump}`, format: 'kdump-zlib' },
        { timeoutMs: 300_000 },
      );
      // The live source reads the paused guest through QEMU's notes and pmemsave: it stays paused.
      const liveElf = path.join(work, 'live.core');
      const liveKdump = path.join(work, 'live.kdump-zlib.flat');
      for (const [out, format] of [
        [liveElf, ['--format', 'elf']],
        [liveKdump, ['--format', 'kdump-zlib', '--flattened']],
      ] as const) {
        const live = await runCli(['qmp', socket, '--layout', 'qemu', ...format, '-o', out]);
        expect(live.stderr).not.toMatch(/error/i);
        expect(live.code).toBe(0);
      }
      expect((await guest.qmp.execute<{ status: string }>('query-status')).status).not.toBe('running');
      const stream = path.join(work, 'vm.state');
      await saveStream(guest, stream);
      refs = { elf, kdump, stream, liveElf, liveKdump, migrated };
    } finally {
      await guest.quit();
    }
  }, 900_000);

  async function dump(name: string, args: readonly string[]): Promise<string> {
    const out = path.join(work, name);
    const result = await runCli(['saved', refs!.stream, ...args, '-o', out]);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    return out;
  }

  qemuIt(
    "--layout qemu: the saved stream and the live source both give QEMU's ELF dump byte for byte",
    async () => {
      const ours = await dump('ours-qemu.core', ['--layout', 'qemu']);
      const expected = await sha256(refs!.elf);
      expect(await sha256(ours)).toBe(expected);
      expect(await sha256(refs!.liveElf)).toBe(expected);
      if (c.debian === 's390x') {
        // QEMU's bugs, reproduced: pr_pid 1 stored little-endian, the .shstrtab header little-endian (§4.3).
        const head = fileHead(ours, 4096);
        expect(head.readUInt32LE(64 + 64 + 4)).toBe(3); // sh_type SHT_STRTAB, little-endian in a big-endian file
        const prstatus = head.indexOf(Buffer.from('CORE\0\0\0\0'));
        expect(head.readUInt32LE(prstatus + 8 + 32)).toBe(1);
      }
    },
    300_000,
  );

  qemuIt(
    "--layout qemu kdump-zlib: QEMU's header, sub-header, notes and bitmaps; every page decompresses to QEMU's",
    async () => {
      const theirsFile = fs.readFileSync(refs!.kdump);
      const theirs = readKdump(readFlattened(theirsFile).reassembled);
      for (const file of [
        await dump('ours-qemu.flat', ['--layout', 'qemu', '--format', 'kdump-zlib', '--flattened']),
        refs!.liveKdump,
      ]) {
        const ours = readKdump(readFlattened(fs.readFileSync(file)).reassembled);
        expect([ours.blockSize, ours.machine, ours.physBase]).toEqual([theirs.blockSize, theirs.machine, theirs.physBase]);
        const descAt = (1 + theirs.subHdrSize + theirs.bitmapBlocks) * theirs.blockSize;
        expect(ours.bytes.subarray(0, descAt).equals(theirs.bytes.subarray(0, descAt))).toBe(true);
        expect(pageMismatches(ours, theirs)).toEqual({ pfnsEqual: true, differing: 0 });
      }
      expect(theirs.blockSize).toBe(c.debian === 'arm64' ? 65536 : 4096);
    },
    300_000,
  );

  readersIt(
    "the default layout passes readelf, gdb-multiarch, drgn, crash and makedumpfile; QEMU's dump fails the named ones",
    async () => {
      const elf = await dump('ours.core', []);
      const kdump = await dump('ours.kdump', ['--format', 'kdump-zlib']);
      const kdumpFile = readKdump(fs.readFileSync(kdump));
      expect(kdumpFile.blockSize).toBe(4096); // the guest's page size: makedumpfile refuses QEMU's 64 KiB aarch64 blocks
      const banner = bannerAddress(elf);
      const qemuKdump = path.join(work, 'qemu.kdump');
      fs.writeFileSync(qemuKdump, readFlattened(fs.readFileSync(refs!.kdump)).reassembled);
      const [ours, qemu, oursKdump, qemuKdumpFailures] = await Promise.all([
        readerFailures(elf, banner, 'elf'),
        readerFailures(refs!.elf, banner, 'elf'),
        readerFailures(kdump, banner, 'kdump'),
        readerFailures(qemuKdump, banner, 'kdump'),
      ]);
      expect(ours).toEqual([]);
      expect(oursKdump).toEqual([]);
      // drgn opens the plain kdump file of every codec (libkdumpfile reads the header's utsname).
      for (const codec of ['lzo', 'snappy', 'zstd']) {
        const plain = await dump(`ours.${codec}.kdump`, ['--format', `kdump-${codec}`]);
        expect([codec, drgnReadsKernel(plain, vmlinux, release, work)]).toEqual([codec, true]);
      }
      expect(qemu).toEqual(c.qemuElfFailures);
      expect(qemuKdumpFailures).toEqual(c.qemuKdumpFailures);
      // The --live dump of the running guest (its memory moved on since) reads as a kernel too.
      const migratedBanner = run('gdb-multiarch', [
        '-batch',
        '-nx',
        '-ex',
        `x/s 0x${bannerAddress(refs!.migrated).toString(16)}`,
        '-c',
        refs!.migrated,
      ]);
      expect(migratedBanner.stdout).toContain(`Linux version ${release}`);
      // vmdump verify accepts ours, and QEMU's own dumps too (their quirks are not structural errors);
      // QEMU's kdump header (machine alone) gets the warning that drgn will not open it.
      for (const file of [elf, kdump, refs!.migrated, refs!.elf, refs!.kdump]) {
        const verified = await runCli(['verify', file]);
        const warning = `vmdump: warning: ${file}: the header's utsname has no sysname, release, version: drgn (libkdumpfile) will not open this file; crash and makedumpfile will\n`;
        expect([verified.code, verified.stderr]).toEqual([0, file === refs!.kdump ? warning : '']);
      }
    },
    900_000,
  );

  // s390x has no device: its kernel's lowcore pointer gives VMCOREINFO. On arm64, most VMs run without one.
  if (c.debian === 'arm64') {
    readersIt(
      'without -device vmcoreinfo: VMCOREINFO is found in guest RAM and the default layout passes every reader; QEMU fails them',
      async () => {
        const bare = path.join(work, 'no-device');
        const linux = buildLinuxGuest(c.debian);
        const guest = await startGuest(linuxGuest(linux, []), bare);
        let qemuElf = '';
        let stream = '';
        try {
          ({ dump: qemuElf, stream } = await saveReferences(guest));
        } finally {
          await guest.quit();
        }
        const elf = path.join(bare, 'ours.core');
        const kdump = path.join(bare, 'ours.kdump');
        for (const [out, args] of [
          [elf, []],
          [kdump, ['--format', 'kdump-zlib']],
        ] as const) {
          const result = await runCli(['saved', stream, ...args, '-o', out]);
          expect([result.code, result.stderr]).toEqual([
            0,
            expect.stringMatching(/vmdump: VMCOREINFO: found in guest RAM at 0x[0-9a-f]+ \(the kernel's note; \d+ copies seen; /),
          ]);
        }
        const banner = bannerAddress(elf);
        const [ours, oursKdump, qemu] = await Promise.all([
          readerFailures(elf, banner, 'elf'),
          readerFailures(kdump, banner, 'kdump'),
          readerFailures(qemuElf, banner, 'elf'),
        ]);
        expect([ours, oursKdump]).toEqual([[], []]);
        // Without VMCOREINFO crash cannot place arm64's kernel image either (kimage_voffset).
        expect(qemu).toEqual(['gdb-multiarch', 'drgn', 'crash', 'makedumpfile']);
      },
      900_000,
    );
  }

  /** linux_banner's kernel virtual address: the symbol plus the KASLR offset the dump's VMCOREINFO gives. */
  function bannerAddress(core: string): bigint {
    const symbol = BigInt(`0x${/^([0-9a-f]+) \S linux_banner$/m.exec(run('nm', [vmlinux]).stdout)![1]}`);
    const head = fileHead(core, 1 << 16);
    const offset = /KERNELOFFSET=([0-9a-f]+)/.exec(head.toString('latin1'))?.[1];
    return symbol + (offset === undefined ? 0n : BigInt(`0x${offset}`));
  }

  /** Each reader on one dump; returns the names of those that failed. kdump files skip readelf and gdb. */
  async function readerFailures(core: string, banner: bigint, kind: 'elf' | 'kdump'): Promise<string[]> {
    const readers = fetchForeignReaders(c.debian);
    const emulated = (program: string, args: readonly string[], input = '') =>
      runAsync(c.user, ['-L', readers.root, program, ...args], input);
    const name = path.basename(core);
    const dmesg = path.join(work, `${name}.dmesg`);
    fs.rmSync(dmesg, { force: true });
    const [crash] = await Promise.all([
      emulated(readers.crash, ['-s', vmlinux, core], 'sys\nlog\nquit\n'),
      emulated(readers.makedumpfile, ['--dump-dmesg', core, dmesg]),
    ]);
    const failures: string[] = [];
    if (kind === 'elf') {
      const readelf = run('readelf', ['-h', '-l', '-n', '-W', core]);
      if (readelf.status !== 0 || readelf.stderr !== '') failures.push('readelf');
      const gdb = run('gdb-multiarch', ['-batch', '-nx', '-ex', `x/s 0x${banner.toString(16)}`, '-c', core]);
      if (!gdb.stdout.includes(`Linux version ${release}`)) failures.push('gdb-multiarch');
    }
    // drgn reads ELF cores itself and (plain) kdump files through libkdumpfile.
    if (!drgnReadsKernel(core, vmlinux, release, work)) failures.push('drgn');
    if (!crash.stdout.includes(`RELEASE: ${release}`) || !crash.stdout.includes('VMDUMP-KMSG-MARKER')) failures.push('crash');
    if (!fs.existsSync(dmesg) || !fs.readFileSync(dmesg, 'utf8').includes('VMDUMP-KMSG-MARKER')) failures.push('makedumpfile');
    return failures;
  }
});
