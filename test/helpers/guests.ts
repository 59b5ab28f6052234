/** Synthetic guests for tests: RAM whose every byte is a function of its guest-physical address. */
import { EM_X86_64 } from '../../src/formats/elf/elf-constants.js';
import {
  type Architecture,
  type ElfNote,
  type GuestModel,
  type RamRange,
  type Vcpu,
  type X86CpuState,
} from '../../src/guest/guest.js';
import { x86Architecture } from '../../src/targets/x86/architecture.js';
import { physAddr } from '../../src/guest/units.js';

/** The byte a synthetic guest holds at guest-physical `address`. */
export function patternByte(address: bigint): number {
  return Number((address ^ (address >> 8n) ^ (address >> 16n) ^ (address >> 24n)) & 0xffn);
}

export function fillPattern(into: Uint8Array, address: bigint): void {
  if (address + BigInt(into.length) > 0xffff_ffffn) {
    for (let i = 0; i < into.length; i += 1) into[i] = patternByte(address + BigInt(i));
    return;
  }
  // Below 4 GiB a plain number is exact and much faster than bigint per byte.
  for (let i = 0, a = Number(address); i < into.length; i += 1, a += 1) {
    into[i] = (a ^ (a >>> 8) ^ (a >>> 16) ^ (a >>> 24)) & 0xff;
  }
}

export interface ReadLog {
  bytes: number;
  calls: number;
}

export function patternRange(start: bigint, size: bigint, log?: ReadLog): RamRange {
  return {
    start: physAddr(start),
    size,
    label: `pattern range at 0x${start.toString(16)}`,
    async read(offset, into) {
      if (offset < 0n || offset + BigInt(into.length) > size) throw new Error('read outside the range');
      fillPattern(into, start + offset);
      if (log) {
        log.bytes += into.length;
        log.calls += 1;
      }
    },
  };
}

export function zeroRange(start: bigint, size: bigint): RamRange {
  return {
    start: physAddr(start),
    size,
    label: 'zero range',
    async read(_offset, into) {
      into.fill(0);
    },
  };
}

const segment = { selector: 0, limit: 0, flags: 0, base: 0n };

export function x86State(values: Partial<Omit<X86CpuState, 'kind'>> = {}): X86CpuState {
  const zero = 0n;
  return {
    kind: 'x86',
    rax: zero,
    rbx: zero,
    rcx: zero,
    rdx: zero,
    rsi: zero,
    rdi: zero,
    rsp: zero,
    rbp: zero,
    r8: zero,
    r9: zero,
    r10: zero,
    r11: zero,
    r12: zero,
    r13: zero,
    r14: zero,
    r15: zero,
    rip: zero,
    rflags: 2n,
    cs: segment,
    ds: segment,
    es: segment,
    fs: segment,
    gs: segment,
    ss: segment,
    ldt: segment,
    tr: segment,
    gdt: { limit: 0, base: zero },
    idt: { limit: 0, base: zero },
    cr0: zero,
    cr1: zero,
    cr2: zero,
    cr3: zero,
    cr4: zero,
    efer: zero,
    kernelGsBase: zero,
    ...values,
  };
}

export function guestOf(options: {
  arch?: Architecture;
  ram: RamRange[];
  vcpus?: Vcpu[];
  vmcoreinfo?: ElfNote;
  longMode?: boolean;
}): GuestModel {
  const arch = options.arch ?? x86Architecture(options.longMode ?? true, options.ram);
  const vcpus = options.vcpus ?? [];
  return {
    arch,
    ram: options.ram,
    vcpus,
    close: async () => undefined,
    ...(options.vmcoreinfo === undefined ? {} : { vmcoreinfo: options.vmcoreinfo }),
  };
}

export const isX86_64 = (arch: Architecture): boolean => arch.machine === EM_X86_64;

/** Ranges of QEMU 7.2's q35 64 MiB SeaBIOS guest (docs/memory-mapping.md §2). */
export const q35SeaBiosRam = (): RamRange[] => [
  patternRange(0n, 0xa0000n),
  patternRange(0xc0000n, 0x4000000n - 0xc0000n),
  patternRange(0xfd000000n, 0x1000000n),
  patternRange(0xfffc0000n, 0x40000n),
];

/** A range whose bytes are `bytes` (a test's hand-built memory). */
export function bufferRange(start: bigint, bytes: Uint8Array, systemRam = true): RamRange {
  return {
    start: physAddr(start),
    size: BigInt(bytes.length),
    label: `buffer at 0x${start.toString(16)}`,
    systemRam,
    async read(offset, into) {
      into.set(bytes.subarray(Number(offset), Number(offset) + into.length));
    },
  };
}
