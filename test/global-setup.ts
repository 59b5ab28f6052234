/**
 * Run once around the whole suite: after the last test, $TMPDIR must hold nothing of vmdump's
 * (a `vmdump…` or `.vmdump…` entry) that it did not hold before the first one. Every test
 * cleans up after itself; this is the check that they do.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

const ours = (name: string): boolean => name.startsWith('vmdump') || name.startsWith('.vmdump');
const listing = (): Set<string> => new Set(fs.readdirSync(os.tmpdir()).filter(ours));

export default function setup(): () => void {
  const before = listing();
  return () => {
    const left = [...listing()].filter((name) => !before.has(name));
    if (left.length > 0) throw new Error(`the test run left ${left.length} entries in ${os.tmpdir()}: ${left.join(', ')}`);
  };
}
