import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Each file ends with a forced collection that fails on a leaked FileHandle (test/setup-leaks.ts).
    setupFiles: ['test/setup-leaks.ts'],
    execArgv: ['--expose-gc'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real readers and write multi-GiB sparse images; two cores.
    maxWorkers: 2,
  },
});
