/**
 * The search for VMCOREINFO in guest RAM (docs/vmcoreinfo-discovery.md), on hand-built aarch64
 * and x86_64 memory: the kernel's note and text pages, copies that are not page-aligned or sit in video RAM,
 * stale copies whose kernel is not there, two different kernels that both check out (refused:
 * aarch64's vCPU state cannot say which runs), and the choices the caller has.
 */
import { describe, expect, it } from 'vitest';
import { EM_AARCH64 } from '../src/formats/elf/elf-constants.js';
import { VmdumpError } from '../src/guest/errors.js';
import type { Architecture, ElfNote, GuestModel } from '../src/guest/guest.js';
import { discoverVmcoreinfo } from '../src/transforms/discover/vmcoreinfo.js';
import { prepareDump } from '../src/transforms/prepare-dump.js';
import { bufferRange, fillPattern, guestOf, x86State } from './helpers/guests.js';
import { MiB, mapKernel, vmcoreinfoText } from './helpers/linux-like.js';

const aarch64: Architecture = { name: 'aarch64', machine: EM_AARCH64, elfClass: 64, endian: 'little', pageSize: 4096 };
const RAM_BASE = 0x4000_0000n;
const RAM_SIZE = 48 << 20;

interface Kernel {
  readonly release: string;
  /** Physical address of _stext; the image's virtual _stext is fixed, kimage_voffset follows. */
  readonly textPhysical: bigint;
}

const STEXT = 0xffff_8000_0801_0000n;
const UTS_OFFSET = 0x20_0000n;

/** The VMCOREINFO text Linux 6.1 on arm64 writes, cut to the fields the layout and the checks read. */
function arm64Vmcoreinfo(kernel: Kernel, extra = ''): string {
  const hex = (v: bigint) => v.toString(16);
  return [
    `OSRELEASE=${kernel.release}`,
    'PAGESIZE=4096',
    `SYMBOL(init_uts_ns)=${hex(STEXT + UTS_OFFSET - 4n)}`,
    'OFFSET(uts_namespace.name)=4',
    `SYMBOL(_stext)=${hex(STEXT)}`,
    'NUMBER(VA_BITS)=48',
    `NUMBER(kimage_voffset)=0x${hex(STEXT - kernel.textPhysical)}`,
    `NUMBER(PHYS_OFFSET)=0x${hex(RAM_BASE)}`,
    `KERNELOFFSET=0`,
    extra,
  ]
    .filter((line) => line !== '')
    .map((line) => `${line}\n`)
    .join('');
}

/** The note as the kernel lays it out in its page: namesz, descsz, type 0, "VMCOREINFO\0" padded, the text. */
function noteBytes(text: string): Uint8Array {
  const desc = Buffer.from(text, 'latin1');
  const note = Buffer.alloc(24 + desc.length);
  note.writeUInt32LE(11, 0);
  note.writeUInt32LE(desc.length, 4);
  note.writeUInt32LE(0, 8);
  note.write('VMCOREINFO\0', 12, 'latin1');
  desc.copy(note, 24);
  return note;
}

/** init_uts_ns.name: six 65-byte fields. */
function utsname(release: string): Uint8Array {
  const bytes = Buffer.alloc(6 * 65);
  bytes.write('Linux', 0, 'latin1');
  bytes.write('guest', 65, 'latin1');
  bytes.write(release, 130, 'latin1');
  bytes.write('#1 SMP', 195, 'latin1');
  bytes.write('aarch64', 260, 'latin1');
  return bytes;
}

class Ram {
  readonly bytes = new Uint8Array(RAM_SIZE);
  put(physical: bigint, data: Uint8Array | string): this {
    this.bytes.set(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, Number(physical - RAM_BASE));
    return this;
  }
  /** A kernel image: its init_uts_ns where its VMCOREINFO says. */
  kernel(kernel: Kernel): this {
    return this.put(kernel.textPhysical + UTS_OFFSET, utsname(kernel.release));
  }
  guest(vram?: Uint8Array): GuestModel {
    const ram = [bufferRange(RAM_BASE, this.bytes)];
    return {
      arch: aarch64,
      vcpus: [],
      ram: vram === undefined ? ram : [bufferRange(0x1000_0000n, vram, false), ...ram],
      close: async () => undefined,
    };
  }
}

const running: Kernel = { release: '6.1.0-57-cloud-arm64', textPhysical: RAM_BASE + 0x21_0000n };
const stale: Kernel = { release: '6.1.0-40-cloud-arm64', textPhysical: RAM_BASE + 0x121_0000n };
const at = (mib: number, page = 0) => RAM_BASE + BigInt(mib << 20) + BigInt(page * 4096);
const textOf = (note: ElfNote | undefined) => Buffer.from(note?.desc ?? []).toString('latin1');

describe('the search for VMCOREINFO in guest RAM', () => {
  it("finds the kernel's note and text pages, and gives the note's desc", async () => {
    const text = arm64Vmcoreinfo(running);
    const ram = new Ram().kernel(running).put(at(30), noteBytes(text)).put(at(31), text);
    const { guest, discovery } = await discoverVmcoreinfo(ram.guest(), 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: at(30), form: 'note', copies: 2, stoppedEarly: false });
    expect(textOf(guest.vmcoreinfo)).toBe(text);
    expect(guest.vmcoreinfo?.name).toBe('VMCOREINFO');
  });

  it('reads the text alone when the note is gone, up to its NUL', async () => {
    const text = arm64Vmcoreinfo(running);
    const ram = new Ram().kernel(running).put(at(20), `${text}\0garbage after the end`);
    const { guest, discovery } = await discoverVmcoreinfo(ram.guest(), 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: at(20), form: 'text' });
    expect(textOf(guest.vmcoreinfo)).toBe(text);
  });

  it('passes over copies off a page boundary and in video RAM, and stale copies whose kernel is gone', async () => {
    const text = arm64Vmcoreinfo(running);
    const staleText = arm64Vmcoreinfo(stale);
    const vram = new Uint8Array(1 << 20);
    vram.set(Buffer.from(text, 'latin1'), 0);
    const ram = new Ram()
      .kernel(running)
      // A stale kernel's VMCOREINFO, both forms, below the real one: its init_uts_ns was overwritten.
      .put(at(2), noteBytes(staleText))
      .put(at(3), staleText)
      .put(at(4) + 8n, text)
      .put(at(40), noteBytes(text));
    const { discovery } = await discoverVmcoreinfo(ram.guest(vram), 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: at(40), form: 'note', copies: 3 });
    // RAM only: the 1 MiB of video RAM is not searched.
    expect(discovery.origin === 'memory' && discovery.bytesScanned).toBe(RAM_SIZE);
  });

  it('reads only the pages a source names as candidates, and checks what is there now', async () => {
    const text = arm64Vmcoreinfo(running);
    const ram = new Ram().kernel(running).put(at(30), noteBytes(text)).put(at(31), text).put(at(33), text);
    const guest = ram.guest();
    // Page 32 began like a copy when it was sent but was overwritten since (a re-sent page): named,
    // re-read, not a copy. The copy at 33 MiB is not named: the source vouches it was never sent.
    const offsets = [30, 31, 32].map((mib) => at(mib) - RAM_BASE);
    const named: GuestModel = { ...guest, ram: guest.ram.map((range) => ({ ...range, vmcoreinfoCandidates: () => offsets })) };
    const { guest: found, discovery } = await discoverVmcoreinfo(named, 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: at(30), form: 'note', copies: 2 });
    expect(discovery.origin === 'memory' && discovery.bytesScanned).toBe(3 * 24);
    expect(textOf(found.vmcoreinfo)).toBe(text);
  });

  it('says why when no copy checks out', async () => {
    const ram = new Ram()
      .kernel(running)
      .put(at(2), noteBytes(arm64Vmcoreinfo(stale)))
      .put(at(5), 'OSRELEASE=x\n\x01\x02 binary');
    const { guest, discovery } = await discoverVmcoreinfo(ram.guest(), 'search', 'portable');
    expect(guest.vmcoreinfo).toBeUndefined();
    expect(discovery.origin).toBe('none');
    const why = discovery.origin === 'none' ? discovery.why : '';
    expect(why).toMatch(/^2 copies in guest RAM, none of a kernel that is there: /);
    expect(why).toContain(`0x${at(2).toString(16)}: init_uts_ns does not read as this kernel's`);
    expect(why).toContain(`0x${at(5).toString(16)}: not KEY=value text`);
    const empty = await discoverVmcoreinfo(new Ram().guest(), 'search', 'portable');
    expect(empty.discovery).toEqual({
      origin: 'none',
      why: 'none in guest RAM (a kernel without CONFIG_CRASH_CORE, or not Linux)',
    });
  });

  it("takes one kernel's copies as one, preferring its note-and-text pair over a longer copy", async () => {
    const text = arm64Vmcoreinfo(running);
    const superset = arm64Vmcoreinfo(running, 'CRASHTIME=1700000000');
    const ram = new Ram().kernel(running).put(at(6), noteBytes(superset)).put(at(8), noteBytes(text)).put(at(9), text);
    const { guest, discovery } = await discoverVmcoreinfo(ram.guest(), 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: at(8), form: 'note' });
    expect(textOf(guest.vmcoreinfo)).toBe(text);
  });

  it('refuses to guess between two different kernels that both check out, and names them', async () => {
    const other: Kernel = { release: '6.1.0-58-cloud-arm64', textPhysical: RAM_BASE + 0x121_0000n };
    const ram = new Ram()
      .kernel(running)
      .kernel(other)
      .put(at(10), noteBytes(arm64Vmcoreinfo(running)))
      .put(at(11), noteBytes(arm64Vmcoreinfo(other)));
    const refused = discoverVmcoreinfo(ram.guest(), 'search', 'portable');
    await expect(refused).rejects.toThrow(VmdumpError);
    await expect(refused).rejects.toThrow(
      `guest RAM holds VMCOREINFO of 2 different kernels that all check out, at 0x${at(10).toString(16)} (6.1.0-57-cloud-arm64), ` +
        `0x${at(11).toString(16)} (6.1.0-58-cloud-arm64), and no vCPU says which one runs; ` +
        'give the right one with --vmcoreinfo FILE, or dump without it with --vmcoreinfo none',
    );
    // The caller's choices: none (no search), or a copy it gives.
    expect((await discoverVmcoreinfo(ram.guest(), 'none', 'portable')).discovery.origin).toBe('none');
    const given = { note: { name: 'VMCOREINFO', type: 0, desc: Buffer.from(arm64Vmcoreinfo(other)) }, label: 'other.txt' };
    const chosen = await discoverVmcoreinfo(ram.guest(), given, 'portable');
    expect([chosen.discovery, textOf(chosen.guest.vmcoreinfo)]).toEqual([
      { origin: 'given', label: 'other.txt' },
      arm64Vmcoreinfo(other),
    ]);
  });

  it("leaves QEMU's layout alone: no search, and a given copy is refused", async () => {
    const ram = new Ram().kernel(running).put(at(10), noteBytes(arm64Vmcoreinfo(running)));
    const qemu = await discoverVmcoreinfo(ram.guest(), 'search', 'qemu');
    expect([qemu.discovery, qemu.guest.vmcoreinfo]).toEqual([{ origin: 'none', why: "QEMU's layout" }, undefined]);
    const given = { note: { name: 'VMCOREINFO', type: 0, desc: new Uint8Array(1) }, label: 'x' };
    await expect(discoverVmcoreinfo(ram.guest(), given, 'qemu')).rejects.toThrow(
      /--vmcoreinfo FILE goes with the default layout/,
    );
  });

  it("the default layout of the found copy is the kernel's: PT_LOADs at its linear map and image", async () => {
    const ram = new Ram().kernel(running).put(at(10), noteBytes(arm64Vmcoreinfo(running)));
    const prepared = await prepareDump(ram.guest(), {});
    expect(prepared.vmcoreinfo).toMatchObject({ origin: 'memory', physical: at(10) });
    expect(prepared.discovery).toMatchObject({ kind: 'linux', linux: { kind: 'mapped', osRelease: running.release } });
    const notes = prepared.format === 'elf' ? prepared.plan.records.find((r) => r.kind === 'notes') : undefined;
    expect(notes?.kind === 'notes' && notes.notes.at(-1)?.name).toBe('VMCOREINFO');
  });
});

describe('two intact x86_64 kernels: the vCPUs say which one runs', () => {
  /** Kernel A at its link address runs (CR3 = its table); kernel B, loaded 8 MiB higher, is intact but idle. */
  function twoKernels(vcpus: boolean): GuestModel {
    const ram = Buffer.alloc(64 * MiB);
    fillPattern(ram, 0n);
    const running = mapKernel(ram, 0, '6.1.0-running');
    mapKernel(ram, 8 * MiB, '6.1.0-idle');
    ram.set(noteBytes(vmcoreinfoText(8 * MiB, '6.1.0-idle')), 20 * MiB);
    ram.set(noteBytes(vmcoreinfoText(0, '6.1.0-running')), 50 * MiB);
    const state = x86State({ cr0: 0x8005_0033n, cr3: BigInt(running), cr4: 0x20n, efer: 0xd00n });
    return guestOf({ ram: [bufferRange(0n, ram)], vcpus: vcpus ? [{ index: 0, state }] : [] });
  }

  it("the search ends at the copy of the kernel whose _stext the vCPU's CR3 maps", async () => {
    const { guest, discovery } = await discoverVmcoreinfo(twoKernels(true), 'search', 'portable');
    expect(discovery).toMatchObject({ origin: 'memory', physical: BigInt(50 * MiB), copies: 2, stoppedEarly: true });
    // Chunks of 4 MiB: the search stopped in the one holding the running kernel's note.
    expect(discovery.origin === 'memory' && discovery.bytesScanned).toBe(52 * MiB);
    expect(textOf(guest.vmcoreinfo)).toBe(vmcoreinfoText(0, '6.1.0-running'));
  });

  it('without vCPU state both check out, and the dump is refused', async () => {
    await expect(discoverVmcoreinfo(twoKernels(false), 'search', 'portable')).rejects.toThrow(
      /VMCOREINFO of 2 different kernels that all check out, at 0x1400000 \(6\.1\.0-idle\), 0x3200000 \(6\.1\.0-running\)/,
    );
  });
});
