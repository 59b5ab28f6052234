/**
 * QEMU's s390x notes → vCPU state: the inverse of notes.ts (docs/other-arches.md §4.3). pr_pid is
 * not state, so QEMU's byte-order bug there does not matter.
 */
import {
  NT_PRFPREG,
  NT_PRSTATUS,
  NT_S390_CTRS,
  NT_S390_PREFIX,
  NT_S390_TIMER,
  NT_S390_TODCMP,
  NT_S390_TODPREG,
  NT_S390_VXRS_HIGH,
  NT_S390_VXRS_LOW,
} from '../../formats/elf/elf-constants.js';
import type { CoreNotes } from '../../formats/elf/elf-decode.js';
import type { Vcpu } from '../../guest/guest.js';
import { notesPerVcpu, requireNote } from '../note-groups.js';
import { PRSTATUS_S390X_SIZE } from './notes.js';

export function s390xVcpusFromNotes(core: CoreNotes): Vcpu[] {
  return notesPerVcpu(core.notes).map((group, index) => {
    const at = (name: string, type: number, size: number) => requireNote(group, name, type, size, core.endian);
    const pr = at('CORE', NT_PRSTATUS, PRSTATUS_S390X_SIZE);
    const fp = at('CORE', NT_PRFPREG, 136);
    const low = at('LINUX', NT_S390_VXRS_LOW, 128);
    const high = at('LINUX', NT_S390_VXRS_HIGH, 256);
    return {
      index,
      state: {
        kind: 's390x',
        pswMask: pr.u64(112),
        pswAddr: pr.u64(120),
        gprs: pr.u64s(128, 16),
        acrs: Array.from({ length: 16 }, (_, i) => pr.u32(256 + 4 * i)),
        fpc: fp.u32(0),
        v: Array.from({ length: 32 }, (_, k) =>
          k < 16
            ? ([fp.u64(8 + 8 * k), low.u64(8 * k)] as const)
            : ([high.u64(16 * (k - 16)), high.u64(16 * (k - 16) + 8)] as const),
        ),
        prefix: at('LINUX', NT_S390_PREFIX, 4).u32(0),
        crs: at('LINUX', NT_S390_CTRS, 128).u64s(0, 16),
        cpuTimer: at('LINUX', NT_S390_TIMER, 8).u64(0),
        clockComparator: at('LINUX', NT_S390_TODCMP, 8).u64(0),
        todProgrammable: at('LINUX', NT_S390_TODPREG, 4).u32(0),
      },
    };
  });
}
