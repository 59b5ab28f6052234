/**
 * The contract every architecture's target signs (src/targets/target.ts), run for each one that
 * is registered: QEMU's own notes of a real guest (the PT_NOTE of QEMU 7.2's dump, in
 * test/fuzz-corpus) read back into vCPU state and written again as QEMU writes them give QEMU's
 * notes byte for byte: the live source's round trip. A target without such a QEMU sample fails
 * here, so adding an architecture means bringing one.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeQemuNotes, registered } from '../src/targets/index.js';
import { buildNotes } from '../src/transforms/plan/notes.js';
import { readElfFile } from './helpers/elf-reader.js';

/** QEMU's notes of each target's test guest: the q35 x86_64 guest, aarch64 virt (SVE, VMCOREINFO), s390-ccw. */
const qemuSamples: Readonly<Record<string, string>> = {
  x86: 'notes-core-q35.elf',
  aarch64: 'notes-core-virt.elf',
  s390x: 'notes-core-s390x.elf',
};

describe.each(registered.map((target) => [target.name, target] as const))('target %s', (name, target) => {
  it("has a sample of QEMU's own notes", () => {
    expect(qemuSamples[name], `test/fuzz-corpus needs QEMU's notes dump of a ${name} guest`).toBeDefined();
  });

  it("QEMU's notes → vCPU state → notes gives QEMU's notes byte for byte, in QEMU's order", () => {
    const file = path.join(import.meta.dirname, 'fuzz-corpus', qemuSamples[name] ?? 'missing');
    const decoded = decodeQemuNotes(fs.readFileSync(file));
    expect(decoded.target).toBe(target);
    expect(decoded.vcpus.length).toBeGreaterThan(0);
    const arch = decoded.architecture([]);
    expect(target.machines).toContain(arch.machine);
    const rebuilt = buildNotes(
      { arch, vcpus: decoded.vcpus, ...(decoded.vmcoreinfo ? { vmcoreinfo: decoded.vmcoreinfo } : {}) },
      'qemu',
    );
    const qemu = readElfFile(file).notes;
    expect(rebuilt.map((n) => [n.name, n.type, Buffer.from(n.desc).toString('hex')])).toEqual(
      qemu.map((n) => [n.name, n.type, n.desc.toString('hex')]),
    );
  });
});
