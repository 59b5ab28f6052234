/**
 * Run once around the whole suite.
 * - Before: the CLI tests run dist/, the in-process tests import src/; they must be the same code,
 *   so a source newer than its build stops the run (npm test and npm run test:fast build first).
 * - Tests keep their files in one scratch folder per run (tempDir() in test/helpers/machines.ts
 *   makes its folders there and removes them when the file ends; a file whose tests were all
 *   skipped never runs its clean-up, so the teardown removes the scratch folder).
 * - After: $TMPDIR must hold nothing of vmdump's (a `vmdump…` or `.vmdump…` entry) that it did not
 *   hold before the first test: what vmdump itself creates there (spools, the live source's work
 *   folders, partial files) must be gone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's scratch folder for test files. */
    scratch: string;
  }
}

const root = path.join(import.meta.dirname, '..');

function staleBuild(folder: string): string | undefined {
  for (const entry of fs.readdirSync(path.join(root, folder), { withFileTypes: true })) {
    const source = path.join(folder, entry.name);
    if (entry.isDirectory()) {
      const stale = staleBuild(source);
      if (stale !== undefined) return stale;
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      const built = path.join(root, 'dist', source.replace(/\.ts$/, '.js'));
      if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(path.join(root, source)).mtimeMs) return source;
    }
  }
  return undefined;
}

const ours = (name: string): boolean => name.startsWith('vmdump') || name.startsWith('.vmdump');
const listing = (): Set<string> => new Set(fs.readdirSync(os.tmpdir()).filter(ours));

export default function setup(project: TestProject): () => void {
  const stale = staleBuild('src');
  if (stale !== undefined) {
    throw new Error(`dist/ is older than ${stale}: run npm run build (npm test and npm run test:fast build first)`);
  }
  const before = listing();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmdump-tests-'));
  project.provide('scratch', scratch);
  return () => {
    fs.rmSync(scratch, { recursive: true, force: true });
    const left = [...listing()].filter((name) => !before.has(name));
    if (left.length > 0) throw new Error(`the test run left ${left.length} entries in ${os.tmpdir()}: ${left.join(', ')}`);
  };
}
