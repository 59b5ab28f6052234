/**
 * What `--live` changes on the VM's migration settings, and puts back (docs/qemu-live-source.md
 * §10): vmdump reads a plain stream of whole pages and answers nothing on a return path, so every
 * capability that changes the RAM encoding, needs a second channel or a reply from the
 * destination is turned off for the migration; the bandwidth cap is lifted. Whatever was changed
 * is restored afterwards, so the VM's next real migration runs as its owner set it up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { QmpClient } from '../qmp/qmp-client.js';

/** Capabilities a stream into vmdump cannot have on (those this QEMU knows; older ones lack some). */
const OFF_FOR_VMDUMP: readonly string[] = [
  'xbzrle',
  'compress',
  'multifd',
  'mapped-ram',
  'postcopy-ram',
  'postcopy-preempt',
  'return-path',
  'switchover-ack',
  'x-ignore-shared',
  'zero-blocks',
  'dirty-bitmaps',
  'background-snapshot',
  'x-colo',
];

/** No cap: a cap slows the pre-copy, and the switchover would wait for it. */
const UNCAPPED = 107_374_182_400;

export interface MigrationSettings {
  /** Capabilities turned off for vmdump (their owner had them on). */
  readonly turnedOff: readonly string[];
  /** Puts back what was changed; safe to call twice. */
  restore(): Promise<void>;
}

export async function prepareMigrationSettings(qmp: QmpClient): Promise<MigrationSettings> {
  const capabilities = await qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
  const turnedOff = capabilities.filter((c) => c.state && OFF_FOR_VMDUMP.includes(c.capability)).map((c) => c.capability);
  const parameters = await qmp.execute<{ 'max-bandwidth'?: number }>('query-migrate-parameters');
  const bandwidth = parameters['max-bandwidth'];
  let restored = false;
  const restore = async (): Promise<void> => {
    if (restored) return;
    restored = true;
    await migrationEnded(qmp);
    if (turnedOff.length > 0)
      await qmp.execute('migrate-set-capabilities', {
        capabilities: turnedOff.map((capability) => ({ capability, state: true })),
      });
    if (bandwidth !== undefined) await qmp.execute('migrate-set-parameters', { 'max-bandwidth': bandwidth });
  };
  if (turnedOff.length > 0)
    await qmp.execute('migrate-set-capabilities', {
      capabilities: turnedOff.map((capability) => ({ capability, state: false })),
    });
  await qmp.execute('migrate-set-parameters', { 'max-bandwidth': UNCAPPED });
  return { turnedOff, restore };
}

/** Settings cannot change while a migration runs or is being cancelled: wait (a few seconds at most) for it to end. */
async function migrationEnded(qmp: QmpClient): Promise<void> {
  const running = ['setup', 'active', 'pre-switchover', 'device', 'wait-unplug', 'cancelling', 'postcopy-active'];
  for (let waited = 0; waited < 10_000; waited += 20) {
    const { status } = await qmp.execute<{ status?: string }>('query-migrate');
    if (status === undefined || !running.includes(status)) return;
    await sleep(20);
  }
}
