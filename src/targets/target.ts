/**
 * What one guest architecture means to vmdump, in both directions. Each architecture is one
 * folder under src/targets/ that fills this in, registered by one line in index.ts:
 *
 *   in   (sources)  the ELF machines and QEMU target names it covers; vCPU state from a saved
 *                   VM's `cpu` sections and from QEMU's own notes; where its RAM blocks sit;
 *                   where the kernel keeps VMCOREINFO when no device reports it
 *   out  (dumps)    its notes in QEMU's order and QEMU's quirks; kdump header choices; the
 *                   Linux kernel's own layout; its page-table walk (--paging), if it has one;
 *                   the kernel's own address space (dump levels read struct page through it)
 */
import type { CoreNotes } from '../formats/elf/elf-decode.js';
import type { MigrationStream, RamBlock } from '../formats/migration/migration-stream.js';
import type { DeviceState } from '../formats/migration/vmdesc.js';
import { VmdumpError } from '../guest/errors.js';
import type { Architecture, ElfNote, Endian, GuestModel, MemoryMapping, RamRange, RomDevice, Vcpu } from '../guest/guest.js';

/** `qemu`: the bytes QEMU writes, its bugs included; `portable`: what readers need (docs/elf-vmcore.md §9). */
export type DumpLayout = 'qemu' | 'portable';

export interface KdumpChoices {
  /** block_size: QEMU uses its build's largest page size (64 KiB on aarch64), readers need the guest's. */
  blockSize(arch: Architecture, layout: DumpLayout): number;
  /** utsname.machine; crash compares it with its own build. */
  unameMachine(arch: Architecture, layout: DumpLayout): string;
  /** kdump_sub_header.phys_base. */
  physBase(guest: Pick<GuestModel, 'arch' | 'ram' | 'vmcoreinfo'>, layout: DumpLayout): bigint;
}

/** Guest-physical [start, end) backed by a saved VM's RAM `block` from `offset`. */
export interface PlacedBlock {
  readonly start: bigint;
  readonly end: bigint;
  readonly block: RamBlock;
  readonly offset: bigint;
}

/** vCPU state a source decoded, and the dump's architecture it implies (x86's depends on the RAM too). */
export interface DecodedVcpus {
  readonly vcpus: readonly Vcpu[];
  architecture(ram: readonly RamRange[]): Architecture;
}

/** Where a Linux kernel maps memory: its direct map and its own image (docs/elf-vmcore.md §9.1). */
export interface LinuxMappingFacts {
  /** The direct map's virtual address of physical 0 (x86_64 page_offset_base). */
  readonly directMapBase: bigint;
  /** SYMBOL(_stext) and the physical address it is loaded at. */
  readonly kernelTextVirtual: bigint;
  readonly kernelTextPhysical: bigint;
  /** End of the kernel image mapping: nothing maps past it. */
  readonly kernelImageEnd: bigint;
}

export type LinuxLayoutDecision =
  | { readonly kind: 'mapped'; readonly facts: LinuxMappingFacts; readonly osRelease: string }
  /** The physical layout already is the kernel's own (s390x: virtual = physical). */
  | { readonly kind: 'identity' }
  | { readonly kind: 'unavailable'; readonly reason: string };

/** The guest kernel's virtual addresses, through its own page tables (docs/dump-levels.md §2). */
export interface KernelAddressSpace {
  /** The physical address `virtual` maps to, or undefined where nothing maps it. */
  physical(virtual: bigint): Promise<bigint | undefined>;
}

export type KernelAddressSpaceResult =
  { readonly kind: 'mapped'; readonly space: KernelAddressSpace } | { readonly kind: 'unavailable'; readonly reason: string };

/** Limits and QEMU fidelity of a page-table walk (docs/memory-mapping.md §4). */
export interface WalkRules {
  readonly qemuQuirks: boolean;
  /** Present entries visited before the walk gives up. */
  readonly maxPresentEntries?: number;
  /** Merge-insert scan steps before the walk gives up. */
  readonly maxScanSteps?: number;
}

export interface TargetDescription {
  readonly name: string;
  /** ELF machines this target writes (x86 covers EM_X86_64 and EM_386). */
  readonly machines: readonly number[];
  /** Names QEMU's query-target gives, and machine descriptions use. */
  readonly qemuNames: readonly string[];

  /** The architecture a machine description names (raw images), with the RAM it describes. */
  describedArchitecture(name: string, ram: readonly RamRange[]): Architecture;
  /** Whether a saved VM's `cpu` section is this architecture's. */
  ownsCpuSection(section: DeviceState): boolean;
  /** vCPU state from the saved VM's `cpu` sections (docs/qemu-migration-stream.md §10). */
  vcpusFromStream(sections: readonly DeviceState[]): DecodedVcpus;
  /** vCPU state from QEMU's notes (the live source's 4 KiB dump): the inverse of `vcpuNotes`. */
  vcpusFromNotes(core: CoreNotes): DecodedVcpus;
  /** The saved VM's RAM blocks at their guest-physical places; flash and ROM stay out where QEMU leaves them out. */
  placeSavedRam(stream: MigrationStream, label: string): PlacedBlock[];
  /** The saved VM's ROM devices (pflash) at their guest-physical places: the page-table walk counts them as memory. */
  placeSavedRomDevices?(stream: MigrationStream): RomDevice[];
  /** Absolute address of a pointer (guest byte order) to the VMCOREINFO note, where no device reports it. */
  readonly vmcoreinfoPointer?: bigint;

  /** Every vCPU's notes, in QEMU's order, before the guest's VMCOREINFO note. */
  vcpuNotes(vcpus: readonly Vcpu[], arch: Architecture, layout: DumpLayout): ElfNote[];
  /** QEMU writes the guest's VMCOREINFO note (s390-ccw has no fw_cfg, so QEMU never does). */
  readonly qemuWritesGuestNote: boolean;
  /** QEMU writes the `.shstrtab` section header in its host's (x86: little-endian) byte order. */
  readonly qemuShstrtabOrder?: Endian;
  readonly kdump: KdumpChoices;
  /** Whether, and how, the guest's Linux kernel maps memory (reads guest memory: a discovery step). */
  linuxLayout(guest: GuestModel): Promise<LinuxLayoutDecision>;
  /** Whether a vCPU runs the kernel `facts` describe (tells two intact kernels apart); absent where the vCPU state cannot say. */
  kernelOnVcpus?(guest: GuestModel, facts: LinuxMappingFacts): Promise<boolean>;
  /** The kernel's address space from its VMCOREINFO (reads guest memory); absent where vmdump has no walker for this architecture. */
  kernelAddressSpace?(guest: GuestModel): Promise<KernelAddressSpaceResult>;
  /**
   * QEMU's paging=true mapping list from the guest's page tables; undefined for an architecture
   * QEMU has no walker for (its paging=true file then equals paging=false).
   */
  pagingMappings?(guest: GuestModel, rules: WalkRules): Promise<MemoryMapping[]>;
}

/** The vCPUs' states when they all are of `kind`; a mixed list is a source's bug. */
export function statesOf<K extends Vcpu['state']['kind']>(
  vcpus: readonly Vcpu[],
  kind: K,
): { index: number; state: Extract<Vcpu['state'], { kind: K }> }[] {
  return vcpus.map((vcpu) => {
    if (vcpu.state.kind !== kind)
      throw new VmdumpError('internal', `vCPU ${vcpu.index} has ${vcpu.state.kind} state in a ${kind} guest`);
    return { index: vcpu.index, state: vcpu.state as Extract<Vcpu['state'], { kind: K }> };
  });
}

/** A saved VM's blocks named in `places` at their fixed guest-physical addresses (aarch64 virt, s390-ccw). */
export function placeFixedBlocks(
  stream: MigrationStream,
  places: readonly { id: string; start: bigint }[],
  target: string,
  label: string,
): PlacedBlock[] {
  const placed = places.flatMap((place) => {
    const block = stream.blocks.find((b) => b.id === place.id);
    return block === undefined ? [] : [{ start: place.start, end: place.start + block.usedLength, block, offset: 0n }];
  });
  if (placed.length === 0) {
    throw new VmdumpError(
      'bad-input',
      `the ${target} stream has none of the RAM blocks ${places.map((b) => b.id).join(', ')} (blocks: ${stream.blocks.map((b) => b.id).join(', ')})`,
      label,
    );
  }
  return placed.sort((a, b) => (a.start < b.start ? -1 : 1));
}
