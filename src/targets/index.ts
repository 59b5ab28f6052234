/** The target description of a dump's architecture (by ELF machine); others get notes-less defaults. */
import { EM_386, EM_AARCH64, EM_S390, EM_X86_64, machineNames } from '../model/elf-constants.js';
import { VmdumpError } from '../model/errors.js';
import type { Architecture } from '../model/guest.js';
import { aarch64Target } from './aarch64.js';
import { s390xTarget } from './s390x.js';
import type { TargetDescription } from './target.js';
import { i386Target, x86_64Target } from './x86.js';

const targets: ReadonlyMap<number, TargetDescription> = new Map([
  [EM_X86_64, x86_64Target], [EM_386, i386Target], [EM_AARCH64, aarch64Target], [EM_S390, s390xTarget],
]);

/** A machine vmdump has no notes for (raw images of arm, ppc, riscv): memory and VMCOREINFO only. */
function memoryOnlyTarget(arch: Architecture): TargetDescription {
  const machine = machineNames[arch.machine] ?? `machine ${arch.machine}`;
  return {
    name: arch.name, machine: arch.machine, qemuWritesGuestNote: true,
    vcpuNotes(vcpus) {
      if (vcpus.length > 0) throw new VmdumpError('unrepresentable', `vmdump cannot write register notes for ${machine} yet; describe the guest without vCPUs`);
      return [];
    },
    kdump: { blockSize: (a) => a.pageSize, unameMachine: (a) => a.name, physBase: () => 0n },
  };
}

export function targetFor(arch: Architecture): TargetDescription {
  return targets.get(arch.machine) ?? memoryOnlyTarget(arch);
}

export type { TargetDescription, TargetLayout } from './target.js';
