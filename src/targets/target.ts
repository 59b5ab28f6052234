/**
 * What one guest architecture means to a dump, as data and small functions (issue 9): notes
 * and their order, QEMU 7.2's quirks for that architecture, the kdump header's choices, and
 * where a saved VM keeps its RAM. Adding an architecture is one module that fills this in.
 */
import { VmdumpError } from '../model/errors.js';
import type { Architecture, ElfNote, Endian, GuestModel, Vcpu } from '../model/guest.js';

/** `qemu`: QEMU 7.2's bytes, its bugs included; `portable`: what readers need (see dump-plan.ts). */
export type TargetLayout = 'qemu' | 'portable';

export interface KdumpChoices {
  /** block_size: QEMU uses its build's largest page size (64 KiB on aarch64), readers need the guest's. */
  blockSize(arch: Architecture, layout: TargetLayout): number;
  /** utsname.machine; crash compares it with its own build. */
  unameMachine(arch: Architecture, layout: TargetLayout): string;
  /** kdump_sub_header.phys_base. */
  physBase(guest: Pick<GuestModel, 'ram' | 'vmcoreinfo'>, layout: TargetLayout): bigint;
}

/** A migration-stream RAM block that is guest RAM, and the guest-physical address of its first byte. */
export interface RamBlockPlace {
  readonly id: string;
  readonly start: bigint;
}

export interface TargetDescription {
  readonly name: string;
  readonly machine: number;
  /** Every vCPU's notes, in QEMU's order, before the guest's VMCOREINFO note. */
  vcpuNotes(vcpus: readonly Vcpu[], arch: Architecture, layout: TargetLayout): ElfNote[];
  /** QEMU 7.2 writes the guest's VMCOREINFO note (s390-ccw has no fw_cfg, so QEMU never does). */
  readonly qemuWritesGuestNote: boolean;
  /** QEMU 7.2 writes the `.shstrtab` section header in its host's (x86: little-endian) byte order. */
  readonly qemuShstrtabOrder?: Endian;
  readonly kdump: KdumpChoices;
  /** The saved VM's RAM blocks that are guest RAM; undefined for the PC machines' map (pc-memory-map.ts). */
  readonly ramBlocks?: readonly RamBlockPlace[];
  /** Absolute address of a u64 (guest byte order) holding the VMCOREINFO note's address, when no device reports it. */
  readonly vmcoreinfoPointer?: bigint;
}

/** The vCPUs' states when they all are of `kind`; a mixed list is a source's bug. */
export function statesOf<K extends Vcpu['state']['kind']>(vcpus: readonly Vcpu[], kind: K): { index: number; state: Extract<Vcpu['state'], { kind: K }> }[] {
  return vcpus.map((vcpu) => {
    if (vcpu.state.kind !== kind) throw new VmdumpError('internal', `vCPU ${vcpu.index} has ${vcpu.state.kind} state in a ${kind} guest`);
    return { index: vcpu.index, state: vcpu.state as Extract<Vcpu['state'], { kind: K }> };
  });
}
