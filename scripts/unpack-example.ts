/**
 * Unpacks the bundled saved VM (examples/tiny-q35.vm.state.br: the tiny 64-bit test guest on
 * q35, 64 MiB, 2 vCPUs, saved by QEMU 7.2 with `migrate "exec:cat > …"`) into a folder.
 *
 *   node dist/scripts/unpack-example.js DIR   → DIR/tiny-q35.vm.state
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repositoryRoot } from './repository-root.js';
import { brotliDecompressSync } from 'node:zlib';

export const EXAMPLE = path.join(repositoryRoot(), 'examples', 'tiny-q35.vm.state.br');

export function unpackExample(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'tiny-q35.vm.state');
  fs.writeFileSync(file, brotliDecompressSync(fs.readFileSync(EXAMPLE)));
  return file;
}

const target = process.argv[2];
if (target !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  process.stderr.write(`unpacked ${unpackExample(target)}\n`);
}
