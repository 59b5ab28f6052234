/**
 * The s390x `cpu` sections → vCPU state (docs/other-arches.md §5, §6), by vmdesc field names.
 * Every integer in the stream is big-endian.
 */
import type { S390CpuState } from '../../guest/guest.js';
import { bigEndianLanes as lanes, type DeviceState } from '../../formats/migration/vmdesc.js';

export function s390xStateFromSection(cpu: DeviceState): S390CpuState {
  const optional = (path: string): bigint => (cpu.has(path) ? cpu.uint(path) : 0n);
  // fpr k is the high half of v k (cpu/fpu); the low halves and v16..v31 come with cpu/vregs.
  const v = Array.from({ length: 32 }, (_, k): readonly [bigint, bigint] => [
    optional(`${k < 16 ? 'cpu/fpu' : 'cpu/vregs'}:env.vregs[${k}][0]`),
    optional(`cpu/vregs:env.vregs[${k}][1]`),
  ]);
  return {
    kind: 's390x',
    pswMask: cpu.uint('env.psw.mask'),
    pswAddr: cpu.uint('env.psw.addr'),
    gprs: lanes(cpu, 'env.regs'),
    acrs: Array.from({ length: 16 }, (_, i) => Number(cpu.uint('env.aregs', i, 4))),
    fpc: Number(optional('cpu/fpu:env.fpc')),
    v,
    prefix: Number(cpu.uint('env.psa')),
    crs: lanes(cpu, 'env.cregs'),
    cpuTimer: cpu.uint('env.cputm'),
    clockComparator: cpu.uint('env.ckc'),
    todProgrammable: Number(cpu.uint('env.todpr')),
  };
}
