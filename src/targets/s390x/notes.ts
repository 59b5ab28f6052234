/**
 * s390x notes as QEMU 7.2's target/s390x/arch_dump.c writes them (docs/other-arches.md §4.3, §6):
 * ten per vCPU, in this order, all in the dump's (big-endian) byte order, except that QEMU
 * stores NT_PRSTATUS's pr_pid in its host's order; `pidOrder` says which one to write.
 */
import {
  NT_PRFPREG,
  NT_PRSTATUS,
  NT_S390_CTRS,
  NT_S390_GS_CB,
  NT_S390_PREFIX,
  NT_S390_TIMER,
  NT_S390_TODCMP,
  NT_S390_TODPREG,
  NT_S390_VXRS_HIGH,
  NT_S390_VXRS_LOW,
} from '../../formats/elf/elf-constants.js';
import type { ElfNote, Endian, S390CpuState } from '../../guest/guest.js';
import { NoteWriter } from '../../formats/elf/note-writer.js';

export const PRSTATUS_S390X_SIZE = 336;
/** Guarded-storage control block: four u64, zero when the guest never enabled it (no cpu/gscb subsection). */
const GS_CB_SIZE = 32;

/** pad[32], pr_pid, pad[76], psw mask/addr, gprs[16], acrs[16] (u32), pad[16]. */
function prstatus(index: number, s: S390CpuState, endian: Endian, pidOrder: Endian): ElfNote {
  const w = new NoteWriter(PRSTATUS_S390X_SIZE, endian).u64s(112, [s.pswMask, s.pswAddr, ...s.gprs]).u32s(256, s.acrs);
  new DataView(w.bytes.buffer).setUint32(32, index + 1, pidOrder === 'little');
  return { name: 'CORE', type: NT_PRSTATUS, desc: w.bytes };
}

function linuxNote(type: number, fill: (w: NoteWriter) => void, size: number, endian: Endian): ElfNote {
  const w = new NoteWriter(size, endian);
  fill(w);
  return { name: 'LINUX', type, desc: w.bytes };
}

export function s390xVcpuNotes(index: number, s: S390CpuState, endian: Endian, pidOrder: Endian): ElfNote[] {
  const fpregset = new NoteWriter(136, endian).u32(0, s.fpc).u64s(
    8,
    s.v.slice(0, 16).map(([high]) => high),
  );
  return [
    prstatus(index, s, endian, pidOrder),
    { name: 'CORE', type: NT_PRFPREG, desc: fpregset.bytes },
    linuxNote(NT_S390_PREFIX, (w) => w.u32(0, s.prefix), 4, endian),
    linuxNote(NT_S390_CTRS, (w) => w.u64s(0, s.crs), 128, endian),
    linuxNote(NT_S390_TIMER, (w) => w.u64(0, s.cpuTimer), 8, endian),
    linuxNote(NT_S390_TODCMP, (w) => w.u64(0, s.clockComparator), 8, endian),
    linuxNote(NT_S390_TODPREG, (w) => w.u32(0, s.todProgrammable), 4, endian),
    linuxNote(
      NT_S390_VXRS_LOW,
      (w) =>
        w.u64s(
          0,
          s.v.slice(0, 16).map(([, low]) => low),
        ),
      128,
      endian,
    ),
    linuxNote(
      NT_S390_VXRS_HIGH,
      (w) =>
        w.u64s(
          0,
          s.v.slice(16, 32).flatMap(([high, low]) => [high, low]),
        ),
      256,
      endian,
    ),
    linuxNote(NT_S390_GS_CB, () => undefined, GS_CB_SIZE, endian),
  ];
}
