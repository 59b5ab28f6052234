/**
 * Unpacks the bundled saved VM (examples/tiny-q35.vm.state.br: the tiny 64-bit test guest on
 * q35, 64 MiB, 2 vCPUs, saved by QEMU 7.2 with `migrate "exec:cat > …"`) into a folder.
 *
 *   node dist/scripts/unpack-example.js DIR   → DIR/tiny-q35.vm.state
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

/** The repository root: the nearest folder above this file with a package.json (works from src and dist). */
function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root');
    dir = parent;
  }
  return dir;
}

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
