/**
 * The notes of a small ELF core QEMU wrote (the 4 KiB `dump-guest-memory` of qemu-live-source.md
 * §2), turned back into vCPU state: x86 from the QEMU CPU-state notes (elf-vmcore.md §7.5), which
 * carry every field the notes need; aarch64 and s390x from their own notes, which are the whole
 * state the notes are built from (other-arches.md §4.2-4.3, either byte order); and the guest's
 * VMCOREINFO note. EFER is not in the x86 notes; only its LMA bit matters to vmdump, and the ELF
 * machine says it.
 */
import {
  EM_AARCH64, EM_S390, EM_X86_64, NT_ARM_SVE, NT_PRFPREG, NT_PRSTATUS, NT_S390_CTRS, NT_S390_PREFIX, NT_S390_TIMER,
  NT_S390_TODCMP, NT_S390_TODPREG, NT_S390_VXRS_HIGH, NT_S390_VXRS_LOW,
} from '../../model/elf-constants.js';
import { VmdumpError } from '../../model/errors.js';
import {
  EFER_LMA, EFER_LME, type Aarch64CpuState, type CpuState, type ElfNote, type Endian, type S390CpuState, type Vcpu, type X86Segment,
} from '../../model/guest.js';
import { SCTLR_EE } from '../../targets/aarch64.js';
import { sveLayout } from '../../targets/aarch64-notes.js';

export interface CoreNotes {
  readonly machine: number;
  readonly endian: Endian;
  readonly longMode: boolean;
  readonly vcpus: readonly Vcpu[];
  readonly vmcoreinfo: ElfNote | undefined;
}

interface RawNote { readonly name: string; readonly type: number; readonly desc: Buffer }

/** Reads integers of the core's byte order. */
class Fields {
  constructor(readonly bytes: Buffer, private readonly little: boolean) {}
  u16(at: number): number { return this.little ? this.bytes.readUInt16LE(at) : this.bytes.readUInt16BE(at); }
  u32(at: number): number { return this.little ? this.bytes.readUInt32LE(at) : this.bytes.readUInt32BE(at); }
  u64(at: number): bigint { return this.little ? this.bytes.readBigUInt64LE(at) : this.bytes.readBigUInt64BE(at); }
  u64s(at: number, count: number): bigint[] { return Array.from({ length: count }, (_, i) => this.u64(at + 8 * i)); }
}

function notesOf(core: Buffer): { endian: Endian; notes: RawNote[] } {
  if (core.length < 64 || core.readUInt32BE(0) !== 0x7f454c46 || (core[5] !== 1 && core[5] !== 2)) throw new VmdumpError('bad-input', 'QEMU wrote no ELF core for the notes');
  const malformed = (what: string): never => { throw new VmdumpError('bad-input', `QEMU's notes dump is malformed: ${what}`); };
  const endian: Endian = core[5] === 1 ? 'little' : 'big';
  const f = new Fields(core, endian === 'little');
  const is64 = core[4] === 2;
  const entry = is64 ? 56 : 32;
  const phoff = Number(is64 ? f.u64(32) : BigInt(f.u32(28)));
  const phnum = f.u16(is64 ? 56 : 44);
  if (phoff + phnum * entry > core.length) malformed(`${phnum} program headers at ${phoff} run past its ${core.length} bytes`);
  const notes: RawNote[] = [];
  for (let i = 0; i < phnum; i += 1) {
    const at = phoff + i * entry;
    if (f.u32(at) !== 4) continue;
    const offset = Number(is64 ? f.u64(at + 8) : BigInt(f.u32(at + 4)));
    const size = Number(is64 ? f.u64(at + 32) : BigInt(f.u32(at + 16)));
    if (offset + size > core.length) malformed(`PT_NOTE [${offset}, +${size}) runs past its ${core.length} bytes`);
    for (let p = offset; p < offset + size;) {
      if (p + 12 > offset + size) malformed(`a note header at ${p} runs past PT_NOTE`);
      const namesz = f.u32(p);
      const descsz = f.u32(p + 4);
      const descAt = p + 12 + Math.ceil(namesz / 4) * 4;
      const next = descAt + Math.ceil(descsz / 4) * 4;
      if (next > offset + size) malformed(`the note at ${p} (n_namesz ${namesz}, n_descsz ${descsz}) runs past PT_NOTE`);
      const name = core.toString('latin1', p + 12, p + 12 + Math.max(0, namesz - 1));
      notes.push({ name, type: f.u32(p + 8), desc: core.subarray(descAt, descAt + descsz) });
      p = next;
    }
  }
  return { endian, notes };
}

/** Splits the per-vCPU notes into groups, each starting at an NT_PRSTATUS (aarch64, s390x order). */
function perVcpu(notes: readonly RawNote[]): RawNote[][] {
  const groups: RawNote[][] = [];
  for (const note of notes) {
    if (note.name === 'VMCOREINFO') continue;
    if (note.name === 'CORE' && note.type === NT_PRSTATUS) groups.push([]);
    groups.at(-1)?.push(note);
  }
  return groups;
}

function need(group: readonly RawNote[], name: string, type: number, size: number): Buffer {
  const note = group.find((n) => n.name === name && n.type === type);
  if (note === undefined || note.desc.length < size) throw new VmdumpError('bad-input', `QEMU's notes lack a ${size}-byte ${name} note of type ${type}`);
  return note.desc;
}

/** Inverse of aarch64-notes.ts. SCTLR_EL1 is not in the notes: its EE bit is the core's byte order. */
function aarch64State(group: readonly RawNote[], endian: Endian): Aarch64CpuState {
  const little = endian === 'little';
  const pr = new Fields(need(group, 'CORE', NT_PRSTATUS, 392), little);
  const fp = new Fields(need(group, 'CORE', NT_PRFPREG, 528), little);
  const regs = pr.u64s(112, 34);
  const sveNote = group.find((n) => n.name === 'LINUX' && n.type === NT_ARM_SVE);
  const state: Aarch64CpuState = {
    kind: 'aarch64', x: regs.slice(0, 31), sp: regs[31]!, pc: regs[32]!, pstate: regs[33]!,
    v: Array.from({ length: 32 }, (_, k) => [fp.u64(16 * k), fp.u64(16 * k + 8)] as const),
    fpsr: fp.u32(512), fpcr: fp.u32(516), sctlrEl1: little ? 0n : SCTLR_EE,
  };
  if (sveNote === undefined) return state;
  const sve = new Fields(sveNote.desc, little);
  const vl = sve.u16(8);
  const layout = sveLayout(vl / 16);
  if (vl % 16 !== 0 || sveNote.desc.length < layout.size) throw new VmdumpError('bad-input', `QEMU's SVE note of ${sveNote.desc.length} bytes does not hold vl ${vl}`);
  return {
    ...state,
    sve: {
      vq: vl / 16, maxVq: sve.u16(10) / 16,
      z: Array.from({ length: 32 }, (_, k) => sve.u64s(layout.z + k * vl, vl / 8)),
      // P registers are vl/8 bytes: whole u64 lanes only from vl 64 up; shorter ones are padded with zeros.
      p: Array.from({ length: 17 }, (_, k) => lanesOf(sveNote.desc.subarray(layout.p + (k * vl) / 8, layout.p + ((k + 1) * vl) / 8), little)),
    },
  };
}

function lanesOf(bytes: Buffer, little: boolean): bigint[] {
  const padded = Buffer.alloc(Math.ceil(bytes.length / 8) * 8);
  bytes.copy(padded);
  return new Fields(padded, little).u64s(0, padded.length / 8);
}

/** Inverse of s390x-notes.ts (pr_pid is not state, so QEMU's byte-order bug does not matter here). */
function s390xState(group: readonly RawNote[], endian: Endian): S390CpuState {
  const little = endian === 'little';
  const at = (name: string, type: number, size: number): Fields => new Fields(need(group, name, type, size), little);
  const pr = at('CORE', NT_PRSTATUS, 336);
  const fp = at('CORE', NT_PRFPREG, 136);
  const low = at('LINUX', NT_S390_VXRS_LOW, 128);
  const high = at('LINUX', NT_S390_VXRS_HIGH, 256);
  return {
    kind: 's390x', pswMask: pr.u64(112), pswAddr: pr.u64(120), gprs: pr.u64s(128, 16),
    acrs: Array.from({ length: 16 }, (_, i) => pr.u32(256 + 4 * i)),
    fpc: fp.u32(0),
    v: Array.from({ length: 32 }, (_, k) => (k < 16 ? [fp.u64(8 + 8 * k), low.u64(8 * k)] as const : [high.u64(16 * (k - 16)), high.u64(16 * (k - 16) + 8)] as const)),
    prefix: at('LINUX', NT_S390_PREFIX, 4).u32(0), crs: at('LINUX', NT_S390_CTRS, 128).u64s(0, 16), cpuTimer: at('LINUX', NT_S390_TIMER, 8).u64(0),
    clockComparator: at('LINUX', NT_S390_TODCMP, 8).u64(0), todProgrammable: at('LINUX', NT_S390_TODPREG, 4).u32(0),
  };
}

function segment(desc: Buffer, at: number): X86Segment {
  return { selector: desc.readUInt32LE(at), limit: desc.readUInt32LE(at + 4), flags: desc.readUInt32LE(at + 8), base: desc.readBigUInt64LE(at + 16) };
}

export function parseCoreNotes(core: Buffer): CoreNotes {
  const { endian, notes } = notesOf(core);
  const machine = endian === 'little' ? core.readUInt16LE(18) : core.readUInt16BE(18);
  const info = notes.find((n) => n.name === 'VMCOREINFO');
  const vmcoreinfo = info === undefined ? undefined : { name: info.name, type: info.type, desc: Buffer.from(info.desc) };
  const ofArch = (state: (group: RawNote[], endian: Endian) => CpuState): CoreNotes => ({
    machine, endian, longMode: false, vmcoreinfo,
    vcpus: perVcpu(notes).map((group, index) => ({ index, state: state(group, endian) })),
  });
  if (machine === EM_AARCH64) return ofArch(aarch64State);
  if (machine === EM_S390) return ofArch(s390xState);
  const longMode = machine === EM_X86_64;
  const vcpus = notes.filter((n) => n.name === 'QEMU').map((note, index): Vcpu => {
    const d = note.desc;
    if (d.length < 440) throw new VmdumpError('bad-input', `QEMU CPU-state note of ${d.length} bytes; vmdump reads version 1 with 440`);
    const u64 = (at: number): bigint => d.readBigUInt64LE(at);
    const [cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt] = Array.from({ length: 10 }, (_, k) => segment(d, 152 + 24 * k)) as X86Segment[];
    return {
      index,
      state: {
        kind: 'x86',
        rax: u64(8), rbx: u64(16), rcx: u64(24), rdx: u64(32), rsi: u64(40), rdi: u64(48), rsp: u64(56), rbp: u64(64),
        r8: u64(72), r9: u64(80), r10: u64(88), r11: u64(96), r12: u64(104), r13: u64(112), r14: u64(120), r15: u64(128),
        rip: u64(136), rflags: u64(144),
        cs: cs!, ds: ds!, es: es!, fs: fs!, gs: gs!, ss: ss!, ldt: ldt!, tr: tr!,
        gdt: { limit: gdt!.limit, base: gdt!.base }, idt: { limit: idt!.limit, base: idt!.base },
        cr0: u64(392), cr1: u64(400), cr2: u64(408), cr3: u64(416), cr4: u64(424),
        efer: longMode ? EFER_LME | EFER_LMA : 0n, kernelGsBase: u64(432),
      },
    };
  });
  return { machine, endian, longMode, vcpus, vmcoreinfo };
}
