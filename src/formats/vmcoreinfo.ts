/**
 * VMCOREINFO, the kernel's `KEY=value` text (docs/elf-vmcore.md §7.6): every layer that reads a
 * field goes through here. Linux prints SYMBOL()s and KERNELOFFSET in hex without a prefix,
 * most NUMBER()s in decimal (NUMBER(phys_base) is negative under KASLR), and a few NUMBER()s of
 * arm64 in hex with `0x`.
 */

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
