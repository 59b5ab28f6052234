/**
 * The library and the CLI are one product: the same request gives the same bytes. A small
 * x86_64 "Linux" guest described as a raw image (its VMCOREINFO names the kernel's top page
 * table, which maps the direct map at 0xffff888000000000 with a 1 GiB page) is dumped by the CLI
 * and by prepareDump + outputDestination + startDump, for the default Linux layout, --paging and
 * a plain kdump file; the files must be identical, and the default layout must really be the
 * Linux one (so the comparison covers discovery, not only planning).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openRawImage } from '../src/sources/raw/raw-image.js';
import { outputDestination, startDump } from '../src/pipeline/run-dump.js';
import { prepareDump, type DumpRequest } from '../src/transforms/prepare-dump.js';
import { fillPattern } from './helpers/guests.js';
import { DIRECT_MAP, MiB, UTSNAME, mapKernel, vmcoreinfoText } from './helpers/linux-like.js';
import { runCli, tempDir } from './helpers/machines.js';
import { expectSameFile } from './helpers/same-file.js';
import { readKdump } from './helpers/kdump-reader.js';

const dir = tempDir('vmdump-library-cli-');
let machine: string;

function writeLinuxLikeGuest(): string {
  const ram = Buffer.alloc(64 * MiB);
  fillPattern(ram, 0n);
  const pml4 = mapKernel(ram, 0);
  fs.writeFileSync(path.join(dir, 'ram.img'), ram);
  fs.writeFileSync(path.join(dir, 'vmcoreinfo.txt'), vmcoreinfoText(0, UTSNAME[2]!));
  const description = {
    arch: 'x86_64',
    ram: [{ address: '0x0', size: 64 * MiB, file: 'ram.img' }],
    vmcoreinfo: 'vmcoreinfo.txt',
    vcpus: [{ rip: '0xffffffff81000000', cr0: '0x80050033', cr3: `0x${pml4.toString(16)}`, cr4: '0x20', efer: '0xd00' }],
  };
  const file = path.join(dir, 'machine.json');
  fs.writeFileSync(file, JSON.stringify(description));
  return file;
}

beforeAll(() => {
  machine = writeLinuxLikeGuest();
});

async function libraryDump(request: DumpRequest, output: string): Promise<string> {
  const guest = await openRawImage(machine);
  try {
    const prepared = await prepareDump(guest, request);
    const { destination } = outputDestination(output, prepared);
    await startDump(prepared, destination, { threads: 2 }).result;
    return prepared.readers;
  } finally {
    await guest.close();
  }
}

describe("a library call with the CLI's options writes the CLI's bytes", () => {
  it.each([
    ['the default Linux layout', [], {}, /Linux \/proc\/vmcore layout/],
    ['--paging', ['--paging'], { paging: true }, /physical layout/],
    ['kdump-zstd into a plain file', ['--format', 'kdump-zstd', '--threads', '2'], { format: 'kdump-zstd' }, undefined],
    ['-d 1, ELF (system RAM, zero pages read first)', ['-d', '1'], { dumpLevel: 1 }, undefined],
    ['-d 1, kdump-lzo', ['--format', 'kdump-lzo', '-d', '1'], { format: 'kdump-lzo', dumpLevel: 1 }, undefined],
  ] as const)('%s', async (_name, args, request: DumpRequest, readers) => {
    const fromCli = path.join(dir, `cli-${args.join('')}.dump`);
    const fromLibrary = path.join(dir, `library-${args.join('')}.dump`);
    const cli = await runCli(['raw', machine, ...args, '--progress', 'none', '-o', fromCli]);
    expect(cli.stderr).not.toMatch(/error/);
    expect(cli.code).toBe(0);
    const libraryReaders = await libraryDump(request, fromLibrary);
    expectSameFile(fromLibrary, fromCli);
    if (readers !== undefined) {
      expect(libraryReaders).toMatch(readers);
      expect(cli.stderr).toMatch(readers);
    }
  });

  it("the default layout is Linux's: RAM at the direct map found in the guest's page tables", async () => {
    const guest = await openRawImage(machine);
    try {
      const prepared = await prepareDump(guest, {});
      expect(prepared.discovery).toMatchObject({
        kind: 'linux',
        linux: { kind: 'mapped', facts: { directMapBase: DIRECT_MAP } },
      });
    } finally {
      await guest.close();
    }
  });

  it("a kdump header carries the guest kernel's own utsname (init_uts_ns through VMCOREINFO); --layout qemu keeps QEMU's machine alone", async () => {
    const guest = await openRawImage(machine);
    try {
      const prepared = await prepareDump(guest, { format: 'kdump-zlib' });
      expect(prepared.format === 'kdump' && prepared.utsname?.source).toBe('init_uts_ns');
      const out = path.join(dir, 'uts.kdump');
      await startDump(prepared, outputDestination(out, prepared).destination, { threads: 1 }).result;
      expect(readKdump(fs.readFileSync(out)).utsname).toEqual(UTSNAME);
      const qemu = path.join(dir, 'uts-qemu.kdump');
      const qemuLayout = await prepareDump(guest, { format: 'kdump-zlib', layout: 'qemu' });
      await startDump(qemuLayout, outputDestination(qemu, qemuLayout).destination, { threads: 1 }).result;
      expect(readKdump(fs.readFileSync(qemu)).utsname).toEqual(['', '', '', '', 'x86_64', '']);
    } finally {
      await guest.close();
    }
    const cli = await runCli([
      'raw',
      machine,
      '--format',
      'kdump-zlib',
      '--progress',
      'none',
      '--force',
      '-o',
      path.join(dir, 'uts-cli.kdump'),
    ]);
    expect(cli.stderr).toContain("vmdump: header utsname: the guest kernel's own init_uts_ns (6.1.0-test, x86_64)");
    expect(cli.stderr).toContain('vmdump: opens in crash, makedumpfile and drgn (libkdumpfile)');
  });

  it('the library refuses what the CLI refuses: a kdump format with --paging or a filter', async () => {
    const guest = await openRawImage(machine);
    try {
      const message = '--format kdump-zstd writes physical memory whole; --paging, --begin and --length go with --format elf';
      await expect(prepareDump(guest, { format: 'kdump-zstd', paging: true })).rejects.toMatchObject({ code: 'usage', message });
      await expect(prepareDump(guest, { format: 'kdump-zstd', filter: { begin: 0n, length: 4096n } })).rejects.toMatchObject({
        code: 'usage',
        message,
      });
    } finally {
      await guest.close();
    }
    const cli = await runCli(['raw', machine, '--format', 'kdump-zstd', '--paging', '-o', path.join(dir, 'refused.kdump')]);
    expect([cli.code, cli.stderr]).toEqual([
      2,
      `vmdump: error: ${'--format kdump-zstd writes physical memory whole; --paging, --begin and --length go with --format elf'}\n`,
    ]);
  });
});
