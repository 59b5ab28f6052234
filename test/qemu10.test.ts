/**
 * QEMU 10.0, as Debian 13 ships it, beside the host's 7.2 (issue 16): its qemu-system-x86 runs in a
 * debootstrap root through chroot (test-guests/qemu10-root.sh). The test's folder is bind-mounted
 * into the root at the same path, so QEMU and vmdump name the same files (vmdump's own work folders
 * too: the CLI runs with TMPDIR there). Judged by QEMU 10's own dump-guest-memory of the same paused
 * state, and for the Linux guest by the readers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  buildLinuxGuest,
  buildTinyGuests,
  fetchLinuxVmlinux,
  linuxGuestConfig,
  qemu10Root,
  saveReferences,
  startGuest,
} from '../scripts/qemu-harness.js';
import { linuxReaderFailures } from './helpers/linux-readers.js';
import { CLI, runCli, tempDir } from './helpers/machines.js';
import { expectSameFile } from './helpers/same-file.js';
import { libvirtHeader } from './helpers/libvirt.js';
import { fastTier, inCi, run } from './helpers/tools.js';

const work = tempDir('vmdump-qemu10-');
let root: string | undefined;
let mounted: string | undefined;

beforeAll(() => {
  if (fastTier) return;
  const made = qemu10Root();
  if ('missing' in made) {
    if (inCi) throw new Error(made.missing);
    console.warn(`*** SKIPPING the QEMU 10 tests: ${made.missing} ***`);
    return;
  }
  const target = path.join(made.root, work);
  fs.mkdirSync(target, { recursive: true });
  const bound = spawnSync('mount', ['--bind', work, target], { encoding: 'utf8' });
  if (bound.status !== 0) throw new Error(`cannot bind ${work} into the QEMU 10 root: ${bound.stderr}`);
  [root, mounted] = [made.root, target];
}, 900_000);

afterAll(() => {
  if (mounted === undefined) return;
  // The root lives in the test cache: nothing of this run may stay mounted in it.
  const unbound = spawnSync('umount', [mounted], { encoding: 'utf8' });
  if (unbound.status !== 0) spawnSync('umount', ['-l', mounted]);
  fs.rmdirSync(mounted);
});

function needsRoot(ctx: TestContext): string {
  if (root === undefined) return ctx.skip('QEMU 10 is not available here (see the warning above)');
  return root;
}

const cli = (args: readonly string[]) => runCli(args, { tmpdir: work });

describe('QEMU 10.0 (Debian 13), through chroot', () => {
  it.for([
    { machine: 'q35', mappedRam: false, multifd: false, libvirt: false },
    { machine: 'q35', mappedRam: true, multifd: false, libvirt: false },
    { machine: 'q35', mappedRam: true, multifd: true, libvirt: false },
    { machine: 'pc', mappedRam: false, multifd: false, libvirt: false },
    { machine: 'pc-q35-8.2', mappedRam: false, multifd: false, libvirt: false },
    { machine: 'pc-i440fx-9.2', mappedRam: false, multifd: false, libvirt: false },
    { machine: 'pc-i440fx-9.2', mappedRam: true, multifd: false, libvirt: true },
  ])(
    "machine $machine, mapped-ram $mappedRam, multifd $multifd, libvirt sparse $libvirt: the saved file and the live source give QEMU 10.0's own dump byte for byte (--layout qemu)",
    { timeout: 300_000 },
    // libvirt: libvirt's sparse save format, its header then a mapped-ram stream QEMU wrote at that offset.
    async ({ machine, mappedRam, multifd, libvirt }, ctx) => {
      const qemuRoot = needsRoot(ctx);
      const dir = path.join(work, `tiny-${machine}-${mappedRam ? 'mapped' : 'stream'}`);
      const socket = path.join(dir, 'vmdump.sock');
      const guest = await startGuest(
        {
          root: qemuRoot,
          machine,
          memory: '128M',
          smp: 2,
          kernel: copyIn(buildTinyGuests().tiny64, dir),
          extra: ['-qmp', `unix:${socket},server=on,wait=off`],
        },
        dir,
      );
      const live = path.join(dir, 'live.core');
      let refs: { dump: string; stream: string };
      try {
        refs = await saveReferences(guest, { mappedRam, multifd, ...(libvirt ? { streamOffset: 1 << 16 } : {}) });
        if (libvirt) {
          const fd = fs.openSync(refs.stream, 'r+');
          fs.writeSync(fd, libvirtHeader('LibvirtQemudSave', 6, '<domain/>', (1 << 16) - 92), 0, 1 << 16, 0);
          fs.closeSync(fd);
        }
        const fromLive = await cli(['qmp', socket, '--layout', 'qemu', '-o', live]);
        expect([fromLive.code, fromLive.stderr]).toEqual([0, expect.stringContaining('qemu layout')]);
      } finally {
        await guest.quit();
      }
      const saved = path.join(dir, 'saved.core');
      const fromSaved = await cli(['saved', refs.stream, '--layout', 'qemu', '-o', saved]);
      expect([fromSaved.code, fromSaved.stderr]).toEqual([0, expect.stringContaining('qemu layout')]);
      expectSameFile(saved, refs.dump);
      expectSameFile(live, refs.dump);
      if (mappedRam) {
        // Through a pipe every zero page would be copied first: refused from its first bytes.
        const piped = run('bash', [
          '-c',
          `cat '${refs.stream}' | TMPDIR='${work}' '${process.execPath}' '${CLI}' saved - -o '${path.join(dir, 'piped.core')}'`,
        ]);
        expect([piped.status, piped.stderr]).toEqual([
          3,
          expect.stringMatching(
            /^vmdump: error: this is a mapped-ram file \(.*\): vmdump reads it in place, so give it the file, not a pipe/,
          ),
        ]);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  );

  it("the Linux guest (KASLR): --live leaves it running; live, --live and saved (mapped-ram) dumps pass every reader; --layout qemu is QEMU 10.0's dump", async (ctx) => {
    const qemuRoot = needsRoot(ctx);
    const dir = path.join(work, 'linux');
    const socket = path.join(dir, 'vmdump.sock');
    const linux = buildLinuxGuest();
    const vmlinux = fetchLinuxVmlinux();
    const inside = { ...linux, kernel: copyIn(linux.kernel, dir), initrd: copyIn(linux.initrd, dir) };
    const config = linuxGuestConfig(inside, {
      memory: '512M',
      kaslr: true,
      extra: ['-qmp', `unix:${socket},server=on,wait=off`],
    });
    const guest = await startGuest({ ...config, root: qemuRoot }, dir);
    const [migrated, live] = [path.join(dir, 'migrated.core'), path.join(dir, 'live.core')];
    let refs: { dump: string; stream: string };
    try {
      const fromMigration = await cli(['qmp', socket, '--live', '-o', migrated]);
      expect([fromMigration.code, fromMigration.stderr]).toEqual([
        0,
        expect.stringMatching(/paused for \d+ ms \(live migration switchover\) and is running again/),
      ]);
      expect((await guest.qmp.execute<{ status: string }>('query-status')).status).toBe('running');
      expect((await cli(['qmp', socket, '-o', live])).code).toBe(0);
      // A mapped-ram file (QEMU migrates a paused VM once; --live above read a plain QEMU 10 stream).
      refs = await saveReferences(guest, { mappedRam: true });
    } finally {
      await guest.quit();
    }
    const [saved, savedQemu] = [path.join(dir, 'saved.core'), path.join(dir, 'saved-qemu.core')];
    expect((await cli(['saved', refs.stream, '-o', saved])).code).toBe(0);
    expect((await cli(['saved', refs.stream, '--layout', 'qemu', '-o', savedQemu])).code).toBe(0);
    expectSameFile(savedQemu, refs.dump);
    const head = fs
      .readFileSync(saved)
      .subarray(0, 1 << 16)
      .toString('latin1');
    const offset = BigInt(`0x${/KERNELOFFSET=([0-9a-f]+)/.exec(head)![1]}`);
    const symbol = BigInt(`0x${/^([0-9a-f]+) \S linux_banner$/m.exec(run('nm', [vmlinux]).stdout)![1]}`);
    const banner = symbol + offset;
    for (const core of [saved, live, migrated]) {
      expect([path.basename(core), linuxReaderFailures(core, banner, linux.version, dir, vmlinux)]).toEqual([
        path.basename(core),
        [],
      ]);
    }
    expect(linuxReaderFailures(refs.dump, banner, linux.version, dir, vmlinux)).toEqual(
      expect.arrayContaining(['gdb', 'makedumpfile --dump-dmesg', 'makedumpfile -c -d 31', 'drgn']),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  }, 900_000);
});

/** A copy of `file` in `dir` (inside the bind mount, so QEMU in its root can open it). */
function copyIn(file: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const copy = path.join(dir, path.basename(file));
  fs.copyFileSync(file, copy);
  return copy;
}
