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
import { writableSink, type Sink } from '../src/sinks/sink.js';
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
  it('reads nothing before the sink pulls: not while it opens, and only a bounded read-ahead while it takes nothing', async () => {
    const log: ReadLog = { bytes: 0, calls: 0 };
    const guest = guestOf({ ram: [patternRange(0n, 64n * BigInt(MiB), log)] });
    const plan = planDump(guest);
    expect(log.calls).toBe(0); // planning reads nothing
    let openNow: (() => void) | undefined;
    const opened = new Promise<void>((resolve) => (openNow = resolve));
    let held = 0;
    // A destination that takes a while to open, then accepts bytes but never confirms the first chunk.
    const stuck = new Writable({
      highWaterMark: MiB,
      write(_chunk: Buffer, _encoding, _callback) {
        held += 1;
      },
    });
    const sink: Sink = {
      description: 'stuck',
      open: async () => (await opened, { writable: stuck, commit: async () => undefined, abort: async () => undefined }),
    };
    const controller = new AbortController();
    const run = writeDump(plan, sink, { signal: controller.signal });
    await sleep(50);
    expect(log.calls).toBe(0); // the run has started; the sink is not open, so nothing is read
    openNow!();
    await sleep(200);
    expect(held).toBe(1);
    // The headers, the chunk the sink holds, one in the readable's buffer, two read ahead: never the whole guest.
    expect(log.bytes).toBeGreaterThan(0);
    expect(log.bytes).toBeLessThanOrEqual(4 * DEFAULT_CHUNK_SIZE);
    controller.abort(new Error('test over'));
    await expect(run.result).rejects.toMatchObject({ code: 'cancelled' });
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

  it('a RAM file that shrinks mid-dump: a short read from the real file read, naming the offset (never zeros)', async () => {
    const image = path.join(dir, 'shrinking.img');
    fs.writeFileSync(image, Buffer.alloc(16 * MiB, 0x5a));
    fs.writeFileSync(
      path.join(dir, 'shrinking.json'),
      JSON.stringify({ arch: 'x86_64', ram: [{ address: '0x0', size: `${16 * MiB}`, file: 'shrinking.img' }] }),
    );
    const guest = await openRawImage(path.join(dir, 'shrinking.json'));
    try {
      const slow = slowWritable(5);
      let truncated = false;
      const shrinking = new Writable({
        highWaterMark: MiB,
        write(chunk: Buffer, encoding, callback) {
          // Once the first megabytes are through, the file loses its second half.
          if (!truncated && slow.accepted >= 2 * MiB) {
            truncated = true;
            fs.truncateSync(image, 8 * MiB);
          }
          slow.write(chunk, encoding, callback);
        },
      });
      const run = writeDump(planDump(guest), writableSink(shrinking), { chunkSize: MiB });
      await expect(run.result).rejects.toMatchObject({
        code: 'short-read',
        message: expect.stringMatching(
          /^the file ended at offset 0x800000, \d+ bytes short \(ram\[0\] \(shrinking\.img at 0x0\)\)$/,
        ) as unknown,
      });
      expect(truncated).toBe(true);
    } finally {
      await guest.close();
    }
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
