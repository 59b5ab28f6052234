/**
 * The one byte-identity check. `cmp` alone is not enough as its stdout is read: GNU cmp reports
 * a file that is a prefix of the other ("EOF on …") and a missing file on stderr. Here both files
 * must exist, have the same size, and `cmp` must exit 0; a failure names the first differing
 * offset.
 */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

export function expectSameFile(actual: string, expected: string): void {
  expect(fs.existsSync(actual), `${actual} does not exist`).toBe(true);
  expect(fs.existsSync(expected), `${expected} does not exist`).toBe(true);
  const [a, b] = [fs.statSync(actual).size, fs.statSync(expected).size];
  expect(a, `${actual} has ${a} bytes, ${expected} has ${b}`).toBe(b);
  const cmp = spawnSync('cmp', [actual, expected], { encoding: 'utf8' });
  expect(cmp.status, `${actual} and ${expected} differ: ${cmp.stdout.trim()}${cmp.stderr.trim()}`).toBe(0);
}
