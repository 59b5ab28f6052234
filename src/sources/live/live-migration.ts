/**
 * `--live`: the VM keeps running while QEMU migrates it into a socket vmdump listens on; QEMU
 * pauses it only for the final switchover, vmdump resumes it at once, and the vmcore is written
 * afterwards from the received stream (the saved-VM source). The pause is measured from QEMU's
 * own STOP and RESUME event timestamps.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmdumpError } from '../../guest/errors.js';
import type { GuestModel } from '../../guest/guest.js';
import { QmpClient, type QmpAddress, type QmpEvent } from '../qmp/qmp-client.js';
import { openSavedVmStream } from '../saved-vm/saved-vm-source.js';
import { prepareMigrationSettings, type MigrationSettings } from './migration-settings.js';
import type { LiveOptions } from './live-source.js';

export interface LiveMigrationGuest extends GuestModel {
  readonly wasRunning: boolean;
  /** How long QEMU kept the vCPUs stopped (STOP → RESUME), in milliseconds; undefined if it was not running. */
  readonly pausedMs: number | undefined;
}

const eventMs = (event: QmpEvent): number => (event.timestamp?.seconds ?? 0) * 1000 + (event.timestamp?.microseconds ?? 0) / 1000;

const cannotMigrate = (why: string): VmdumpError =>
  new VmdumpError(
    'bad-input',
    `this VM cannot be migrated, so --live cannot be used (${why}); run vmdump qmp without --live, which pauses the VM for the whole dump instead`,
  );

/** A device can block migration (e.g. a passed-through PCI device); QEMU lists why (query-migrate blocked-reasons, 6.0+). */
async function refuseIfBlocked(qmp: QmpClient): Promise<void> {
  const info = await qmp.execute<{ 'blocked-reasons'?: string[] }>('query-migrate');
  const reasons = info['blocked-reasons'] ?? [];
  if (reasons.length > 0) throw cannotMigrate(reasons.join('; '));
}

function explainMigrateError(error: unknown): never {
  const message = (error as Error).message;
  if (/block|disabled|cannot migrate|not migratable|non-migratable/i.test(message)) throw cannotMigrate(message);
  throw error;
}

export async function openLiveMigration(
  address: QmpAddress,
  options: LiveOptions & { signal?: AbortSignal } = {},
): Promise<LiveMigrationGuest> {
  const qmp = await QmpClient.connect(address, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  const workDir = fs.mkdtempSync(path.join(options.workDir ?? os.tmpdir(), 'vmdump-live-'));
  const socketPath = path.join(workDir, 'migration.sock');
  let wasRunning = false;
  let migrating = false;
  let settings: MigrationSettings | undefined;
  const server = net.createServer();
  try {
    wasRunning = (await qmp.execute<{ running: boolean }>('query-status')).running;
    await refuseIfBlocked(qmp);
    const connection = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
    settings = await prepareMigrationSettings(qmp);
    const stopped = qmp.waitForEvent('STOP', 3_600_000);
    stopped.catch(() => undefined);
    await qmp.execute('migrate', { uri: `unix:${socketPath}` }).catch(explainMigrateError);
    migrating = true;
    // QEMU may never connect (it cannot see vmdump's socket, e.g. from another mount namespace):
    // its migration then fails, and that, or a signal, must end the wait.
    const migration = waitForMigration(qmp, options.signal);
    migration.catch(() => undefined);
    const neverConnected = migration.then(() => {
      throw new VmdumpError('bad-input', `QEMU finished migrating without connecting to vmdump's socket ${socketPath}`);
    });
    neverConnected.catch(() => undefined);
    const guest = openSavedVmStream(
      await Promise.race([connection, neverConnected]),
      `live migration from ${qmp.where}`,
      options,
    );
    guest.catch(() => undefined);
    await migration;
    migrating = false;
    await settings.restore();
    let pausedMs: number | undefined;
    if (wasRunning) {
      const resumed = qmp.waitForEvent('RESUME');
      await qmp.execute('cont');
      pausedMs = eventMs(await resumed) - eventMs(await stopped);
    }
    const model = await guest;
    return { ...model, wasRunning, pausedMs };
  } catch (error) {
    if (migrating) await qmp.execute('migrate_cancel').catch(() => undefined);
    if (wasRunning) await resumeIfStopped(qmp);
    await settings?.restore().catch(() => undefined);
    throw error;
  } finally {
    server.close();
    qmp.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

async function waitForMigration(qmp: QmpClient, signal: AbortSignal | undefined): Promise<void> {
  for (;;) {
    signal?.throwIfAborted();
    const info = await qmp.execute<{ status: string; 'error-desc'?: string }>('query-migrate');
    if (info.status === 'completed') return;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new VmdumpError(
        'bad-input',
        `the live migration ${info.status}${info['error-desc'] === undefined ? '' : `: ${info['error-desc']}`}`,
      );
    }
    await sleep(20);
  }
}

async function resumeIfStopped(qmp: QmpClient): Promise<void> {
  const status = await qmp.execute<{ running: boolean }>('query-status').catch(() => undefined);
  if (status !== undefined && !status.running) await qmp.execute('cont').catch(() => undefined);
}
