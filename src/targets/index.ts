/**
 * The architectures vmdump knows. Adding one is a folder under src/targets/ that fills in
 * TargetDescription (target.ts) and one line in `registered` below.
 */
import { decodeCoreNotes, type CoreNotes } from '../formats/elf/elf-decode.js';
import { EM_ARM, EM_PPC, EM_PPC64, EM_RISCV, machineNames } from '../formats/elf/elf-constants.js';
import type { DeviceState } from '../formats/migration/vmdesc.js';
import { VmdumpError } from '../guest/errors.js';
import type { Architecture, ElfNote, Endian, RamRange } from '../guest/guest.js';
import { aarch64Target } from './aarch64/target.js';
import { s390xTarget } from './s390x/target.js';
import type { DecodedVcpus, TargetDescription } from './target.js';
import { x86Target } from './x86/target.js';

/**
 * Every architecture with vCPU state; adding one is one more entry here. The order is the one a
 * saved VM's `cpu` section is offered in: x86, which claims whatever is left, last.
 */
export const registered: readonly TargetDescription[] = [aarch64Target, s390xTarget, x86Target];

/** Machines a raw image may be described as without register notes: memory and VMCOREINFO only. */
const memoryOnlyArchitectures: readonly Architecture[] = [
  { name: 'arm', machine: EM_ARM, elfClass: 32, endian: 'little', pageSize: 4096 },
  { name: 'ppc64', machine: EM_PPC64, elfClass: 64, endian: 'big', pageSize: 65536 },
  { name: 'ppc64le', machine: EM_PPC64, elfClass: 64, endian: 'little', pageSize: 65536 },
  { name: 'ppc', machine: EM_PPC, elfClass: 32, endian: 'big', pageSize: 4096 },
  { name: 'riscv64', machine: EM_RISCV, elfClass: 64, endian: 'little', pageSize: 4096 },
];

/** A machine vmdump has no notes for (raw images of arm, ppc, riscv): memory and VMCOREINFO only. */
function memoryOnlyTarget(arch: Architecture): TargetDescription {
  const machine = machineNames[arch.machine] ?? `machine ${arch.machine}`;
  const refuse = (): never => {
    throw new VmdumpError('unrepresentable', `vmdump reads no vCPU state of ${machine}`);
  };
  return {
    name: arch.name,
    machines: [arch.machine],
    qemuNames: [arch.name],
    describedArchitecture: () => arch,
    ownsCpuSection: () => false,
    vcpusFromStream: refuse,
    vcpusFromNotes: refuse,
    placeSavedRam: refuse,
    vcpuNotes(vcpus) {
      if (vcpus.length > 0)
        throw new VmdumpError(
          'unrepresentable',
          `vmdump cannot write register notes for ${machine} yet; describe the guest without vCPUs`,
        );
      return [];
    },
    qemuWritesGuestNote: true,
    kdump: { blockSize: (a) => a.pageSize, unameMachine: (a) => a.name, physBase: () => 0n },
    linuxLayout: async (guest) => ({ kind: 'unavailable', reason: `the guest is ${guest.arch.name}, not x86_64 in long mode` }),
  };
}

const memoryOnly: readonly TargetDescription[] = memoryOnlyArchitectures.map(memoryOnlyTarget);

/** The target that writes `arch`'s dumps. */
export function targetFor(arch: Architecture): TargetDescription {
  return (
    registered.find((t) => t.machines.includes(arch.machine)) ??
    memoryOnly.find((t) => t.name === arch.name) ??
    memoryOnlyTarget(arch)
  );
}

/** The target of a QEMU target name (query-target's `arch`), or of a machine description's `arch`. */
export function targetNamed(name: string): TargetDescription | undefined {
  return registered.find((t) => t.qemuNames.includes(name)) ?? memoryOnly.find((t) => t.name === name);
}

/** Every name targetNamed() knows, for messages. */
export const architectureNames: readonly string[] = [
  ...registered.flatMap((t) => t.qemuNames),
  ...memoryOnlyArchitectures.map((a) => a.name),
];

/** QEMU target names of the architectures whose vCPU state vmdump reads (the live source's). */
export const vcpuArchitectureNames: readonly string[] = registered.flatMap((t) => t.qemuNames);

/** The target whose `cpu` sections a saved VM holds (the first section decides). */
export function targetOfCpuSection(first: DeviceState | undefined): TargetDescription {
  return registered.find((t) => first !== undefined && t.ownsCpuSection(first)) ?? x86Target;
}

/** The target of QEMU's notes dump, by its ELF machine. */
export function targetOfCore(core: CoreNotes): TargetDescription {
  const target = registered.find((t) => t.machines.includes(core.machine));
  if (target === undefined)
    throw new VmdumpError(
      'bad-input',
      `QEMU's notes dump is for ${machineNames[core.machine] ?? `machine ${core.machine}`}, which vmdump reads no vCPU state of`,
    );
  return target;
}

/** The architecture a machine description names (`x86_64`, `i386`, `aarch64`, `s390x`, `arm`, `ppc64` …), or undefined. */
export function architectureNamed(name: string, ram: readonly RamRange[] = []): Architecture | undefined {
  return targetNamed(name)?.describedArchitecture(name, ram);
}

/** QEMU's notes dump (a small ELF core) read back: its target, the vCPUs' state and the guest's VMCOREINFO note. */
export interface QemuNotes extends DecodedVcpus {
  readonly target: TargetDescription;
  readonly machine: number;
  readonly endian: Endian;
  readonly vmcoreinfo: ElfNote | undefined;
}

export function decodeQemuNotes(bytes: Uint8Array): QemuNotes {
  const core = decodeCoreNotes(bytes);
  const target = targetOfCore(core);
  const info = core.notes.find((n) => n.name === 'VMCOREINFO');
  return {
    target,
    machine: core.machine,
    endian: core.endian,
    ...target.vcpusFromNotes(core),
    vmcoreinfo:
      info === undefined ? undefined : { name: info.name, type: info.type, desc: Uint8Array.prototype.slice.call(info.desc) },
  };
}

export type {
  DecodedVcpus,
  DumpLayout,
  KernelAddressSpace,
  KernelAddressSpaceResult,
  LinuxLayoutDecision,
  LinuxMappingFacts,
  TargetDescription,
  WalkRules,
} from './target.js';
