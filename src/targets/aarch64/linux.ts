/**
 * Where a Linux aarch64 kernel maps memory, from its VMCOREINFO alone (docs/other-arches.md §7):
 * the linear map puts physical PHYS_OFFSET at PAGE_OFFSET = -2^VA_BITS, the image is at
 * physical + kimage_voffset. The image's end is not in VMCOREINFO; the highest image symbol it
 * names (clear_seq, in .bss, ~0.6 MiB before _end on 6.1) rounded up to 2 MiB bounds it.
 */
import { VmcoreinfoText } from '../../formats/vmcoreinfo.js';
import type { GuestModel } from '../../guest/guest.js';
import type { LinuxLayoutDecision } from '../target.js';

const TWO_MIB = 2n << 20n;

export function aarch64LinuxFacts(desc: Uint8Array): LinuxLayoutDecision {
  const info = VmcoreinfoText.of(desc);
  const vaBits = info.decimal('NUMBER(VA_BITS)');
  const [stext, kimageVoffset, physOffset] = [
    info.hex('SYMBOL(_stext)'),
    info.hex('NUMBER(kimage_voffset)'),
    info.hex('NUMBER(PHYS_OFFSET)'),
  ];
  if (vaBits === undefined || vaBits < 0n || stext === undefined || kimageVoffset === undefined || physOffset === undefined) {
    return { kind: 'unavailable', reason: 'VMCOREINFO lacks VA_BITS, _stext, kimage_voffset or PHYS_OFFSET' };
  }
  const pageOffset = BigInt.asUintN(64, -(1n << vaBits));
  const imageSymbols = [...info.keys()]
    .filter((key) => key.startsWith('SYMBOL('))
    .map((key) => info.hex(key) ?? 0n)
    .filter((address) => address >= stext && address - stext < 1n << 30n);
  const highest = imageSymbols.reduce((a, b) => (a > b ? a : b), stext);
  return {
    kind: 'mapped',
    osRelease: info.string('OSRELEASE') ?? '',
    facts: {
      directMapBase: BigInt.asUintN(64, pageOffset - physOffset),
      kernelTextVirtual: stext,
      kernelTextPhysical: BigInt.asUintN(64, stext - kimageVoffset),
      kernelImageEnd: (highest / TWO_MIB + 1n) * TWO_MIB,
    },
  };
}

export async function aarch64LinuxLayout(guest: GuestModel): Promise<LinuxLayoutDecision> {
  if (guest.vmcoreinfo === undefined || guest.vmcoreinfo.name !== 'VMCOREINFO')
    return { kind: 'unavailable', reason: 'the guest gave no VMCOREINFO' };
  return aarch64LinuxFacts(guest.vmcoreinfo.desc);
}
