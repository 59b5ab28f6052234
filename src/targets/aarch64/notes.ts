/**
 * aarch64 notes as QEMU 7.2's target/arm/arch_dump.c lays them out (docs/other-arches.md §4.2), per
 * vCPU: NT_PRSTATUS (392), NT_PRFPREG (528), and NT_ARM_SVE when the CPU has SVE.
 */
import { NT_ARM_SVE, NT_PRFPREG, NT_PRSTATUS } from '../../formats/elf/elf-constants.js';
import type { Aarch64CpuState, Aarch64SveState, ElfNote, Endian } from '../../guest/guest.js';
import { NoteWriter } from '../../formats/elf/note-writer.js';

export const PRSTATUS_AARCH64_SIZE = 392;
export const PRFPREG_AARCH64_SIZE = 528;
/** SVE_PT_REGS_SVE: the payload holds the full SVE register set (Linux's user_sve_header.flags). */
const SVE_PT_REGS_SVE = 1;

/** elf_prstatus: pr_pid at 32, pr_reg (x0..x30, sp, pc, pstate) at 112, pr_fpvalid at 384. */
export function prstatusAarch64(index: number, state: Aarch64CpuState, endian: Endian): ElfNote {
  const w = new NoteWriter(PRSTATUS_AARCH64_SIZE, endian)
    .u32(32, index + 1)
    .u64s(112, [...state.x, state.sp, state.pc, state.pstate])
    .u32(384, 1);
  return { name: 'CORE', type: NT_PRSTATUS, desc: w.bytes };
}

/** user_fpsimd_state: vregs[32] (low lane first), fpsr, fpcr, 8 reserved bytes. */
export function prfpregAarch64(state: Aarch64CpuState, endian: Endian): ElfNote {
  const w = new NoteWriter(PRFPREG_AARCH64_SIZE, endian);
  state.v.forEach(([low, high], k) => w.u64(16 * k, low).u64(16 * k + 8, high));
  w.u32(512, state.fpsr).u32(516, state.fpcr);
  return { name: 'CORE', type: NT_PRFPREG, desc: w.bytes };
}

/** Byte offsets inside the SVE payload for vector length `vq` quadwords (Linux's SVE_PT_SVE_* macros). */
export function sveLayout(vq: number): { z: number; p: number; ffr: number; fpsr: number; size: number } {
  const vl = 16 * vq;
  const z = 16;
  const p = z + 32 * vl;
  const ffr = p + 16 * (vl / 8);
  const fpsr = Math.ceil((ffr + vl / 8) / 16) * 16;
  // QEMU rounds the whole payload up to 16 bytes (sve_size_vq).
  return { z, p, ffr, fpsr, size: Math.ceil((fpsr + 8) / 16) * 16 };
}

/** The first `length` bytes of u64 lanes written in the dump's byte order (QEMU's sve_bswap64 + memcpy). */
function lanes(values: readonly bigint[], length: number, endian: Endian): Uint8Array {
  return new NoteWriter(Math.ceil(length / 8) * 8, endian)
    .u64s(0, values.slice(0, Math.ceil(length / 8)))
    .bytes.subarray(0, length);
}

/** user_sve_header {size, max_size, vl, max_vl, flags, reserved}, then Z, P, FFR, fpsr, fpcr. */
export function sveAarch64(state: Aarch64CpuState & { sve: Aarch64SveState }, endian: Endian): ElfNote {
  const { sve } = state;
  const layout = sveLayout(sve.vq);
  const vl = 16 * sve.vq;
  const w = new NoteWriter(layout.size, endian)
    .u32(0, layout.size)
    .u32(4, sveLayout(sve.maxVq).size)
    .u16(8, vl)
    .u16(10, 16 * sve.maxVq)
    .u16(12, SVE_PT_REGS_SVE);
  sve.z.forEach((z, k) => w.bytes.set(lanes(z, vl, endian), layout.z + k * vl));
  sve.p.forEach((p, k) => w.bytes.set(lanes(p, vl / 8, endian), layout.p + k * (vl / 8)));
  w.u32(layout.fpsr, state.fpsr).u32(layout.fpsr + 4, state.fpcr);
  return { name: 'LINUX', type: NT_ARM_SVE, desc: w.bytes };
}

/** One vCPU's notes in QEMU's order. */
export function aarch64VcpuNotes(index: number, state: Aarch64CpuState, endian: Endian): ElfNote[] {
  const notes = [prstatusAarch64(index, state, endian), prfpregAarch64(state, endian)];
  if (state.sve !== undefined) notes.push(sveAarch64({ ...state, sve: state.sve }, endian));
  return notes;
}
