/**
 * Real programs as judges. Missing on a developer's machine: the test is skipped and says so
 * loudly. Under CI=true (.ci/run exports it and installs them) a missing program fails the test.
 * `npm run test:fast` (VMDUMP_TESTS=fast) leaves out the tests that boot QEMU, and says so once.
 */
import { spawnSync } from 'node:child_process';
import { it } from 'vitest';

/** Under CI a missing judge fails its test instead of skipping it. */
export const inCi = process.env.CI === 'true';
/** The edit-test loop's tier: no QEMU boots. */
export const fastTier = process.env.VMDUMP_TESTS === 'fast';

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const bootsQemu = (tool: string): boolean => tool.startsWith('qemu-system-');

/** Whether a suite may boot `qemu` (a qemu-system binary) here: installed, or required under CI; never in the fast tier. */
export function mayBootQemu(qemu: string): boolean {
  return !fastTier && (inCi || hasTool(qemu));
}
let fastNoticeShown = false;

/**
 * `it` when every tool is installed (or under CI); otherwise `it.skip` with a warning naming the
 * missing packages. A test that needs several programs names them all.
 */
export function itWithTools(tools: readonly (readonly [tool: string, debianPackage: string])[]): ReturnType<typeof it.skipIf> {
  if (fastTier && tools.some(([tool]) => bootsQemu(tool))) {
    if (!fastNoticeShown) console.warn('\n*** test:fast: the tests that boot QEMU are left out (npm test runs them) ***\n');
    fastNoticeShown = true;
    return it.skipIf(true);
  }
  const missing = tools.filter(([tool]) => !hasTool(tool));
  const available = missing.length === 0 || inCi;
  if (!available) {
    const names = missing.map(([tool]) => tool).join(', ');
    const packages = missing.map(([, pkg]) => pkg).join(' ');
    console.warn(`\n*** SKIPPING tests that need ${names}: not installed (apt-get install ${packages}). CI installs them. ***\n`);
  }
  return it.skipIf(!available);
}

/** `itWithTools` for one tool. */
export function itWithTool(tool: string, debianPackage: string): ReturnType<typeof it.skipIf> {
  return itWithTools([[tool, debianPackage]]);
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
