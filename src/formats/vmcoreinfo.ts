/**
 * VMCOREINFO, the kernel's `KEY=value` text (docs/elf-vmcore.md §7.6): every layer that reads a
 * field goes through here. Linux prints SYMBOL()s and KERNELOFFSET in hex without a prefix,
 * most NUMBER()s in decimal (NUMBER(phys_base) is negative under KASLR), and a few NUMBER()s of
 * arm64 in hex with `0x`.
 */
import { NT_VMCOREINFO } from './elf/elf-constants.js';

export class VmcoreinfoText {
  private readonly fields = new Map<string, string>();

  /** Every `KEY=value` line, value trimmed; later lines win. */
  constructor(text: string) {
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) this.fields.set(line.slice(0, eq), line.slice(eq + 1).trim());
    }
  }

  /** The text of a VMCOREINFO note's desc. */
  static of(desc: Uint8Array): VmcoreinfoText {
    return new VmcoreinfoText(Buffer.from(desc.buffer, desc.byteOffset, desc.byteLength).toString('latin1'));
  }

  string(key: string): string | undefined {
    return this.fields.get(key);
  }

  /** A hex value, with or without `0x`; undefined when absent or not hex. */
  hex(key: string): bigint | undefined {
    const value = this.fields.get(key)?.replace(/^0x/i, '');
    return value !== undefined && /^[0-9a-f]+$/i.test(value) ? BigInt(`0x${value}`) : undefined;
  }

  /** A decimal value, possibly negative; undefined when absent or not decimal. */
  decimal(key: string): bigint | undefined {
    const value = this.fields.get(key);
    return value !== undefined && /^-?\d+$/.test(value) ? BigInt(value) : undefined;
  }

  /** Every key, in first-seen order. */
  keys(): IterableIterator<string> {
    return this.fields.keys();
  }
}

/** The bytes of a page `vmcoreinfoFormAt` looks at: a note's header and name, or the text's first key. */
export const VMCOREINFO_HEAD_BYTES = 24;
const OSRELEASE = [...'OSRELEASE='].map((c) => c.charCodeAt(0));
const NOTE_NAME = 'VMCOREINFO';

/**
 * Whether a page starting at `at` begins a VMCOREINFO copy as Linux keeps them (docs/vmcoreinfo-discovery.md
 * §2): the text (`OSRELEASE=` first), or the ELF note (namesz 11 and type 0 in the guest's byte order,
 * then "VMCOREINFO\0"). Needs VMCOREINFO_HEAD_BYTES from `at`.
 */
export function vmcoreinfoFormAt(bytes: Uint8Array, at: number, endian: 'little' | 'big'): 'note' | 'text' | undefined {
  if (bytes[at] === OSRELEASE[0] && OSRELEASE.every((byte, i) => bytes[at + i] === byte)) return 'text';
  const u32 = (offset: number): number => {
    const b = (i: number): number => bytes[at + offset + i]!;
    return (
      (endian === 'little'
        ? b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)
        : (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3)) >>> 0
    );
  };
  if (u32(0) !== NOTE_NAME.length + 1 || u32(8) !== NT_VMCOREINFO) return undefined;
  for (let i = 0; i < NOTE_NAME.length; i += 1) if (bytes[at + 12 + i] !== NOTE_NAME.charCodeAt(i)) return undefined;
  return bytes[at + 12 + NOTE_NAME.length] === 0 ? 'note' : undefined;
}
