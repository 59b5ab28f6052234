/**
 * The VMCOREINFO search on a real guest whose RAM holds stale copies (issue 18): the Linux test
 * guest (KASLR) is booted twice; the first boot's VMCOREINFO, as QEMU's dump gives it, is loaded
 * into the second boot's RAM by `-device loader`, as text and as a note, above where the kernel
 * keeps its own, the way a kexec'd or rebooted guest keeps its predecessor's. The
 * second boot has the device too, so QEMU's dump says what the right answer is; vmdump searches
 * with the device's copy taken away.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import type { GuestModel } from '../src/guest/guest.js';
import { openSavedVm } from '../src/sources/saved-vm/saved-vm-source.js';
import { prepareDump } from '../src/transforms/prepare-dump.js';
import { buildLinuxGuest, linuxGuestConfig, saveReferences, startGuest, QEMU } from '../scripts/qemu-harness.js';
import { readElfFile } from './helpers/elf-reader.js';
import { runCli, tempDir } from './helpers/machines.js';
import { itWithTool } from './helpers/tools.js';

const qemuIt = itWithTool(QEMU, 'qemu-system-x86');
const dir = tempDir('vmdump-decoy-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Where the stale copies go: above the kernel's own, in RAM an idle 512 MiB guest leaves alone
 * (lower down, the bzImage and the firmware overwrite them at boot, as measured).
 */
const STALE_TEXT = 0x1000_0000n;
const STALE_NOTE = 0x1800_1000n;
const STALE_HIGH = 0x1c00_0000n;

/** The VMCOREINFO text QEMU's own dump carries (from the device). */
function qemuVmcoreinfo(dump: string): Buffer {
  const note = readElfFile(dump).notes.find((n) => n.name === 'VMCOREINFO');
  if (note === undefined) throw new Error(`${dump} has no VMCOREINFO note`);
  return note.desc;
}

function noteBytes(desc: Buffer): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(11, 0);
  header.writeUInt32LE(desc.length, 4);
  header.write('VMCOREINFO\0', 12, 'latin1');
  return Buffer.concat([header, desc]);
}

/** Pages of QEMU's dump that start as VMCOREINFO text or note: what really is in the guest's RAM. */
function copiesIn(dump: string): bigint[] {
  const fd = fs.openSync(dump, 'r');
  const head = Buffer.alloc(24);
  const found: bigint[] = [];
  try {
    for (const phdr of readElfFile(dump).phdrs.filter((p) => p.type === 1)) {
      for (let at = 0n; at < phdr.filesz; at += 4096n) {
        fs.readSync(fd, head, 0, 24, Number(phdr.offset + at));
        if (
          head.subarray(0, 10).toString('latin1') === 'OSRELEASE=' ||
          head.subarray(12, 23).toString('latin1') === 'VMCOREINFO\0'
        )
          found.push(phdr.paddr + at);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return found;
}

const kernelOffset = (text: Buffer) => /KERNELOFFSET=([0-9a-f]+)/.exec(text.toString('latin1'))?.[1];

/** The guest as a source gives it, but without the device's VMCOREINFO (and, if asked, without vCPU state). */
function withoutDevice(guest: GuestModel, vcpus: boolean): GuestModel {
  return { arch: guest.arch, ram: guest.ram, vcpus: vcpus ? guest.vcpus : [], close: () => guest.close() };
}

describe('stale VMCOREINFO copies in guest RAM', () => {
  qemuIt(
    "the running kernel's copy wins, byte for byte the device's; a stale copy given by hand gets no Linux layout",
    async () => {
      const linux = buildLinuxGuest();
      const boot = async (name: string, extra: string[]) => {
        const guest = await startGuest(linuxGuestConfig(linux, { memory: '512M', kaslr: true, extra }), path.join(dir, name));
        try {
          return await saveReferences(guest);
        } finally {
          await guest.quit();
        }
      };
      const stale = qemuVmcoreinfo((await boot('first', [])).dump);
      fs.writeFileSync(path.join(dir, 'stale.txt'), stale);
      fs.writeFileSync(path.join(dir, 'stale.note'), noteBytes(stale));
      const loaders = [
        ['stale.txt', STALE_TEXT],
        ['stale.note', STALE_NOTE],
        ['stale.txt', STALE_HIGH],
      ].flatMap(([file, at]) => [
        '-device',
        `loader,file=${path.join(dir, String(file))},addr=0x${at!.toString(16)},force-raw=on`,
      ]);
      let second = await boot('second', loaders);
      // KASLR may draw the same offset twice (about 1 boot in 500): then the copies are not stale.
      for (let again = 0; again < 2 && kernelOffset(qemuVmcoreinfo(second.dump)) === kernelOffset(stale); again += 1)
        second = await boot('second', loaders);
      const truth = qemuVmcoreinfo(second.dump);
      expect(kernelOffset(truth)).not.toBe(kernelOffset(stale));

      const source = await openSavedVm(second.stream);
      try {
        expect(Buffer.from(source.vmcoreinfo!.desc).equals(truth)).toBe(true);
        // With vCPU state the search ends at the copy of the kernel CR3 runs, never a stale one. Where
        // the kernel's own pages are is the boot's choice: usually ~18 MiB up, in some boots near the
        // top (498 MiB, seen twice), above the stale copies.
        const stale = [STALE_TEXT, STALE_NOTE, STALE_HIGH];
        const running = await prepareDump(withoutDevice(source, true), {});
        expect(running.vmcoreinfo).toMatchObject({ origin: 'memory', stoppedEarly: true });
        const found = running.vmcoreinfo.origin === 'memory' ? running.vmcoreinfo : undefined;
        expect(stale).not.toContain(found!.physical);
        expect(running.discovery).toMatchObject({ kind: 'linux', linux: { kind: 'mapped' } });
        const notes = running.format === 'elf' ? running.plan.records.find((r) => r.kind === 'notes') : undefined;
        const chosen = notes?.kind === 'notes' ? notes.notes.at(-1) : undefined;
        expect(chosen?.name).toBe('VMCOREINFO');
        expect(Buffer.from(chosen!.desc).equals(truth)).toBe(true);
        // Without vCPU state all of RAM is searched: every copy in RAM (the kernel's note and text,
        // the stale ones the guest left intact) is seen, the stale ones fail their page-table check,
        // and of the kernel's pair the note is taken.
        const inRam = copiesIn(second.dump);
        expect(inRam.filter((at) => at >= STALE_TEXT).length).toBeGreaterThanOrEqual(1);
        const searched = await prepareDump(withoutDevice(source, false), {});
        expect(searched.vmcoreinfo).toMatchObject({ origin: 'memory', form: 'note', stoppedEarly: false, copies: inRam.length });
        const note = searched.vmcoreinfo.origin === 'memory' ? searched.vmcoreinfo.physical : undefined;
        expect(inRam).toContain(note);
        expect(stale).not.toContain(note);
      } finally {
        await source.close();
      }

      const given = await runCli([
        'saved',
        second.stream,
        '--vmcoreinfo',
        path.join(dir, 'stale.txt'),
        '-o',
        path.join(dir, 'x.core'),
      ]);
      expect(given.code).toBe(0);
      expect(given.stderr).toContain(`vmdump: VMCOREINFO: from ${path.join(dir, 'stale.txt')}\n`);
      expect(given.stderr).toContain(
        "(not the Linux /proc/vmcore layout: VMCOREINFO's init_top_pgt does not map _stext where phys_base puts it)",
      );
    },
    600_000,
  );
});
