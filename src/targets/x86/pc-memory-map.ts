/**
 * RAM block offsets → guest-physical addresses for QEMU's x86 `pc` (i440fx) and `q35` machines,
 * rebuilt from the machine type, the RAM size and chipset registers in the device sections
 * (docs/qemu-migration-stream.md §6). The result is what QEMU's dump walks: ranges backed by RAM
 * or ROM in address order, neighbours merged when they continue the same block.
 */
import { VmdumpError, hex } from '../../guest/errors.js';
import type { DeviceState } from '../../formats/migration/vmdesc.js';
import type { RamBlock } from '../../formats/migration/migration-stream.js';
import { isSpecialBlock } from '../../formats/migration/block-names.js';
import { FOUR_GIB, physAddr } from '../../guest/units.js';
import type { RomDevice } from '../../guest/guest.js';
import type { PlacedBlock } from '../target.js';

const KIB = 1024n;
const MIB = 1024n * KIB;

type Chipset = { kind: 'q35'; config: Buffer } | { kind: 'i440fx'; config: Buffer };

function chipsetOf(devices: readonly DeviceState[], machineType: string): Chipset {
  const q35 = devices.find((d) => d.name.endsWith('/mch'));
  if (q35 !== undefined) return { kind: 'q35', config: q35.raw('parent_obj.config[0]') };
  const i440fx = devices.find((d) => d.name.endsWith('/I440FX'));
  if (i440fx !== undefined) return { kind: 'i440fx', config: i440fx.raw('parent_obj.config[0]') };
  throw new VmdumpError(
    'bad-input',
    `machine type "${machineType}" has neither a q35 MCH nor an i440FX host bridge; vmdump maps x86 pc and q35 guests only`,
  );
}

/** RAM below 4 GiB (§6.1); max-ram-below-4g is not in the stream, so its default is assumed. */
export function lowMemorySize(chipset: Chipset['kind'], ramSize: bigint): bigint {
  let lowmem: bigint;
  if (chipset === 'q35') lowmem = ramSize >= 0xb000_0000n ? 0x8000_0000n : 0xb000_0000n;
  else lowmem = ramSize >= 0xe000_0000n ? 0xc000_0000n : 0xe000_0000n;
  return ramSize < lowmem ? ramSize : lowmem;
}

interface Piece {
  start: bigint;
  size: bigint;
  block: RamBlock;
  offset: bigint;
}

export function mapPcMemory(machineType: string, blocks: readonly RamBlock[], devices: readonly DeviceState[]): PlacedBlock[] {
  const chipset = chipsetOf(devices, machineType);
  const main = blocks.filter((b) => !isSpecialBlock(b.id));
  if (main.length !== 1) {
    throw new VmdumpError(
      'bad-input',
      `expected one main RAM block, found ${main.length} (${main.map((b) => b.id).join(', ')}): NUMA guests with several memory backends are not supported yet`,
    );
  }
  const ram = main[0]!;
  const below = lowMemorySize(chipset.kind, ram.usedLength);
  const block = (id: string): RamBlock | undefined => blocks.find((b) => b.id === id);
  const pieces: Piece[] = [];
  const add = (start: bigint, size: bigint, b: RamBlock, offset: bigint): void => {
    if (size > 0n) pieces.push({ start, size, block: b, offset });
  };
  const addRam = (start: bigint, end: bigint): void => add(start, (end < below ? end : below) - start, ram, start);

  // 0 - 0xA0000, and the holes TSEG / SMBASE may cut into low RAM (q35).
  for (const [start, end] of lowRamSpans(chipset, below)) addRam(start, end);
  addLegacyWindow(chipset, devices, blocks, ram, add);
  addPamSegments(chipset, ram, block, add);
  if (ram.usedLength > below) add(FOUR_GIB, ram.usedLength - below, ram, below);
  const bios = block('pc.bios');
  if (bios !== undefined) add(FOUR_GIB - bios.usedLength, bios.usedLength, bios, 0n);
  addVgaBar(devices, blocks, add);
  return mergeRanges(pieces);
}

/**
 * The pflash units, which are not RAM (docs/qemu-migration-stream.md §6): QEMU maps them top-down
 * below 4 GiB, unit 0 highest (pc_system_flash_map).
 */
export function placePcFlash(blocks: readonly RamBlock[]): RomDevice[] {
  let top = FOUR_GIB;
  const devices: RomDevice[] = [];
  for (const id of ['system.flash0', 'system.flash1']) {
    const flash = blocks.find((b) => b.id === id);
    if (flash === undefined) break;
    top -= flash.usedLength;
    devices.push({ start: physAddr(top), size: flash.usedLength, label: id });
  }
  return devices;
}

/** [0, 0xA0000) and [1 MiB, below) minus q35's SMBASE and TSEG black holes when enabled. */
function lowRamSpans(chipset: Chipset, below: bigint): [bigint, bigint][] {
  const spans: [bigint, bigint][] = [
    [0n, 0xa0000n],
    [0x100000n, below],
  ];
  if (chipset.kind !== 'q35') return spans;
  const holes: [bigint, bigint][] = [];
  if ((chipset.config[0x9c]! & 0x02) !== 0) holes.push([0x30000n, 0x50000n]); // F_SMBASE.LCK: smbase-blackhole
  const esmramc = chipset.config[0x9e]!;
  if ((esmramc & 0x01) !== 0) {
    // T_EN: tseg-blackhole
    const sizes = [1n * MIB, 2n * MIB, 8n * MIB];
    const tseg = sizes[(esmramc >> 1) & 3] ?? BigInt(chipset.config.readUInt16LE(0x50)) * MIB;
    holes.push([below - tseg, below]);
  }
  return holes.reduce(
    (current, [hs, he]) =>
      current.flatMap(([s, e]): [bigint, bigint][] =>
        he <= s || hs >= e
          ? [[s, e]]
          : ([
              [s, hs < s ? s : hs],
              [he > e ? e : he, e],
            ].filter(([a, b]) => a! < b!) as [bigint, bigint][]),
      ),
    spans,
  );
}

/** 0xA0000-0xBFFFF: open SMRAM shows RAM; otherwise the VGA window (I/O, or vram in chain-4 mode); no VGA: RAM. */
function addLegacyWindow(
  chipset: Chipset,
  devices: readonly DeviceState[],
  blocks: readonly RamBlock[],
  ram: RamBlock,
  add: (start: bigint, size: bigint, b: RamBlock, offset: bigint) => void,
): void {
  const smram = chipset.kind === 'q35' ? chipset.config[0x9d]! : chipset.config[0x72]!;
  const smramOpen = (smram & 0x40) !== 0 && !(chipset.kind === 'q35' && (chipset.config[0x9e]! & 0x80) !== 0);
  const vga = devices.find((d) => d.name.endsWith('/vga') || d.name === 'vga');
  const hasDisplay = devices.some((d) => /vga|qxl|cirrus|bochs-display/i.test(d.name));
  if (smramOpen || !hasDisplay) {
    add(0xa0000n, 0x20000n, ram, 0xa0000n);
    return;
  }
  if (vga === undefined || !vga.has('vga.sr')) return;
  const sr = vga.raw('vga.sr');
  const gr = vga.raw('vga.gr');
  // QEMU vga_update_memory_access: the chain-4 alias of vram is mapped when all planes are written in chain-4 mode.
  if ((sr[2]! & 0x0f) !== 0x0f || (sr[4]! & 0x08) === 0) return;
  const vram = blocks.find((b) => b.id === `${vga.name}.vram`);
  if (vram === undefined) return;
  const window: [bigint, bigint, bigint][] = [
    [0xa0000n, 0x20000n, 0n],
    [0xa0000n, 0x10000n, BigInt(vga.uint('vga.bank_offset'))],
    [0xb0000n, 0x8000n, 0n],
    [0xb8000n, 0x8000n, 0n],
  ];
  const [base, size, offset] = window[(gr[6]! >> 2) & 3]!;
  add(base, size, vram, offset);
}

/** 0xC0000-0xFFFFF by PAM attribute (§6.2): RAM, or the ROM behind it. */
function addPamSegments(
  chipset: Chipset,
  ram: RamBlock,
  block: (id: string) => RamBlock | undefined,
  add: (start: bigint, size: bigint, b: RamBlock, offset: bigint) => void,
): void {
  const pamBase = chipset.kind === 'q35' ? 0x90 : 0x59;
  const isaBios = block('isa-bios');
  const bios = block('pc.bios');
  const pcRom = block('pc.rom');
  for (let segment = 0; segment < 13; segment += 1) {
    // Segment 0 is 0xF0000 (64 KiB, PAM0[5:4]); then 16 KiB segments from 0xC0000 in PAM1..PAM6, low nibble first.
    const [start, size, register, shift] =
      segment === 0
        ? [0xf0000n, 0x10000n, pamBase, 4]
        : [0xc0000n + BigInt(segment - 1) * 0x4000n, 0x4000n, pamBase + 1 + ((segment - 1) >> 1), ((segment - 1) & 1) * 4];
    const attribute = (chipset.config[register]! >> shift) & 3;
    if (attribute !== 0) {
      add(start, size, ram, start);
      continue;
    }
    if (start < 0xe0000n) {
      if (pcRom !== undefined) add(start, size, pcRom, start - 0xc0000n);
      continue;
    }
    // The ISA BIOS window ends at 1 MiB and holds the last min(size, 128 KiB) of the firmware:
    // pflash firmware's own isa-bios block (64 KiB flash: a 64 KiB window at 0xF0000), or an alias
    // of pc.bios. Where a smaller window leaves the ROM space empty, the RAM below shows through
    // (measured: QEMU's flat view and dump have pc.ram at 0xE0000 with 64 KiB flash).
    const firmware = isaBios ?? bios;
    const aliasSize = firmware === undefined ? 0n : firmware.usedLength < 0x20000n ? firmware.usedLength : 0x20000n;
    const aliasStart = 0x100000n - aliasSize;
    const from = start > aliasStart ? start : aliasStart < start + size ? aliasStart : start + size;
    add(start, from - start, ram, start);
    if (firmware !== undefined) add(from, start + size - from, firmware, firmware.usedLength - aliasSize + (from - aliasStart));
  }
}

/** A standard VGA's vram at BAR0 when memory decoding is on (§6.3). */
function addVgaBar(
  devices: readonly DeviceState[],
  blocks: readonly RamBlock[],
  add: (start: bigint, size: bigint, b: RamBlock, offset: bigint) => void,
): void {
  for (const vga of devices.filter((d) => d.name.endsWith('/vga') && d.has('dev.config[0]'))) {
    const config = vga.raw('dev.config[0]');
    const vram = blocks.find((b) => b.id === `${vga.name}.vram`);
    const bar = BigInt((config.readUInt32LE(0x10) & ~0xf) >>> 0);
    if (vram === undefined || (config[0x04]! & 0x02) === 0 || bar === 0n) continue;
    add(bar, vram.usedLength, vram, 0n);
  }
}

/** Sorts, rejects overlaps, and merges neighbours that continue the same block (docs/memory-mapping.md §2). */
function mergeRanges(pieces: Piece[]): PlacedBlock[] {
  pieces.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: { start: bigint; end: bigint; block: RamBlock; offset: bigint }[] = [];
  for (const p of pieces) {
    const last = merged[merged.length - 1];
    if (last !== undefined && p.start < last.end) {
      throw new VmdumpError(
        'bad-input',
        `guest-physical ${hex(p.start)} is claimed by both ${last.block.id} and ${p.block.id}: cannot rebuild the memory map`,
      );
    }
    if (
      last !== undefined &&
      last.end === p.start &&
      last.block === p.block &&
      last.offset + (last.end - last.start) === p.offset
    ) {
      last.end += p.size;
    } else {
      merged.push({ start: p.start, end: p.start + p.size, block: p.block, offset: p.offset });
    }
  }
  return merged;
}
