/**
 * The aarch64 `cpu` sections → vCPU state (docs/other-arches.md §5, §6). Fields are read by their
 * vmdesc names; subsections appear as "cpu/vfp:…" and so on. Every integer in the stream is
 * big-endian, whatever the guest's byte order.
 */
import type { Aarch64CpuState, Aarch64SveState } from '../../guest/guest.js';
import { bigEndianLanes, type DeviceState } from '../../formats/migration/vmdesc.js';

/** KVM register ids of the system registers the notes need (op0/op1/CRn/CRm/op2 in the low 16 bits). */
const SCTLR_EL1 = 0x6030_0000_0013_c080n;
const ZCR_EL1 = 0x6030_0000_0013_c090n;
/** QEMU's FPSR/FPCR views of the combined `fpscr` field (target/arm/cpu.h). */
const FPSR_MASK = 0xf800009fn;
const FPCR_MASK = 0x07ff9f00n;
/** TCG's `-cpu max` allows 2048-bit vectors; the stream does not carry the CPU's maximum (§6). */
export const DEFAULT_SVE_MAX_VQ = 16;

const lanes = bigEndianLanes;

function systemRegisters(cpu: DeviceState): Map<bigint, bigint> {
  const count = Number(cpu.uint('cpreg_vmstate_array_len'));
  const ids = lanes(cpu, 'cpreg_vmstate_indexes');
  const values = lanes(cpu, 'cpreg_vmstate_values');
  return new Map(ids.slice(0, count).map((id, i) => [id, values[i] ?? 0n]));
}

function sveState(
  cpu: DeviceState,
  zcr: bigint,
  low: readonly (readonly [bigint, bigint])[],
  maxVq: number,
): Aarch64SveState | undefined {
  if (!cpu.has('cpu/sve:env.vfp.zregs')) return undefined;
  // The vmdesc numbers the sub-array from 0: these are d[2..15] of each Z register (§5).
  const high = lanes(cpu, 'cpu/sve:env.vfp.zregs');
  const perZ = high.length / 32;
  const p = lanes(cpu, 'cpu/sve:env.vfp.pregs');
  return {
    vq: Math.min(Number(zcr & 0xfn) + 1, maxVq),
    maxVq,
    z: low.map(([d0, d1], k) => [d0, d1, ...high.slice(k * perZ, (k + 1) * perZ)]),
    p: Array.from({ length: 17 }, (_, k) => p.slice(4 * k, 4 * k + 4)),
  };
}

export function aarch64StateFromSection(cpu: DeviceState, maxVq = DEFAULT_SVE_MAX_VQ): Aarch64CpuState {
  const x = lanes(cpu, 'env.xregs');
  const sysregs = systemRegisters(cpu);
  const v = Array.from({ length: 32 }, (_, k): readonly [bigint, bigint] => {
    const [d0 = 0n, d1 = 0n] = cpu.has(`cpu/vfp:env.vfp.zregs[${k}].d`) ? lanes(cpu, `cpu/vfp:env.vfp.zregs[${k}].d`) : [];
    return [d0, d1];
  });
  const fpscr = cpu.has('cpu/vfp:fpscr') ? cpu.uint('cpu/vfp:fpscr') : 0n;
  const sve = sveState(cpu, sysregs.get(ZCR_EL1) ?? 0n, v, maxVq);
  return {
    kind: 'aarch64',
    x: x.slice(0, 31),
    sp: x[31] ?? 0n,
    pc: cpu.uint('env.pc'),
    pstate: cpu.uint('cpsr'),
    v,
    fpsr: Number(fpscr & FPSR_MASK),
    fpcr: Number(fpscr & FPCR_MASK),
    sctlrEl1: sysregs.get(SCTLR_EL1) ?? 0n,
    ...(sve === undefined ? {} : { sve }),
  };
}
