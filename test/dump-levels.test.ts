/**
 * Dump levels (issue 19, docs/dump-levels.md): on the Linux guest filled with every class of page
 * (page cache with and without buffer heads, hugetlb pages, anonymous memory, free pages), paused,
 * vmdump -d N keeps exactly the pages makedumpfile 1.7 -d N keeps from vmdump's full default-
 * layout ELF dump of the same paused guest: the 2nd bitmaps bit for bit, the 1st bitmaps and
 * max_mapnr, and every kept page's bytes. From the saved VM (every level, plain and flattened)
 * and from the live VM over QMP (its RAM read through pmemsave's one pass). crash (log, bt -a,
 * kmem -i) and makedumpfile --dump-dmesg read the -d 31 file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { runCli, tempDir } from './helpers/machines.js';
import { pageMismatches, readFlattened, readKdump, type KdumpFile } from './helpers/kdump-reader.js';
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

/** What makedumpfile and vmdump must agree on: the bitmaps and max_mapnr. */
function bitmapsOf(dump: KdumpFile): { maxMapnr: bigint; bitmap1: string; bitmap2: string; pages: number } {
  // The bitmaps are as long as their blocks; compare the bytes up to max_mapnr.
  const bytes = Math.ceil(Number(dump.maxMapnr64) / 8);
  return {
    maxMapnr: dump.maxMapnr64,
    bitmap1: dump.bitmap1.subarray(0, bytes).toString('hex'),
    bitmap2: dump.bitmap2.subarray(0, bytes).toString('hex'),
    pages: dump.pfns.length,
  };
}

describe('dump levels on the filled Linux guest', () => {
  judges(
    'vmdump -d N keeps exactly the pages makedumpfile -d N keeps, for 1, 2, 4, 8, 16 and 31, saved and live',
    async () => {
      const linux = buildLinuxGuest();
      const socket = path.join(dir, 'vmdump.sock');
      const guest = await startGuest(
        linuxGuestConfig(linux, {
          memory: '512M',
          kaslr: true,
          fill: true,
          extra: ['-qmp', `unix:${socket},server=on,wait=off`],
        }),
        dir,
      );
      const stream = path.join(dir, 'vm.state');
      const live = path.join(dir, 'live-31.kdump');
      try {
        expect(guest.serialText()).toMatch(/VMDUMP-LINUX-FILLED \d+/);
        await guest.qmp.execute('stop');
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
      }
      const reference = readKdump(fs.readFileSync(path.join(dir, 'vmdump-31.kdump')));
      // Left out for real: the guest's 512 MiB against what -d 31 keeps (the brd RAM disk stays: kernel memory).
      expect(reference.pfns.length).toBeLessThan(131072 / 3);
      expect(bitmapsOf(readKdump(fs.readFileSync(live)))).toEqual(bitmapsOf(reference));
      // Flattened, another codec: the same pages once makedumpfile -R's reassembly is done.
      const flat = path.join(dir, 'vmdump-31.flat');
      expect((await runCli(['saved', stream, '--format', 'kdump-lzo', '-d', '31', '--flattened', '-o', flat])).code).toBe(0);
      const reassembled = readKdump(readFlattened(fs.readFileSync(flat)).reassembled);
      expect(bitmapsOf(reassembled)).toEqual(bitmapsOf(reference));
      expect(pageMismatches(reassembled, reference)).toEqual({ pfnsEqual: true, differing: 0 });
      // The readers.
      const filtered = path.join(dir, 'vmdump-31.kdump');
      const dmesg = path.join(dir, 'dmesg.txt');
      run('makedumpfile', ['--dump-dmesg', filtered, dmesg]);
      expect(fs.readFileSync(dmesg, 'utf8')).toContain('VMDUMP-KMSG-MARKER');
      if (vmlinux !== undefined) {
        const crash = run('sh', ['-c', `printf 'log\\nbt -a\\nkmem -i\\nquit\\n' | timeout 300 crash -s '${vmlinux}' '${filtered}'`]);
        expect(crash.stdout).toContain('VMDUMP-KMSG-MARKER');
        expect(crash.stdout).toMatch(/PID: \d+ .*CPU: 1/);
        expect(crash.stdout).toMatch(/TOTAL MEM\s+\d+/);
        expect(crash.stdout).not.toMatch(/page excluded|invalid kernel virtual address/);
      }
    },
    600_000,
  );
});
