/**
 * x86 note payloads exactly as QEMU 7.2's target/i386/arch_dump.c lays them out
 * (docs/elf-vmcore.md §7.3-7.5). Offsets are the spec's; every field not listed stays 0.
 */
import { NT_PRSTATUS, NT_QEMU_CPUSTATE } from '../../formats/elf/elf-constants.js';
import type { ElfNote, Endian, X86CpuState, X86Segment } from '../../guest/guest.js';
import { U32_MAX } from '../../guest/units.js';

type Gpr =
  | 'rax'
  | 'rbx'
  | 'rcx'
  | 'rdx'
  | 'rsi'
  | 'rdi'
  | 'rsp'
  | 'rbp'
  | 'r8'
  | 'r9'
  | 'r10'
  | 'r11'
  | 'r12'
  | 'r13'
  | 'r14'
  | 'r15'
  | 'rip'
  | 'rflags';

/** One pr_reg slot: a register, a segment selector, a segment base, or a constant 0 (orig_rax). */
type RegSlot = Gpr | { selector: SegName } | { base: SegName } | 0;
type SegName = 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss';

/** Linux x86_64 user_regs_struct order (arch/x86/include/asm/user_64.h), 27 × u64 at desc+112. */
const userRegs64: readonly RegSlot[] = [
  'r15',
  'r14',
  'r13',
  'r12',
  'rbp',
  'rbx',
  'r11',
  'r10',
  'r9',
  'r8',
  'rax',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  0,
  'rip',
  { selector: 'cs' },
  'rflags',
  'rsp',
  { selector: 'ss' },
  { base: 'fs' },
  { base: 'gs' },
  { selector: 'ds' },
  { selector: 'es' },
  { selector: 'fs' },
  { selector: 'gs' },
];

/** Linux i386 user_regs_struct order (asm/user_32.h), 17 × u32 at desc+72. */
const userRegs32: readonly RegSlot[] = [
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rbp',
  'rax',
  { selector: 'ds' },
  { selector: 'es' },
  { selector: 'fs' },
  { selector: 'gs' },
  0,
  'rip',
  { selector: 'cs' },
  'rflags',
  'rsp',
  { selector: 'ss' },
];

function slotValue(state: X86CpuState, slot: RegSlot): bigint {
  if (slot === 0) return 0n;
  if (typeof slot === 'string') return state[slot];
  if ('selector' in slot) return BigInt(state[slot.selector].selector);
  return state[slot.base].base;
}

export const PRSTATUS_X86_64_SIZE = 336;
export const PRSTATUS_I386_SIZE = 144;
export const QEMU_CPU_STATE_SIZE = 440;
const QEMU_CPU_STATE_VERSION = 1;

/** NT_PRSTATUS in the 64-bit elf_prstatus layout: pr_pid at 32, pr_reg at 112. */
export function prstatusX86_64(index: number, state: X86CpuState, endian: Endian): ElfNote {
  const desc = new Uint8Array(PRSTATUS_X86_64_SIZE);
  const view = new DataView(desc.buffer);
  const little = endian === 'little';
  view.setUint32(32, index + 1, little);
  userRegs64.forEach((slot, i) => view.setBigUint64(112 + 8 * i, slotValue(state, slot), little));
  return { name: 'CORE', type: NT_PRSTATUS, desc };
}

/** NT_PRSTATUS in the 32-bit elf_prstatus layout: pr_pid at 24, pr_reg at 72, low 32 bits of each value. */
export function prstatusI386(index: number, state: X86CpuState, endian: Endian): ElfNote {
  const desc = new Uint8Array(PRSTATUS_I386_SIZE);
  const view = new DataView(desc.buffer);
  const little = endian === 'little';
  view.setUint32(24, index + 1, little);
  userRegs32.forEach((slot, i) => view.setUint32(72 + 4 * i, Number(slotValue(state, slot) & U32_MAX), little));
  return { name: 'CORE', type: NT_PRSTATUS, desc };
}

const qemuGprOrder: readonly Gpr[] = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rsp',
  'rbp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'rflags',
];

function putSegment(view: DataView, at: number, segment: X86Segment, little: boolean): void {
  view.setUint32(at, segment.selector, little);
  view.setUint32(at + 4, segment.limit, little);
  view.setUint32(at + 8, segment.flags, little);
  view.setBigUint64(at + 16, segment.base, little);
}

/** The `QEMU` note: QEMUCPUState version 1, 440 bytes (docs/elf-vmcore.md §7.5). */
export function qemuCpuState(state: X86CpuState, endian: Endian): ElfNote {
  const desc = new Uint8Array(QEMU_CPU_STATE_SIZE);
  const view = new DataView(desc.buffer);
  const little = endian === 'little';
  view.setUint32(0, QEMU_CPU_STATE_VERSION, little);
  view.setUint32(4, QEMU_CPU_STATE_SIZE, little);
  qemuGprOrder.forEach((reg, i) => view.setBigUint64(8 + 8 * i, state[reg], little));
  const segments = [state.cs, state.ds, state.es, state.fs, state.gs, state.ss, state.ldt, state.tr];
  segments.forEach((segment, i) => putSegment(view, 152 + 24 * i, segment, little));
  for (const [i, table] of [state.gdt, state.idt].entries()) {
    putSegment(view, 152 + 24 * (8 + i), { selector: 0, limit: table.limit, flags: 0, base: table.base }, little);
  }
  [state.cr0, state.cr1, state.cr2, state.cr3, state.cr4].forEach((cr, i) => view.setBigUint64(392 + 8 * i, cr, little));
  view.setBigUint64(432, state.kernelGsBase, little);
  return { name: 'QEMU', type: NT_QEMU_CPUSTATE, desc };
}
