/**
 * The real readers are the judges: readelf must parse every class × byte order × layout, and
 * gdb must show each vCPU as a thread with the described registers and read memory by address.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { fillPattern } from './helpers/guests.js';
import { readElfFile } from './helpers/elf-reader.js';
import { runCli, tempDir, writeMachine, type RangeOnDisk } from './helpers/machines.js';
import { itWithTool, run } from './helpers/tools.js';

const readelfIt = itWithTool('readelf', 'binutils');
const gdbIt = itWithTool('gdb', 'gdb');

const low: RangeOnDisk[] = [
  { address: 0n, size: 0xa0000 },
  { address: 0x100000n, size: 0x100000 },
];
const high: RangeOnDisk[] = [...low, { address: 0x1_0000_0000n, size: 0x10000 }];
const vcpus64 = [0, 1].map((i) => ({
  rip: `0xffffffff8100${i}000`,
  rsp: `0xffffc9000000${i}ff0`,
  rax: `0x${(0x1111 * (i + 1)).toString(16)}`,
  rflags: '0x246',
  cs: { selector: 16 },
  ss: { selector: 24 },
}));
const vcpus32 = [0, 1].map((i) => ({
  eip: `0xc010${i}000`,
  esp: `0xc1${i}00ff0`,
  eax: `0x${(0x2222 * (i + 1)).toString(16)}`,
  eflags: '0x202',
  cs: { selector: 0x60 },
  ss: { selector: 0x68 },
}));

interface Case {
  arch: string;
  ranges: RangeOnDisk[];
  vcpus?: object[];
  elfClass: 'ELF32' | 'ELF64';
  data: string;
  machine: RegExp;
}
const cases: Case[] = [
  { arch: 'i386', ranges: low, vcpus: vcpus32, elfClass: 'ELF32', data: 'little endian', machine: /Intel 80386/ },
  { arch: 'x86_64', ranges: high, vcpus: vcpus64, elfClass: 'ELF64', data: 'little endian', machine: /X86-64/ },
  { arch: 'ppc', ranges: low, elfClass: 'ELF32', data: 'big endian', machine: /PowerPC/ },
  { arch: 's390x', ranges: high, elfClass: 'ELF64', data: 'big endian', machine: /S\/390/ },
];
const VMCOREINFO = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\n';

const dir = tempDir();
const cores = new Map<string, string>();
beforeAll(async () => {
  for (const c of cases) {
    const caseDir = path.join(dir, c.arch);
    fs.mkdirSync(caseDir);
    const machine = writeMachine(caseDir, {
      arch: c.arch,
      ranges: c.ranges,
      vmcoreinfo: VMCOREINFO,
      ...(c.vcpus ? { vcpus: c.vcpus } : {}),
    });
    for (const layout of ['qemu', 'portable']) {
      const core = path.join(caseDir, `${layout}.core`);
      const result = await runCli(['raw', machine, '-o', core, '--layout', layout]);
      expect(result.stderr).toMatch(/wrote/);
      expect(result.code).toBe(0);
      cores.set(`${c.arch}/${layout}`, core);
    }
  }
});

function hexField(text: string): bigint {
  return BigInt(text);
}

describe.each(cases)('readelf reads $arch ($elfClass, $data)', (c) => {
  readelfIt.each(['qemu', 'portable'])('%s layout', (layout) => {
    const core = cores.get(`${c.arch}/${layout}`)!;
    const { status, stdout, stderr } = run('readelf', ['-h', '-l', '-n', '-W', core]);
    // QEMU 7.2 writes s390x's .shstrtab section header little-endian (docs/other-arches.md §4.3 bug 1); --layout qemu
    // keeps its bytes, and readelf names the bogus size it reads, exits 1, and still prints everything else.
    const qemuS390x = c.arch === 's390x' && layout === 'qemu';
    expect(stderr).toBe(
      qemuS390x ? 'readelf: Error: Reading 792633534417207296 bytes extends past end of file for string table\n' : '',
    );
    expect(status).toBe(qemuS390x ? 1 : 0);
    expect(stdout).toMatch(new RegExp(`Class:\\s+${c.elfClass}`));
    expect(stdout).toMatch(new RegExp(`Data:\\s+2's complement, ${c.data}`));
    expect(stdout).toMatch(/Type:\s+CORE/);
    expect(stdout.match(/Machine:\s+(.*)/)?.[1]).toMatch(c.machine);
    expect(stdout).toMatch(new RegExp(`Number of program headers:\\s+${1 + c.ranges.length}\\b`));
    expect(stdout).toMatch(
      new RegExp(
        `Start of program headers:\\s+${layout === 'portable' ? (c.elfClass === 'ELF64' ? 64 : 52) : c.elfClass === 'ELF64' ? 192 : 132} `,
      ),
    );
    // Each LOAD: readelf's numbers are the described ranges, and the file bytes there are the guest's.
    const loads = [...stdout.matchAll(/^\s+LOAD\s+(0x\S+)\s+(0x\S+)\s+(0x\S+)\s+(0x\S+)\s+(0x\S+)/gm)].map((m) => ({
      offset: hexField(m[1]!),
      vaddr: hexField(m[2]!),
      paddr: hexField(m[3]!),
      filesz: hexField(m[4]!),
      memsz: hexField(m[5]!),
    }));
    expect(loads.map((l) => [l.paddr, l.vaddr, l.filesz, l.memsz])).toEqual(
      c.ranges.map((r) => [r.address, r.address, BigInt(r.size), BigInt(r.size)]),
    );
    const fd = fs.openSync(core, 'r');
    for (const load of loads) {
      const got = Buffer.alloc(Number(load.filesz));
      fs.readSync(fd, got, 0, got.length, Number(load.offset));
      const want = Buffer.alloc(got.length);
      fillPattern(want, load.paddr);
      expect(got.equals(want), `bytes of LOAD at ${load.paddr.toString(16)}`).toBe(true);
    }
    fs.closeSync(fd);
    const owners = [...stdout.matchAll(/^\s+(CORE|QEMU|VMCOREINFO)\s+0x/gm)].map((m) => m[1]);
    const cpuNotes = c.vcpus ? ['CORE', 'CORE', 'QEMU', 'QEMU'] : [];
    // QEMU 7.2 never writes a guest note for s390x (no fw_cfg, docs/other-arches.md §4.3): its layout has none either.
    if (qemuS390x) {
      expect(owners).toEqual(cpuNotes);
      return;
    }
    expect(owners).toEqual([...cpuNotes, 'VMCOREINFO']);
    expect(readElfFile(core).notes.at(-1)!.desc.toString()).toBe(VMCOREINFO);
  });
});

describe('gdb', () => {
  gdbIt.each(['qemu', 'portable'])('shows each x86_64 vCPU as a thread with its registers (%s layout)', (layout) => {
    const core = cores.get(`x86_64/${layout}`)!;
    const { stdout, stderr } = run('gdb', [
      '-batch',
      '-nx',
      '-ex',
      'info threads',
      '-ex',
      'thread 1',
      '-ex',
      'info registers rip rsp rax eflags cs ss',
      '-ex',
      'thread 2',
      '-ex',
      'info registers rip rsp rax eflags cs ss',
      '-ex',
      'x/2xg 0x100040',
      '-c',
      core,
    ]);
    expect(stderr).not.toMatch(/not in executable format|wrong|error/i);
    expect(stdout).toMatch(/LWP 1\s/);
    expect(stdout).toMatch(/LWP 2\s/);
    const regs = [...stdout.matchAll(/^(rip|rsp|rax|eflags|cs|ss)\s+(0x[0-9a-f]+)/gm)].map((m) => `${m[1]}=${m[2]}`);
    expect(regs).toEqual([
      'rip=0xffffffff81000000',
      'rsp=0xffffc90000000ff0',
      'rax=0x1111',
      'eflags=0x246',
      'cs=0x10',
      'ss=0x18',
      'rip=0xffffffff81001000',
      'rsp=0xffffc90000001ff0',
      'rax=0x2222',
      'eflags=0x246',
      'cs=0x10',
      'ss=0x18',
    ]);
    // Guest memory by address: the pattern bytes at guest-physical 0x100040.
    const want = Buffer.alloc(16);
    fillPattern(want, 0x100040n);
    const words = [...stdout.matchAll(/0x100040:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)/g)][0]!;
    expect([BigInt(words[1]!), BigInt(words[2]!)]).toEqual([want.readBigUInt64LE(0), want.readBigUInt64LE(8)]);
  });

  gdbIt('shows i386 vCPUs with their 32-bit registers', () => {
    const { stdout } = run('gdb', [
      '-batch',
      '-nx',
      '-ex',
      'info threads',
      '-ex',
      'thread 2',
      '-ex',
      'info registers eip esp eax eflags cs',
      '-c',
      cores.get('i386/portable')!,
    ]);
    expect(stdout).toMatch(/LWP 1\s/);
    const regs = [...stdout.matchAll(/^(eip|esp|eax|eflags|cs)\s+(0x[0-9a-f]+)/gm)].map((m) => `${m[1]}=${m[2]}`);
    expect(regs).toEqual(['eip=0xc0101000', 'esp=0xc1100ff0', 'eax=0x4444', 'eflags=0x202', 'cs=0x60']);
  });
});
