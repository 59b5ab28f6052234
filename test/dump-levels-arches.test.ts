/**
 * Dump levels on the aarch64 and big-endian s390x Linux guests (docs/dump-levels.md §2), filled with
 * every class of page and paused: vmdump -d N keeps exactly the pages Debian's arm64 / s390x
 * makedumpfile -d N keeps (run under qemu-user) from vmdump's full dump of the same saved VM, for
 * every level — the bitmaps, max_mapnr and every kept page's bytes; the ELF form at -d 31 is
 * makedumpfile -E's file byte for byte (these machines have no VRAM or ROM segment for it to keep,
 * docs/dump-levels.md §5); that makedumpfile's --dump-dmesg and crash (log, kmem -i) read the -d 31 file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { runCli, tempDir } from './helpers/machines.js';
import { bitmapsOf, pageMismatches, readKdump } from './helpers/kdump-reader.js';
import { expectSameFile } from './helpers/same-file.js';
import {
  buildLinuxGuest,
  fetchForeignReaders,
  fetchLinuxVmlinux,
  foreignLinuxGuestConfig,
  saveStream,
  startGuest,
} from '../scripts/qemu-harness.js';
import { hasTool, inCi, itWithTools, run } from './helpers/tools.js';
import { foreignMachines } from './helpers/foreign-machines.js';

const dir = tempDir('vmdump-levels-arches-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe.each(foreignMachines)('dump levels on the $debian Linux guest', (c) => {
  const judges = itWithTools([
    [c.qemu, c.qemuPackage],
    [c.user, 'qemu-user-static'],
  ]);
  judges(
    `vmdump -d N keeps exactly the pages ${c.debian} makedumpfile -d N keeps, for 1, 2, 4, 8, 16 and 31; crash reads -d 31`,
    async () => {
      const work = path.join(dir, c.debian);
      const config = foreignLinuxGuestConfig(c, buildLinuxGuest(c.debian), c.extra);
      const guest = await startGuest({ ...config, append: `${config.append ?? ''} vmdump.fill` }, work);
      const stream = path.join(work, 'vm.state');
      try {
        expect(guest.serialText()).toMatch(/VMDUMP-LINUX-FILLED \d+/);
        await guest.qmp.execute('stop');
        await saveStream(guest, stream);
      } finally {
        await guest.quit();
      }
      const readers = fetchForeignReaders(c.debian);
      const quoted = (args: readonly string[]): string => args.map((a) => `'${a}'`).join(' ');
      const emulated = (program: string, args: readonly string[], input?: string) =>
        run('sh', [
          '-c',
          `${input === undefined ? '' : `printf '${input}' | `}timeout 900 ${c.user} -L '${readers.root}' '${program}' ${quoted(args)}`,
        ]);
      const full = path.join(work, 'full.elf');
      expect((await runCli(['saved', stream, '-o', full])).code).toBe(0);
      for (const level of [1, 2, 4, 8, 16, 31]) {
        const ours = path.join(work, `vmdump-${level}.kdump`);
        const theirs = path.join(work, `makedumpfile-${level}.kdump`);
        expect((await runCli(['saved', stream, '--format', 'kdump-zlib', '-d', String(level), '-o', ours])).code).toBe(0);
        expect(emulated(readers.makedumpfile, ['-c', '-d', String(level), full, theirs]).stdout).toMatch(
          /makedumpfile Completed/,
        );
        const [a, b] = [readKdump(fs.readFileSync(ours)), readKdump(fs.readFileSync(theirs))];
        expect([level, bitmapsOf(a)]).toEqual([level, bitmapsOf(b)]);
        expect([level, pageMismatches(a, b)]).toEqual([level, { pfnsEqual: true, differing: 0 }]);
        fs.rmSync(theirs);
        if (level !== 31) fs.rmSync(ours);
      }
      const [oursElf, theirsElf] = [path.join(work, 'vmdump-31.elf'), path.join(work, 'makedumpfile-31.elf')];
      expect((await runCli(['saved', stream, '-d', '31', '-o', oursElf])).code).toBe(0);
      expect(emulated(readers.makedumpfile, ['-E', '-d', '31', full, theirsElf]).stdout).toMatch(/makedumpfile Completed/);
      expectSameFile(oursElf, theirsElf);
      const filtered = path.join(work, 'vmdump-31.kdump');
      // Left out for real: 512 MiB of RAM, most of it free after the fill.
      expect(readKdump(fs.readFileSync(filtered)).pfns.length).toBeLessThan(131072 / 3);
      const dmesg = path.join(work, 'dmesg.txt');
      emulated(readers.makedumpfile, ['--dump-dmesg', filtered, dmesg]);
      expect(fs.readFileSync(dmesg, 'utf8')).toContain('VMDUMP-KMSG-MARKER');
      if (inCi || hasTool('crash')) {
        const crash = emulated(readers.crash, ['-s', fetchLinuxVmlinux(c.debian), filtered], 'log\\nkmem -i\\nquit\\n');
        expect(crash.stdout).toContain('VMDUMP-KMSG-MARKER');
        expect(crash.stdout).toMatch(/TOTAL MEM\s+\d+/);
      }
      fs.rmSync(work, { recursive: true, force: true });
    },
    900_000,
  );
});
