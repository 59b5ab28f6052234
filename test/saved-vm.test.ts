/**
 * Saved VMs against QEMU itself: boot a test guest, stop it, let QEMU write dump-guest-memory
 * (paging false) and a migration stream of the same paused state; `vmdump saved --layout qemu`
 * on the stream must be byte-identical to QEMU's dump.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { readElfFile } from './helpers/elf-reader.js';
import { runCli, tempDir } from './helpers/machines.js';
import { buildLinuxGuest, buildTinyGuests, saveReferences, startGuest, QEMU, linuxGuestConfig } from '../scripts/qemu-harness.js';
import { hasTool, itWithTool, run, itWithTools } from './helpers/tools.js';
import { expectSameFile } from './helpers/same-file.js';

const qemuIt = itWithTool(QEMU, 'qemu-system-x86');
const dir = tempDir('vmdump-saved-');
let guests: { tiny32: string; tiny64: string };
beforeAll(() => {
  if (hasTool('as')) guests = buildTinyGuests();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Reads `length` bytes at guest-physical `address` through the PT_LOADs of a core. */
function readPhysical(core: string, address: bigint, length: number): Buffer {
  const load = readElfFile(core).phdrs.find(
    (p) => p.type === 1 && p.paddr <= address && address + BigInt(length) <= p.paddr + p.filesz,
  );
  if (load === undefined) throw new Error(`no PT_LOAD holds ${address.toString(16)}`);
  const bytes = Buffer.alloc(length);
  const fd = fs.openSync(core, 'r');
  fs.readSync(fd, bytes, 0, length, Number(load.offset + (address - load.paddr)));
  fs.closeSync(fd);
  return bytes;
}

// The guest stores u32 0x504d4456, which reads 'VDMP' in little-endian memory.
const stampOf = (address: bigint): string => `VDMP ${address.toString(16)}`;
function stampAt(core: string, address: bigint): string {
  const bytes = readPhysical(core, address, 12);
  const low = bytes.readUInt32LE(4);
  const high = bytes.readUInt32LE(8);
  return `${bytes.toString('latin1', 0, 4)} ${((BigInt(high) << 32n) | BigInt(low)).toString(16)}`;
}

describe.each([
  { name: 'q35, long mode, 2 vCPUs, 128 MiB', machine: 'q35', bits: 64, smp: 2, memory: '128M', elfClass: 64, phdrs: 5 },
  { name: 'pc, protected mode, 1 vCPU, 128 MiB', machine: 'pc', bits: 32, smp: 1, memory: '128M', elfClass: 64, phdrs: 5 },
  {
    name: 'q35, long mode, 1 vCPU, 4.5 GiB (RAM split at 2 GiB)',
    machine: 'q35',
    bits: 64,
    smp: 1,
    memory: '4608M',
    elfClass: 64,
    phdrs: 6,
  },
  {
    name: 'pc, protected mode, 2 vCPUs, 4.5 GiB (RAM split at 3 GiB)',
    machine: 'pc',
    bits: 32,
    smp: 2,
    memory: '4608M',
    elfClass: 64,
    phdrs: 6,
  },
] as const)('$name', ({ name, machine, bits, smp, memory, phdrs }) => {
  qemuIt(
    'vmdump saved --layout qemu is byte-identical to QEMU dump-guest-memory',
    async () => {
      const work = path.join(dir, name.replace(/\W+/g, '-'));
      const guest = await startGuest({ machine, memory, smp, kernel: bits === 64 ? guests.tiny64 : guests.tiny32 }, work);
      let refs: { dump: string; stream: string };
      try {
        refs = await saveReferences(guest);
      } finally {
        await guest.quit();
      }
      const ours = path.join(work, 'vmdump.core');
      const result = await runCli(['saved', refs.stream, '--layout', 'qemu', '-o', ours]);
      expect(result.stderr).toMatch(/wrote/);
      expect(result.code).toBe(0);
      expectSameFile(ours, refs.dump);
      expect(fs.statSync(ours).size).toBe(fs.statSync(refs.dump).size);
      const parsed = readElfFile(ours);
      expect(parsed.phdrs).toHaveLength(phdrs);
      expect(parsed.notes.filter((n) => n.name === 'CORE')).toHaveLength(smp);
      // Not vacuous: the guest's stamps are where it wrote them, low and (64-bit, > 4 GiB) high.
      expect(stampAt(ours, 0x200000n)).toBe(stampOf(0x200000n));
      if (bits === 64 && memory === '4608M') expect(stampAt(ours, 0x1_0000_0000n)).toBe(stampOf(0x1_0000_0000n));
      fs.rmSync(refs.dump);
      if (memory !== '128M') {
        fs.rmSync(work, { recursive: true, force: true });
        return;
      }
      // The default layout of the same stream is what readers open.
      const portable = path.join(work, 'portable.core');
      expect((await runCli(['saved', refs.stream, '-o', portable])).code).toBe(0);
      expect(run('readelf', ['-l', '-n', '-W', portable]).stdout).toMatch(/NT_PRSTATUS/);
      expect(readPhysical(portable, 0x200000n, 4096).equals(readPhysical(ours, 0x200000n, 4096))).toBe(true);
      fs.rmSync(work, { recursive: true, force: true });
    },
    240_000,
  );
});

describe('a real Linux guest (Debian cloud kernel, -device vmcoreinfo)', () => {
  itWithTools([
    [QEMU, 'qemu-system-x86'],
    ['gdb', 'gdb'],
    ['readelf', 'binutils'],
    ['makedumpfile', 'makedumpfile'],
  ])(
    'qemu layout is byte-identical to QEMU; gdb reads linux_banner; makedumpfile reads the default layout',
    async () => {
      const linux = buildLinuxGuest();
      const work = path.join(dir, 'linux');
      const guest = await startGuest(linuxGuestConfig(linux, { memory: '512M', kaslr: false }), work);
      let refs: { dump: string; stream: string };
      try {
        refs = await saveReferences(guest);
      } finally {
        await guest.quit();
      }
      const serial = guest.serialText();
      const bannerVirtual = BigInt(`0x${/VMDUMP-LINUX-BANNER=([0-9a-f]+)/.exec(serial)![1]}`);
      const version = /VMDUMP-LINUX-VERSION=(.*)/.exec(serial)![1]!.trim();
      const ours = path.join(work, 'qemu-layout.core');
      expect((await runCli(['saved', refs.stream, '--layout', 'qemu', '-o', ours])).code).toBe(0);
      expectSameFile(ours, refs.dump);
      const note = readElfFile(ours).notes.find((n) => n.name === 'VMCOREINFO');
      expect(note?.desc.toString('latin1')).toMatch(new RegExp(`^OSRELEASE=${linux.version}\n`));
      // nokaslr: the kernel image maps at 0xffffffff80000000 + phys_base, and VMCOREINFO says phys_base is 0.
      expect(note!.desc.toString('latin1')).toMatch(/^NUMBER\(phys_base\)=0$/m);
      const physical = bannerVirtual - 0xffffffff80000000n;
      const gdb = run('gdb', ['-batch', '-nx', '-ex', `x/s 0x${physical.toString(16)}`, '-c', ours]);
      expect(gdb.stdout).toContain(version.slice(0, 150));
      // QEMU's own layout defeats makedumpfile (program headers not at 64); the default layout must not.
      const portable = path.join(work, 'portable.core');
      expect((await runCli(['saved', refs.stream, '-o', portable])).code).toBe(0);
      const readelf = run('readelf', ['-l', '-n', '-W', portable]);
      expect(readelf.stderr).toBe('');
      expect(readelf.stdout).toMatch(/VMCOREINFO/);
      {
        const dmesg = path.join(work, 'dmesg.txt');
        const made = run('makedumpfile', ['--dump-dmesg', portable, dmesg]);
        expect(made.stdout + made.stderr).toMatch(/makedumpfile Completed/);
        expect(fs.readFileSync(dmesg, 'utf8')).toMatch(/VMDUMP-KMSG-MARKER hello from the vmdump test guest/);
        expect(run('makedumpfile', ['--dump-dmesg', refs.dump, path.join(work, 'qemu-dmesg.txt')]).status).not.toBe(0);
      }
      fs.rmSync(work, { recursive: true, force: true });
    },
    300_000,
  );
});
