/**
 * The guest model: the contract every source fulfils and every transform reads.
 * A source turns wherever guest state lives (an image file, a migration stream, a
 * running QEMU) into this; nothing downstream knows where it came from.
 */
import { VmdumpError, hex } from './errors.js';
import type { PhysAddr, VirtAddr } from './units.js';

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

/** An x86 segment register as QEMU's segment cache holds it (docs/elf-vmcore.md §7.5). */
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
  readonly rax: bigint;
  readonly rbx: bigint;
  readonly rcx: bigint;
  readonly rdx: bigint;
  readonly rsi: bigint;
  readonly rdi: bigint;
  readonly rsp: bigint;
  readonly rbp: bigint;
  readonly r8: bigint;
  readonly r9: bigint;
  readonly r10: bigint;
  readonly r11: bigint;
  readonly r12: bigint;
  readonly r13: bigint;
  readonly r14: bigint;
  readonly r15: bigint;
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly cs: X86Segment;
  readonly ds: X86Segment;
  readonly es: X86Segment;
  readonly fs: X86Segment;
  readonly gs: X86Segment;
  readonly ss: X86Segment;
  readonly ldt: X86Segment;
  readonly tr: X86Segment;
  readonly gdt: X86DescriptorTable;
  readonly idt: X86DescriptorTable;
  readonly cr0: bigint;
  readonly cr1: bigint;
  readonly cr2: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  /** MSR 0xC0000102; not the gs segment-cache base. */
  readonly kernelGsBase: bigint;
}

/**
 * The aarch64 vCPU state QEMU's notes are built from (docs/other-arches.md §4.2, §6). 128-bit V
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

/** The s390x vCPU state QEMU's ten notes are built from (docs/other-arches.md §4.3, §6). */
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

/** Register state of one vCPU, by architecture (each has its own folder, src/targets/). */
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
  /**
   * Where `read` streams the range in one front-to-back pass (a FIFO QEMU fills), a one-off read
   * that starts no pass, for a step that reads only part of the range (the search for
   * VMCOREINFO). Absent: `read` already reads anything, any time.
   */
  readSpan?(offset: bigint, into: Uint8Array): Promise<void>;
  /**
   * Offsets of the pages whose first bytes may begin a VMCOREINFO copy (formats/vmcoreinfo.ts),
   * ascending, from a source that has looked at every page's bytes already (a saved stream's first
   * pass): the search reads only these pages instead of the whole range. Absent: the search reads it.
   */
  vmcoreinfoCandidates?(): readonly bigint[];
}

/**
 * The ranges the guest kernel maps as RAM (not video RAM or ROMs), as /proc/vmcore holds them: what
 * a filtered dump keeps, as makedumpfile does (docs/dump-levels.md §4).
 */
export function systemRamOf(ram: readonly RamRange[]): RamRange[] {
  return ram.filter((range) => range.systemRam !== false);
}

/**
 * A ROM device in ROM mode (pflash firmware): memory to the vCPUs, so page tables may map it and
 * QEMU's walk keeps such mappings, but not RAM, so no dump holds its bytes (docs/memory-mapping.md
 * §2, §4; docs/elf-vmcore.md §4).
 */
export interface RomDevice {
  readonly start: PhysAddr;
  readonly size: bigint;
  /** e.g. "system.flash0". */
  readonly label: string;
}

/** One PT_LOAD: `virt` 0 means "no virtual address" and is written as the physical one. */
export interface MemoryMapping {
  readonly phys: PhysAddr;
  readonly virt: VirtAddr;
  readonly length: bigint;
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
  /** ROM devices (pflash) mapped in the guest's physical address space; absent when there are none or the source cannot tell. */
  readonly romDevices?: readonly RomDevice[];
  /** The guest's VMCOREINFO note, appended last to PT_NOTE as QEMU does (docs/elf-vmcore.md §7.6). */
  readonly vmcoreinfo?: ElfNote;
  /** What the source noticed and worked around (QEMU prints these as warnings), for the user. */
  readonly warnings?: readonly string[];
  /** Releases files and connections the source holds. */
  close(): Promise<void>;
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
