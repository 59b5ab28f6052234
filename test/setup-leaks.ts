/**
 * Every test file ends by collecting garbage and failing if Node had to close a FileHandle that
 * vmdump or a test left open ("Closing file descriptor N on garbage collection"): handles are
 * closed explicitly, on every path.
 */
import { afterAll, expect } from 'vitest';

const leaks: string[] = [];
process.on('warning', (warning) => {
  if (/Closing file descriptor \d+ on garbage collection|Closing a FileHandle object on garbage collection/.test(warning.message))
    leaks.push(warning.message);
});

afterAll(async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
  gc?.();
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(leaks, 'file handles left for the garbage collector to close').toEqual([]);
});
