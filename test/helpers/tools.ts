/**
 * Real programs as judges. Missing on a developer's machine: the test is skipped and says so
 * loudly. Under CI=true (.ci/run installs them) a missing program fails the test instead.
 */
import { spawnSync } from 'node:child_process';
import { it } from 'vitest';

/** Under CI (.ci/run exports CI=true) a missing judge fails its test instead of skipping it. */
export const inCi = process.env.CI === 'true';

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** `it` when `tool` is installed or under CI; otherwise `it.skip` with a warning naming the package. */
export function itWithTool(tool: string, debianPackage: string): ReturnType<typeof it.skipIf> {
  const available = hasTool(tool) || inCi;
  if (!available) {
    console.warn(
      `\n*** SKIPPING tests that need ${tool}: it is not installed (apt-get install ${debianPackage}). CI installs it. ***\n`,
    );
  }
  return it.skipIf(!available);
}

export function run(
  command: string,
  args: readonly string[],
  options: { input?: Buffer } = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    ...(options.input ? { input: options.input } : {}),
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
