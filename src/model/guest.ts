/**
 * The guest model: the contract every source fulfils and every transform reads.
 * A source turns wherever guest state lives (an image file, a migration stream, a
 * running QEMU) into this; nothing downstream knows where it came from.
 */
import { EM_386, EM_X86_64 } from './elf-constants.js';
import { VmdumpError, hex } from './errors.js';
import { U32_MAX, type PhysAddr } from './units.js';

export type ElfClass = 32 | 64;
export type Endian = 'little' | 'big';

/** What the dump is written as: ELF machine, class, byte order, target page size. */
export interface Architecture {
  /** Human name, e.g. "x86_64", "i386", "aarch64", "s390x". */
  readonly name: string;
  readonly machine: number;
  readonly elfClass: ElfClass;
  readonly endian: Endian;
  readonly pageSize: number;
}

/** An x86 segment register as QEMU's segment cache holds it (elf-vmcore.md §7.5). */
export interface X86Segment {
  readonly selector: number;
  readonly limit: number;
  /** QEMU's segment-cache flags word, copied raw. */
  readonly flags: number;
  readonly base: bigint;
}

export interface X86DescriptorTable {
  readonly limit: number;
  readonly base: bigint;
}

/** The x86 vCPU state QEMU's notes are built from; i386 guests keep the upper bits 0. */
export interface X86CpuState {
  readonly kind: 'x86';
  readonly rax: bigint; readonly rbx: bigint; readonly rcx: bigint; readonly rdx: bigint;
  readonly rsi: bigint; readonly rdi: bigint; readonly rsp: bigint; readonly rbp: bigint;
  readonly r8: bigint; readonly r9: bigint; readonly r10: bigint; readonly r11: bigint;
  readonly r12: bigint; readonly r13: bigint; readonly r14: bigint; readonly r15: bigint;
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly cs: X86Segment; readonly ds: X86Segment; readonly es: X86Segment;
  readonly fs: X86Segment; readonly gs: X86Segment; readonly ss: X86Segment;
  readonly ldt: X86Segment; readonly tr: X86Segment;
  readonly gdt: X86DescriptorTable;
  readonly idt: X86DescriptorTable;
  readonly cr0: bigint; readonly cr1: bigint; readonly cr2: bigint; readonly cr3: bigint; readonly cr4: bigint;
  readonly efer: bigint;
  /** MSR 0xC0000102; not the gs segment-cache base. */
  readonly kernelGsBase: bigint;
}

/**
 * The aarch64 vCPU state QEMU's notes are built from (other-arches.md §4.2, §6). 128-bit V
 * registers and SVE Z/P registers are held as their u64 lanes, low lane first, so the encoder
 * can write them in either byte order.
 */
export interface Aarch64CpuState {
  readonly kind: 'aarch64';
  /** x0..x30. */
  readonly x: readonly bigint[];
  readonly sp: bigint;
  readonly pc: bigint;
  readonly pstate: bigint;
  /** v0..v31, each [low, high]. */
  readonly v: readonly (readonly [bigint, bigint])[];
  readonly fpsr: number;
  readonly fpcr: number;
  /** SCTLR_EL1: its EE bit decides the dump's byte order. */
  readonly sctlrEl1: bigint;
  /** Present when the CPU has SVE. */
  readonly sve?: Aarch64SveState;
}

export interface Aarch64SveState {
  /** The current vector length in quadwords (ZCR_EL1.LEN + 1, capped by the CPU's maximum). */
  readonly vq: number;
  /** The CPU's maximum vector length in quadwords (not in the migration stream: a CPU-model fact). */
  readonly maxVq: number;
  /** z0..z31, 32 u64 lanes each (2048 bits), low lane first. */
  readonly z: readonly (readonly bigint[])[];
  /** p0..p15 then FFR, 4 u64 lanes each. */
  readonly p: readonly (readonly bigint[])[];
}

/** The s390x vCPU state QEMU's ten notes are built from (other-arches.md §4.3, §6). */
export interface S390CpuState {
  readonly kind: 's390x';
  readonly pswMask: bigint;
  readonly pswAddr: bigint;
  readonly gprs: readonly bigint[];
  /** Access registers, u32. */
  readonly acrs: readonly number[];
  readonly fpc: number;
  /** v0..v31, each [high, low] as the architecture numbers them: fpr k is v[k][0]. */
  readonly v: readonly (readonly [bigint, bigint])[];
  /** The prefix register (psa). */
  readonly prefix: number;
  readonly crs: readonly bigint[];
  readonly cpuTimer: bigint;
  readonly clockComparator: bigint;
  readonly todProgrammable: number;
}

/** Register state of one vCPU, by architecture (each has its own notes, src/targets/). */
export type CpuState = X86CpuState | Aarch64CpuState | S390CpuState;

export interface Vcpu {
  /** QEMU's cpu_index: 0-based, notes are emitted in this order. */
  readonly index: number;
  readonly state: CpuState;
}

/**
 * A guest-physical RAM range with a lazy reader. Nothing is read until `read` is called.
 * `read` fills `into` completely with the bytes at [offset, offset + into.length) of this
 * range, or rejects with a `short-read` VmdumpError: it never zero-fills silently.
 */
export interface RamRange {
  readonly start: PhysAddr;
  readonly size: bigint;
  /** Names the range in messages, e.g. "range 1 (ram.img at 0x100000)". */
  readonly label: string;
  /**
   * False for video RAM, firmware and option ROMs: memory the guest kernel does not map as RAM
   * (they get no direct-map address). Absent means system RAM.
   */
  readonly systemRam?: boolean;
  read(offset: bigint, into: Uint8Array): Promise<void>;
}

/** An ELF note as a value; encoding (header, padding, byte order) belongs to the encoder. */
export interface ElfNote {
  readonly name: string;
  readonly type: number;
  readonly desc: Uint8Array;
}

export interface GuestModel {
  readonly arch: Architecture;
  /** In cpu_index order. Empty when the source has no register state. */
  readonly vcpus: readonly Vcpu[];
  /** Ascending, non-overlapping (checked by `checkRamRanges`). */
  readonly ram: readonly RamRange[];
  /** The guest's VMCOREINFO note, appended last to PT_NOTE as QEMU does (elf-vmcore.md §7.6). */
  readonly vmcoreinfo?: ElfNote;
  /** What the source noticed and worked around (QEMU prints these as warnings), for the user. */
  readonly warnings?: readonly string[];
  /** Releases files and connections the source holds. */
  close(): Promise<void>;
}

export const X86_PAGE_SIZE = 4096;
/** Architectural x86 control-register bits vmdump looks at (Intel SDM vol. 3, §2.5, §2.2.1). */
export const CR0_PG = 1n << 31n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;

/**
 * x86 class and machine as QEMU chooses them (elf-vmcore.md §6): long mode on the first vCPU
 * gives EM_X86_64/ELF64; otherwise EM_386, ELF64 only if some range's exclusive end is above 0xFFFFFFFF.
 */
export function x86Architecture(firstCpuLongMode: boolean, ram: readonly RamRange[]): Architecture {
  if (firstCpuLongMode) {
    return { name: 'x86_64', machine: EM_X86_64, elfClass: 64, endian: 'little', pageSize: X86_PAGE_SIZE };
  }
  // The exclusive end counts: a BIOS ROM ending exactly at 4 GiB already makes it ELF64 (§6).
  const reachesAbove4G = ram.some((r) => r.start + r.size > U32_MAX);
  return { name: 'i386', machine: EM_386, elfClass: reachesAbove4G ? 64 : 32, endian: 'little', pageSize: X86_PAGE_SIZE };
}

/** The vCPU translates addresses through page tables (CR0.PG). */
export function pagingEnabled(state: CpuState): boolean {
  return state.kind === 'x86' && (state.cr0 & CR0_PG) !== 0n;
}

/** Rejects empty, unordered or overlapping range lists: the layout relies on ascending order. */
export function checkRamRanges(ram: readonly RamRange[]): void {
  let previous: RamRange | undefined;
  for (const range of ram) {
    if (range.size <= 0n) {
      throw new VmdumpError('bad-input', `RAM range has size ${range.size}; it must be positive`, range.label);
    }
    if (previous !== undefined && range.start < previous.start + previous.size) {
      const what = range.start < previous.start ? 'is not in ascending order after' : 'overlaps';
      throw new VmdumpError(
        'bad-input',
        `RAM range at ${hex(range.start)} ${what} ${previous.label} ending at ${hex(previous.start + previous.size)}`,
        range.label,
      );
    }
    previous = range;
  }
}
