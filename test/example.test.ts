/** The README's third command: the bundled saved VM dumps, and the result holds what the guest wrote. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { unpackExample } from '../scripts/unpack-example.js';
import { readElfFile } from './helpers/elf-reader.js';
import { runCli, tempDir } from './helpers/machines.js';

const dir = tempDir('vmdump-example-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it("vmdump saved on the bundled stream: 2 vCPUs in long mode, the guest's page stamps in place", async () => {
  const stream = unpackExample(dir);
  const core = path.join(dir, 'core.elf');
  const result = await runCli(['saved', stream, '-o', core]);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/ELF64 little-endian EM_X86_64, portable layout, 2 PT_LOAD, 2 vCPUs/);
  const elf = readElfFile(core);
  expect(elf.notes.map((n) => n.name)).toEqual(['CORE', 'CORE', 'QEMU', 'QEMU']);
  // The tiny guest's known registers on the boot vCPU (test-guests/tiny.S): rax = 0x1111111111111111 at prstatus+192.
  expect(elf.notes[0]!.desc.readBigUInt64LE(192)).toBe(0x1111111111111111n);
  const load = elf.phdrs.find((p) => p.type === 1 && p.paddr === 0n)!;
  const page = Buffer.alloc(12);
  const fd = fs.openSync(core, 'r');
  fs.readSync(fd, page, 0, 12, Number(load.offset) + 0x200000);
  fs.closeSync(fd);
  expect([page.toString('latin1', 0, 4), page.readUInt32LE(4)]).toEqual(['VDMP', 0x200000]);
});
