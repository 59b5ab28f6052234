/**
 * QEMU's aarch64 notes → vCPU state: the inverse of notes.ts (docs/other-arches.md §4.2), in either
 * byte order. SCTLR_EL1 is not in the notes: its EE bit is the core's byte order.
 */
import { NT_ARM_SVE, NT_PRFPREG, NT_PRSTATUS } from '../../formats/elf/elf-constants.js';
import { EndianReader, type CoreNotes } from '../../formats/elf/elf-decode.js';
import { VmdumpError } from '../../guest/errors.js';
import type { Aarch64CpuState, Aarch64SveState, Endian, Vcpu } from '../../guest/guest.js';
import { notesPerVcpu, requireNote } from '../note-groups.js';
import { SCTLR_EE } from './architecture.js';
import { PRFPREG_AARCH64_SIZE, PRSTATUS_AARCH64_SIZE, sveLayout } from './notes.js';

export function aarch64VcpusFromNotes(core: CoreNotes): Vcpu[] {
  return notesPerVcpu(core.notes).map((group, index) => {
    const pr = requireNote(group, 'CORE', NT_PRSTATUS, PRSTATUS_AARCH64_SIZE, core.endian);
    const fp = requireNote(group, 'CORE', NT_PRFPREG, PRFPREG_AARCH64_SIZE, core.endian);
    const regs = pr.u64s(112, 34);
    const state: Aarch64CpuState = {
      kind: 'aarch64',
      x: regs.slice(0, 31),
      sp: regs[31]!,
      pc: regs[32]!,
      pstate: regs[33]!,
      v: Array.from({ length: 32 }, (_, k) => [fp.u64(16 * k), fp.u64(16 * k + 8)] as const),
      fpsr: fp.u32(512),
      fpcr: fp.u32(516),
      sctlrEl1: core.endian === 'little' ? 0n : SCTLR_EE,
    };
    const sveNote = group.find((n) => n.name === 'LINUX' && n.type === NT_ARM_SVE);
    return { index, state: sveNote === undefined ? state : { ...state, sve: sveState(sveNote.desc, core.endian) } };
  });
}

function sveState(desc: Uint8Array, endian: Endian): Aarch64SveState {
  const sve = new EndianReader(desc, endian);
  const vl = sve.u16(8);
  const layout = sveLayout(vl / 16);
  if (vl % 16 !== 0 || desc.length < layout.size)
    throw new VmdumpError('bad-input', `QEMU's SVE note of ${desc.length} bytes does not hold vl ${vl}`);
  return {
    vq: vl / 16,
    maxVq: sve.u16(10) / 16,
    z: Array.from({ length: 32 }, (_, k) => sve.u64s(layout.z + k * vl, vl / 8)),
    // P registers are vl/8 bytes: whole u64 lanes only from vl 64 up; shorter ones are padded with zeros.
    p: Array.from({ length: 17 }, (_, k) =>
      lanesOf(desc.subarray(layout.p + (k * vl) / 8, layout.p + ((k + 1) * vl) / 8), endian),
    ),
  };
}

function lanesOf(bytes: Uint8Array, endian: Endian): bigint[] {
  const padded = new Uint8Array(Math.ceil(bytes.length / 8) * 8);
  padded.set(bytes);
  return new EndianReader(padded, endian).u64s(0, padded.length / 8);
}
