/**
 * `info mtree -f` → the ranges QEMU's dump contains (docs/qemu-live-source.md §4): the flat view of
 * address space "memory" (root: system), lines of kind ram/rom (not nv-), merged when a line
 * continues the previous one's region at the next offset.
 */
import { VmdumpError } from '../../guest/errors.js';

export interface FlatRange {
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  /** The (alias-resolved) memory region: a RAMBlock name such as `pc.ram`, `m0`, `vga.vram`. */
  readonly region: string;
  /** Offset inside `region` of `start`. */
  readonly offset: bigint;
}

const LINE =
  /^\s+([0-9a-f]{16})-([0-9a-f]{16}) \(prio -?\d+, ([a-z/-]+)\): (.*?)(?: @([0-9a-f]{16}))?(?: (?:owner|parent):\{.*)?$/;

/** The ranges QEMU dumps: ram/rom lines (not nv-), merged where one continues the previous one's region. */
export function parseFlatView(text: string): FlatRange[] {
  return mergedRanges(systemLines(text).filter((line) => line.kind === 'ram' || line.kind === 'rom'));
}

/** ROM devices in ROM mode (`romd`: pflash), which the page-table walk counts as memory but QEMU never dumps. */
export function parseRomDevices(text: string): FlatRange[] {
  return mergedRanges(systemLines(text).filter((line) => line.kind === 'romd'));
}

interface FlatLine extends FlatRange {
  readonly kind: string;
}

function systemLines(text: string): FlatLine[] {
  const views = text
    .replace(/\r\n/g, '\n')
    .split(/^FlatView #\d+\n/m)
    .slice(1);
  const system = views.find((view) => /^ AS "memory", root: system\b/m.test(view));
  if (system === undefined)
    throw new VmdumpError('bad-input', 'info mtree -f shows no flat view for address space "memory" (root: system)');
  const lines: FlatLine[] = [];
  for (const line of system.split('\n')) {
    const match = LINE.exec(line);
    if (match === null) continue;
    const [, startHex, endHex, kind, region, offsetHex] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string | undefined,
    ];
    lines.push({
      kind,
      start: BigInt(`0x${startHex}`),
      end: BigInt(`0x${endHex}`) + 1n,
      region,
      offset: offsetHex === undefined ? 0n : BigInt(`0x${offsetHex}`),
    });
  }
  return lines;
}

function mergedRanges(lines: readonly FlatLine[]): FlatRange[] {
  const ranges: { start: bigint; end: bigint; region: string; offset: bigint }[] = [];
  for (const { start, end, region, offset } of lines) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.end === start && last.region === region && last.offset + (last.end - last.start) === offset) {
      last.end = end;
    } else {
      ranges.push({ start, end, region, offset });
    }
  }
  return ranges;
}
