/** VMCOREINFO note text as `KEY=value` lines; every layer that reads a field goes through here. */

/** Every `KEY=value` line, value trimmed; later lines win. */
export function vmcoreinfoFields(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) map.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  return map;
}

/** One field of a VMCOREINFO note's desc, trimmed; undefined when absent. */
export function vmcoreinfoField(desc: Uint8Array, key: string): string | undefined {
  return vmcoreinfoFields(new TextDecoder('latin1').decode(desc)).get(key);
}
