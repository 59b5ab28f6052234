/**
 * Extended program-header numbering at the boundary: 65 534 segments fit e_phnum; 65 535 and
 * 65 536 need PN_XNUM with the real count in section 0's sh_info (docs/elf-vmcore.md §3). readelf
 * judges, in both classes and both layouts.
 */
import * as path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import * as fs from 'node:fs';
import { EM_386, EM_X86_64 } from '../src/formats/elf/elf-constants.js';
import { writeDump } from '../src/pipeline/write-dump.js';
import { fileSink } from '../src/sinks/file-sink.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import type { DumpLayout } from '../src/targets/index.js';
import { guestOf, patternRange } from './helpers/guests.js';
import { readElfFile } from './helpers/elf-reader.js';
import { tempDir } from './helpers/machines.js';
import { itWithTool, run } from './helpers/tools.js';

const readelfIt = itWithTool('readelf', 'binutils');
const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `segments - 1` separate 16-byte ranges (a 16-byte gap between them), plus PT_NOTE. */
async function dumpWithSegments(segments: number, elfClass: 32 | 64, layout: DumpLayout): Promise<string> {
  const ram = Array.from({ length: segments - 1 }, (_, i) => patternRange(BigInt(i) * 32n, 16n));
  const arch = { name: 't', machine: elfClass === 64 ? EM_X86_64 : EM_386, elfClass, endian: 'little', pageSize: 4096 } as const;
  const file = path.join(dir, `${segments}-${elfClass}-${layout}.core`);
  await writeDump(planDump(guestOf({ arch, ram }), { layout }), fileSink(file)).result;
  return file;
}

describe.each([64, 32] as const)('PN_XNUM boundary, ELF%i', (elfClass) => {
  describe.each(['portable', 'qemu'] as const)('%s layout', (layout) => {
    readelfIt.each([
      [65534, '65534', 0xfffe],
      [65535, '65535 (65535)', 0xffff],
      [65536, '65535 (65536)', 0xffff],
    ])('%i segments', async (segments, readelfSays, phnumField) => {
      const core = await dumpWithSegments(segments, elfClass, layout);
      const header = run('readelf', ['-h', '-W', core]);
      expect(header.stderr).toBe('');
      expect(header.stdout).toMatch(new RegExp(`Number of program headers:\\s+${readelfSays.replace(/[()]/g, '\\$&')}\\n`));
      const loads = run('readelf', ['-l', '-W', core]).stdout.match(/^\s+LOAD\s/gm)?.length;
      expect(loads).toBe(segments - 1);
      const parsed = readElfFile(core);
      expect(parsed.phnumField).toBe(phnumField);
      expect(parsed.phdrs.length).toBe(segments);
      const last = parsed.phdrs.at(-1)!;
      expect(last.paddr).toBe(BigInt(segments - 2) * 32n);
      // Portable: a section table only when PN_XNUM needs it; qemu: always NULL + .shstrtab.
      expect(parsed.shnum).toBe(layout === 'qemu' ? 2 : segments >= 0xffff ? 1 : 0);
      fs.rmSync(core);
    });
  });
});
