/**
 * The `cpu` device sections → the guest model's vCPU state (docs/qemu-migration-stream.md §8, §10).
 * Fields are read by their vmdesc names, so the same code serves qemu-system-x86_64 (64-bit
 * target_ulong) and qemu-system-i386 (32-bit, EFER in the cpu/efer32 subsection).
 */
import type { Vcpu, X86CpuState, X86Segment } from '../../guest/guest.js';
import type { DeviceState } from '../../formats/migration/vmdesc.js';

/** hflags bit 14: the vCPU is in long mode (QEMU's class decision uses this, §10). */
const HF_LMA = 1n << 14n;

function segment(cpu: DeviceState, path: string, index = 0): X86Segment {
  // env.segs etc.: be32 selector, tl base, be32 limit, be32 flags.
  const element = cpu.raw(path);
  const size = element.length / (path === 'env.segs' ? 6 : 1);
  const bytes = element.subarray(index * size, (index + 1) * size);
  const baseWidth = size - 12;
  return {
    selector: bytes.readUInt32BE(0),
    base: bytes.subarray(4, 4 + baseWidth).reduce((v, b) => (v << 8n) | BigInt(b), 0n),
    limit: bytes.readUInt32BE(4 + baseWidth),
    flags: bytes.readUInt32BE(8 + baseWidth),
  };
}

export function vcpuFromSection(cpu: DeviceState): { vcpu: Vcpu; longMode: boolean } {
  const regsBytes = cpu.raw('env.regs');
  const width = regsBytes.length === 128 ? 8 : 4;
  const reg = (i: number): bigint => (i * width < regsBytes.length ? cpu.uint('env.regs', i, width) : 0n);
  const optional = (path: string): bigint => (cpu.has(path) ? cpu.uint(path) : 0n);
  // ES, CS, SS, DS, FS, GS in the stream (§10).
  const [es, cs, ss, ds, fs, gs] = [0, 1, 2, 3, 4, 5].map((i) => segment(cpu, 'env.segs', i)) as [
    X86Segment,
    X86Segment,
    X86Segment,
    X86Segment,
    X86Segment,
    X86Segment,
  ];
  const gdt = segment(cpu, 'env.gdt');
  const idt = segment(cpu, 'env.idt');
  const state: X86CpuState = {
    kind: 'x86',
    rax: reg(0),
    rcx: reg(1),
    rdx: reg(2),
    rbx: reg(3),
    rsp: reg(4),
    rbp: reg(5),
    rsi: reg(6),
    rdi: reg(7),
    r8: reg(8),
    r9: reg(9),
    r10: reg(10),
    r11: reg(11),
    r12: reg(12),
    r13: reg(13),
    r14: reg(14),
    r15: reg(15),
    rip: cpu.uint('env.eip'),
    rflags: cpu.uint('env.eflags'),
    cs,
    ds,
    es,
    fs,
    gs,
    ss,
    ldt: segment(cpu, 'env.ldt'),
    tr: segment(cpu, 'env.tr'),
    gdt: { limit: gdt.limit, base: gdt.base },
    idt: { limit: idt.limit, base: idt.base },
    cr0: cpu.uint('env.cr[0]'),
    cr1: 0n,
    cr2: cpu.uint('env.cr[2]'),
    cr3: cpu.uint('env.cr[3]'),
    cr4: cpu.uint('env.cr[4]'),
    efer: cpu.has('env.efer') ? cpu.uint('env.efer') : optional('cpu/efer32:env.efer'),
    kernelGsBase: optional('env.kernelgsbase'),
  };
  return { vcpu: { index: cpu.instance, state }, longMode: (cpu.uint('env.hflags') & HF_LMA) !== 0n };
}
