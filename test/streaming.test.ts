/**
 * The stream itself: nothing is read before the consumer pulls, a slow sink parks the producer
 * (bytes in flight stay under a fixed bound on a multi-GiB sparse image), cancellation stops
 * the source, and a fault at byte N surfaces as a coded error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { VmdumpError } from '../src/guest/errors.js';
import type { RamRange } from '../src/guest/guest.js';
import { openRawImage } from '../src/sources/raw/raw-image.js';
import { DEFAULT_CHUNK_SIZE } from '../src/transforms/encode/record-stream.js';
import { writeDump } from '../src/pipeline/write-dump.js';
import { writableSink } from '../src/sinks/sink.js';
import { planDump } from '../src/transforms/plan/dump-plan.js';
import { guestOf, patternRange, type ReadLog } from './helpers/guests.js';
import { tempDir } from './helpers/machines.js';

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const MiB = 1 << 20;

/** A Writable that takes `delayMs` per chunk and counts what it has accepted. */
function slowWritable(delayMs: number): Writable & { accepted: number } {
  const sink = new Writable({
    highWaterMark: MiB,
    write(chunk: Buffer, _enc, callback) {
      setTimeout(() => {
        sink.accepted += chunk.length;
        callback();
      }, delayMs);
    },
  }) as Writable & { accepted: number };
  sink.accepted = 0;
  return sink;
}

/** Wraps a guest's ranges so every read is counted. */
function counted(ram: readonly RamRange[], log: ReadLog): RamRange[] {
  return ram.map((r) => ({
    ...r,
    read: async (offset, into) => {
      await r.read(offset, into);
      log.bytes += into.length;
      log.calls += 1;
    },
  }));
}

describe('backpressure', () => {
  it('reads nothing before the sink pulls, and nothing at all for a plan that is never written', async () => {
    const log: ReadLog = { bytes: 0, calls: 0 };
    const guest = guestOf({ ram: [patternRange(0n, 64n * BigInt(MiB), log)] });
    const plan = planDump(guest);
    await sleep(20);
    expect(log.calls).toBe(0);
    expect(plan.totalSize).toBeGreaterThan(64 * MiB);
  });

  it('keeps bytes in flight under a fixed bound while a slow sink drains a 6 GiB sparse image', async () => {
    const image = path.join(dir, 'sparse.img');
    fs.writeFileSync(image, 'start of RAM');
    fs.truncateSync(image, 6 * 1024 * MiB);
    fs.writeFileSync(
      path.join(dir, 'sparse.json'),
      JSON.stringify({
        arch: 'x86_64',
        ram: [{ address: '0x0', size: `${6 * 1024 * MiB}`, file: 'sparse.img' }],
      }),
    );
    const guest = await openRawImage(path.join(dir, 'sparse.json'));
    const log: ReadLog = { bytes: 0, calls: 0 };
    const slow = slowWritable(2);
    const controller = new AbortController();
    const run = writeDump(planDump({ ...guest, ram: counted(guest.ram, log) }), writableSink(slow), {
      signal: controller.signal,
    });
    let maxInFlight = 0;
    const watch = setInterval(() => {
      maxInFlight = Math.max(maxInFlight, log.bytes - slow.accepted);
    }, 1);
    while (slow.accepted < 48 * MiB) await sleep(10);
    const acceptedAtAbort = slow.accepted;
    controller.abort(new Error('enough'));
    await expect(run.result).rejects.toMatchObject({ code: 'cancelled' });
    clearInterval(watch);
    await guest.close();
    // At most: one chunk being read ahead, one handed on and queued in the readable, one in the
    // sink's buffer, one being written, and one between the source's await and its yield.
    expect(maxInFlight).toBeLessThanOrEqual(5 * DEFAULT_CHUNK_SIZE);
    // Cancelling stops the source: nothing beyond the in-flight bound was read past what the sink took.
    expect(log.bytes - acceptedAtAbort).toBeLessThanOrEqual(6 * DEFAULT_CHUNK_SIZE);
  });
});

describe('cancellation and faults', () => {
  it('an abort before the first byte opens nothing and reads nothing', async () => {
    const log: ReadLog = { bytes: 0, calls: 0 };
    const controller = new AbortController();
    controller.abort(new Error('user said no'));
    let opened = false;
    const sink = {
      description: 'never',
      seekable: false as const,
      open: async () => {
        opened = true;
        throw new Error('opened');
      },
    };
    const run = writeDump(planDump(guestOf({ ram: [patternRange(0n, 4096n, log)] })), sink, { signal: controller.signal });
    await expect(run.result).rejects.toThrow('dump cancelled: user said no');
    expect([opened, log.calls]).toEqual([false, 0]);
  });

  it('a source that fails at byte N ends the run with its coded error and the progress stream errors too', async () => {
    const failing: RamRange = {
      ...patternRange(0n, 8n * BigInt(MiB)),
      read: async (offset, into) => {
        if (offset >= 3n * BigInt(MiB)) throw new VmdumpError('short-read', 'the image ended early', 'range 0');
        into.fill(1);
      },
    };
    const run = writeDump(planDump(guestOf({ ram: [failing] })), writableSink(slowWritable(0)));
    const progressError = new Promise((resolve) => run.progress$.subscribe({ error: resolve }));
    await expect(run.result).rejects.toMatchObject({ code: 'short-read', message: 'the image ended early (range 0)' });
    await expect(progressError).resolves.toBeInstanceOf(VmdumpError);
  });

  it('a sink that fails surfaces as an output error', async () => {
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const run = writeDump(planDump(guestOf({ ram: [patternRange(0n, 4n * BigInt(MiB))] })), writableSink(broken, 'the pipe'));
    await expect(run.result).rejects.toMatchObject({
      code: 'output',
      message: expect.stringMatching(/output was closed.*EPIPE.*the pipe/),
    });
  });
});

describe('progress', () => {
  it('reports phases in order, never exceeds the total, and ends at exactly the planned size', async () => {
    const plan = planDump(guestOf({ ram: [patternRange(0n, 16n * BigInt(MiB))] }), { layout: 'qemu' });
    const run = writeDump(plan, writableSink(slowWritable(0)));
    const seen: { phase: string; bytes: number }[] = [];
    run.progress$.subscribe((p) => seen.push({ phase: p.phase, bytes: p.bytesWritten }));
    const summary = await run.result;
    const phases = seen.map((s) => s.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['planned', 'headers', 'memory', 'trailer', 'committing', 'done']);
    expect(seen.every((s, i) => s.bytes <= Number(plan.totalSize) && (i === 0 || s.bytes >= seen[i - 1]!.bytes))).toBe(true);
    expect(seen.at(-1)!.bytes).toBe(Number(plan.totalSize));
    expect(summary.bytesWritten).toBe(Number(plan.totalSize));
  });
});
