/**
 * Dump levels (issue 19, docs/dump-levels.md): on the Linux guest filled with every class of page
 * (page cache with and without buffer heads, hugetlb pages, anonymous memory, free pages), paused,
 * vmdump -d N keeps exactly the pages makedumpfile 1.7 -d N keeps from vmdump's full default-
 * layout ELF dump of the same paused guest: the 2nd bitmaps bit for bit, the 1st bitmaps and
 * max_mapnr, and every kept page's bytes. The ELF form against makedumpfile -E -d N: the same
 * program headers and the same bytes for every system-RAM segment (makedumpfile -E also keeps the
 * VRAM and ROM segments past max_mapnr, inconsistently from level to level; vmdump leaves them out
 * as its kdump form and /proc/vmcore do: docs/dump-levels.md §5). From the saved VM (every level,
 * plain and flattened) and from the live VM over QMP (its RAM read through pmemsave's one pass),
 * with KASLR; without it, from the paused VM migrated into vmdump (--live) and over pmemsave,
 * against makedumpfile on vmdump's full dump of the same paused VM. crash (log, bt -a, kmem -i)
 * and makedumpfile --dump-dmesg read the -d 31 files. (aarch64 and s390x: dump-levels-arches.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { runCli, tempDir } from './helpers/machines.js';
import { bitmapsOf, pageMismatches, readFlattened, readKdump } from './helpers/kdump-reader.js';
import { elfAgainstMakedumpfile, readElfFile } from './helpers/elf-reader.js';
import { buildLinuxGuest, fetchLinuxVmlinux, saveStream, startGuest, QEMU, linuxGuestConfig } from '../scripts/qemu-harness.js';
import { hasTool, inCi, itWithTools, mayBootQemu, run } from './helpers/tools.js';

const judges = itWithTools([
  [QEMU, 'qemu-system-x86'],
  ['makedumpfile', 'makedumpfile'],
  ['crash', 'crash'],
]);
const dir = tempDir('vmdump-levels-');
let vmlinux: string | undefined;
beforeAll(() => {
  if (mayBootQemu(QEMU) && (inCi || hasTool('crash'))) vmlinux = fetchLinuxVmlinux();
}, 600_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Boots the filled guest with a second QMP socket for vmdump, paused once filled. */
async function pausedFilledGuest(
  work: string,
  kaslr: boolean,
): Promise<{ socket: string; guest: Awaited<ReturnType<typeof startGuest>> }> {
  const socket = path.join(work, 'vmdump.sock');
  const config = linuxGuestConfig(buildLinuxGuest(), {
    memory: '512M',
    kaslr,
    fill: true,
    extra: ['-qmp', `unix:${socket},server=on,wait=off`],
  });
  const guest = await startGuest(config, work);
  expect(guest.serialText()).toMatch(/VMDUMP-LINUX-FILLED \d+/);
  await guest.qmp.execute('stop');
  return { socket, guest };
}

/**
 * The raw source's view of a full default-layout dump: its system-RAM segments (the direct map;
 * not the kernel image's alias, not VRAM or ROMs) as image files, and its VMCOREINFO.
 */
function rawMachineOf(core: string, work: string): string {
  const elf = readElfFile(core);
  const ram = elf.phdrs
    .filter((p) => p.type === 1 && p.vaddr !== 0n && p.vaddr < 0xffff_ffff_8000_0000n)
    .map((p, i) => {
      const file = `ram${i}.img`;
      const from = fs.openSync(core, 'r');
      const to = fs.openSync(path.join(work, file), 'w');
      const buffer = Buffer.alloc(8 << 20);
      for (let at = 0n; at < p.filesz; at += BigInt(buffer.length)) {
        const length = Number(p.filesz - at < BigInt(buffer.length) ? p.filesz - at : BigInt(buffer.length));
        fs.readSync(from, buffer, 0, length, Number(p.offset + at));
        fs.writeSync(to, buffer, 0, length);
      }
      fs.closeSync(from);
      fs.closeSync(to);
      return { address: `0x${p.paddr.toString(16)}`, size: Number(p.filesz), file };
    });
  fs.writeFileSync(path.join(work, 'vmcoreinfo.txt'), elf.notes.find((n) => n.name === 'VMCOREINFO')!.desc);
  const machine = path.join(work, 'machine.json');
  fs.writeFileSync(machine, JSON.stringify({ arch: 'x86_64', ram, vmcoreinfo: 'vmcoreinfo.txt' }));
  return machine;
}

describe('dump levels on the filled Linux guest', () => {
  judges(
    'vmdump -d N keeps exactly the pages makedumpfile -d N keeps, for 1, 2, 4, 8, 16 and 31, saved and live',
    async () => {
      const { socket, guest } = await pausedFilledGuest(dir, true);
      const stream = path.join(dir, 'vm.state');
      const live = path.join(dir, 'live-31.kdump');
      try {
        await saveStream(guest, stream);
        // The live source with anonymous RAM reads it through pmemsave's FIFO, one front-to-back pass.
        const dumped = await runCli(['qmp', socket, '--format', 'kdump-zstd', '-d', '31', '-o', live]);
        expect([dumped.code, dumped.stderr]).toEqual([0, expect.stringMatching(/dump level 31 .*left out cache/)]);
      } finally {
        await guest.quit();
      }
      const full = path.join(dir, 'full.elf');
      expect((await runCli(['saved', stream, '-o', full])).code).toBe(0);
      for (const level of [1, 2, 4, 8, 16, 31]) {
        const ours = path.join(dir, `vmdump-${level}.kdump`);
        const theirs = path.join(dir, `makedumpfile-${level}.kdump`);
        const made = await runCli(['saved', stream, '--format', 'kdump-zlib', '-d', String(level), '-o', ours]);
        expect([level, made.code, made.stderr]).toEqual([level, 0, expect.stringMatching(`dump level ${level} `)]);
        const judged = run('makedumpfile', ['-c', '-d', String(level), full, theirs]);
        expect([level, judged.stdout]).toEqual([level, expect.stringMatching(/makedumpfile Completed/)]);
        const [a, b] = [readKdump(fs.readFileSync(ours)), readKdump(fs.readFileSync(theirs))];
        expect([level, bitmapsOf(a)]).toEqual([level, bitmapsOf(b)]);
        expect([level, pageMismatches(a, b)]).toEqual([level, { pfnsEqual: true, differing: 0 }]);
        fs.rmSync(theirs);
        if (level !== 31) fs.rmSync(ours);
        // The ELF form.
        const oursElf = path.join(dir, `vmdump-${level}.elf`);
        const theirsElf = path.join(dir, `makedumpfile-${level}.elf`);
        expect((await runCli(['saved', stream, '-d', String(level), '-o', oursElf])).code).toBe(0);
        expect(run('makedumpfile', ['-E', '-d', String(level), full, theirsElf]).stdout).toMatch(/makedumpfile Completed/);
        expect([level, elfAgainstMakedumpfile(oursElf, theirsElf)]).toEqual([level, { headers: [], bytesEqual: true }]);
        fs.rmSync(theirsElf);
        if (level !== 31) fs.rmSync(oursElf);
      }
      const reference = readKdump(fs.readFileSync(path.join(dir, 'vmdump-31.kdump')));
      // Left out for real: the guest's 512 MiB against what -d 31 keeps (the brd RAM disk stays: kernel memory).
      expect(reference.pfns.length).toBeLessThan(131072 / 3);
      expect(bitmapsOf(readKdump(fs.readFileSync(live)))).toEqual(bitmapsOf(reference));
      // The raw source: the same RAM as image files described with its VMCOREINFO.
      const raw = path.join(dir, 'raw-31.kdump');
      expect((await runCli(['raw', rawMachineOf(full, dir), '--format', 'kdump-zlib', '-d', '31', '-o', raw])).code).toBe(0);
      expect(bitmapsOf(readKdump(fs.readFileSync(raw)))).toEqual(bitmapsOf(reference));
      // Flattened, another codec: the same pages once makedumpfile -R's reassembly is done.
      const flat = path.join(dir, 'vmdump-31.flat');
      expect((await runCli(['saved', stream, '--format', 'kdump-lzo', '-d', '31', '--flattened', '-o', flat])).code).toBe(0);
      const reassembled = readKdump(readFlattened(fs.readFileSync(flat)).reassembled);
      expect(bitmapsOf(reassembled)).toEqual(bitmapsOf(reference));
      expect(pageMismatches(reassembled, reference)).toEqual({ pfnsEqual: true, differing: 0 });
      // The readers.
      for (const filtered of [path.join(dir, 'vmdump-31.kdump'), path.join(dir, 'vmdump-31.elf')]) {
        const dmesg = path.join(dir, 'dmesg.txt');
        fs.rmSync(dmesg, { force: true });
        run('makedumpfile', ['--dump-dmesg', filtered, dmesg]);
        expect([filtered, fs.readFileSync(dmesg, 'utf8')]).toEqual([filtered, expect.stringContaining('VMDUMP-KMSG-MARKER')]);
        if (vmlinux === undefined) continue;
        const crash = run('sh', [
          '-c',
          `printf 'log\\nbt -a\\nkmem -i\\nquit\\n' | timeout 300 crash -s '${vmlinux}' '${filtered}'`,
        ]);
        expect(crash.stdout).toContain('VMDUMP-KMSG-MARKER');
        expect(crash.stdout).toMatch(/PID: \d+ .*CPU: 1/);
        expect(crash.stdout).toMatch(/TOTAL MEM\s+\d+/);
        expect(crash.stdout).not.toMatch(/page excluded|invalid kernel virtual address/);
      }
    },
    600_000,
  );

  judges(
    'without KASLR: -d 31 from the paused VM migrated into vmdump (--live) and over pmemsave (kdump and ELF) keeps what makedumpfile keeps',
    async () => {
      const work = path.join(dir, 'nokaslr');
      const { socket, guest } = await pausedFilledGuest(work, false);
      const [migrated, pmemsaved, pmemsavedElf, full] = ['live.kdump', 'pmemsave.kdump', 'pmemsave.elf', 'full.elf'].map((name) =>
        path.join(work, name),
      );
      try {
        // --live first: migration leaves the VM "postmigrate" (paused, memory untouched), which pmemsave still reads.
        const live = await runCli(['qmp', socket, '--live', '--format', 'kdump-snappy', '-d', '31', '-o', migrated!]);
        expect([live.code, live.stderr]).toEqual([0, expect.stringMatching(/dump level 31 /)]);
        expect((await runCli(['qmp', socket, '--format', 'kdump-zlib', '-d', '31', '-o', pmemsaved!])).code).toBe(0);
        // The ELF form reads the kernel image's pages first (spans), then each range in one pass with gaps.
        expect((await runCli(['qmp', socket, '-d', '31', '-o', pmemsavedElf!])).code).toBe(0);
        expect((await runCli(['qmp', socket, '-o', full!])).code).toBe(0);
      } finally {
        await guest.quit();
      }
      const theirs = path.join(work, 'makedumpfile.kdump');
      expect(run('makedumpfile', ['-c', '-d', '31', full!, theirs]).stdout).toMatch(/makedumpfile Completed/);
      const reference = readKdump(fs.readFileSync(theirs));
      const theirsElf = path.join(work, 'makedumpfile.elf');
      expect(run('makedumpfile', ['-E', '-d', '31', full!, theirsElf]).stdout).toMatch(/makedumpfile Completed/);
      expect(elfAgainstMakedumpfile(pmemsavedElf!, theirsElf)).toEqual({ headers: [], bytesEqual: true });
      for (const ours of [migrated!, pmemsaved!]) {
        const dump = readKdump(fs.readFileSync(ours));
        expect([ours, bitmapsOf(dump)]).toEqual([ours, bitmapsOf(reference)]);
        expect([ours, pageMismatches(dump, reference)]).toEqual([ours, { pfnsEqual: true, differing: 0 }]);
      }
      fs.rmSync(work, { recursive: true, force: true });
    },
    600_000,
  );
});
