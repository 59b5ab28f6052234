/** Hex goldens: "7f 45 4c 46 | 02 01" → bytes ('|' and line breaks are for the reader). */
export function hexBytes(text: string): Uint8Array {
  const digits = text.replace(/[|\s]/g, '');
  if (digits.length % 2 !== 0) throw new Error(`odd hex digit count in golden: ${text}`);
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').replace(/(..)/g, '$1 ').trim();
}
