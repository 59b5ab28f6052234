/**
 * Guest-physical bytes through QMP `pmemsave` into a FIFO vmdump reads (docs/qemu-live-source.md §6).
 * pmemsave blocks QEMU's main loop until its last byte is read, and QEMU's open() of the FIFO
 * blocks until a reader exists, so the FIFO is opened while the command runs and read strictly
 * in order. Abandoning a transfer opens (if needed) and closes the read end: QEMU's next write
 * fails with EPIPE and the monitor is free again.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VmdumpError, hex } from '../../guest/errors.js';
import type { QmpClient } from '../qmp/qmp-client.js';

const DAY_MS = 86_400_000;

function openFifo(file: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(file, 'r', (error, fd) => (error ? reject(error) : resolve(fd))));
}

/**
 * The pass in progress among a VM's transfers. QEMU runs one pmemsave at a time and each blocks
 * its main loop until its last byte is read, so a transfer's pass is read to its end before any
 * other transfer asks QEMU for anything (a dump that skips the end of a range would hang otherwise).
 */
export class PassHandOver {
  current: PmemsaveTransfer | undefined;

  async before(next: PmemsaveTransfer): Promise<void> {
    const running = this.current;
    if (running !== undefined && running !== next) await running.drain();
  }
}

/** Bytes read and dropped at a time when a pass skips forward. */
const SKIP_CHUNK = 1 << 20;

export class PmemsaveTransfer {
  private fd: number | undefined;
  private opening: Promise<number> | undefined;
  private command: Promise<unknown> | undefined;
  private position = 0n;
  /** Set once the source is closed: nothing more is read. */
  private closed = false;
  /** Where the next read of a pass starts, counting reads still waiting their turn. */
  private queuedEnd = 0n;
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private finished = false;
  private spans = 0;

  constructor(
    private readonly qmp: QmpClient,
    private readonly start: bigint,
    private readonly size: bigint,
    private readonly fifo: string,
    readonly label: string,
    private readonly passes: PassHandOver = new PassHandOver(),
  ) {}

  private async begin(): Promise<number> {
    await this.passes.before(this);
    if (this.closed) throw new VmdumpError('cancelled', 'the VM is being released: no more pmemsave', this.label);
    this.passes.current = this;
    const made = spawnSync('mkfifo', ['-m', '600', this.fifo], { encoding: 'utf8' });
    if (made.status !== 0) throw new VmdumpError('bad-input', `cannot create a FIFO at ${this.fifo}: ${made.stderr.trim()}`);
    this.command = this.qmp.execute(
      'pmemsave',
      { val: Number(this.start), size: Number(this.size), filename: this.fifo },
      { timeoutMs: DAY_MS },
    );
    this.command.catch((error: Error) => {
      this.failure ??= error;
    });
    this.opening = openFifo(this.fifo);
    return this.opening;
  }

  /**
   * Reads `into.length` bytes at `offset`. A pass over the range (the dump, the search for
   * VMCOREINFO) reads in order, through one streaming pmemsave; a read elsewhere outside a pass
   * (page tables, notes) is a pmemsave of just that span into a file. During a pass, only the
   * next bytes in order can be read; reads asked for ahead (the dump reads ahead) wait their turn,
   * and a read further on (a dump that leaves pages out) has the bytes in between read and dropped.
   */
  read(offset: bigint, into: Uint8Array): Promise<void> {
    if (offset > this.queuedEnd && this.queuedEnd > 0n) this.skip(offset - this.queuedEnd);
    if (offset !== this.queuedEnd) {
      if (this.command === undefined && this.queuedEnd === this.position) return this.readOnce(offset, into);
      return Promise.reject(
        new VmdumpError(
          'internal',
          `pmemsave delivers bytes in order: asked for ${hex(offset)}, next is ${hex(this.queuedEnd)}`,
          this.label,
        ),
      );
    }
    this.queuedEnd += BigInt(into.length);
    // After the read before it, and failing with it: the FIFO holds the bytes in between.
    const next = this.tail.then(() => this.readInOrder(offset, into));
    this.tail = next;
    return next;
  }

  private async readInOrder(offset: bigint, into: Uint8Array): Promise<void> {
    this.fd ??= await (this.opening ?? this.begin());
    let done = 0;
    while (done < into.length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(this.fd!, into, done, into.length - done, null, (error, bytes) => (error ? reject(error) : resolve(bytes))),
      );
      if (n === 0) {
        const why = this.failure?.message ?? 'QEMU closed the FIFO early';
        throw new VmdumpError(
          'bad-input',
          `pmemsave ended ${into.length - done} bytes short at ${hex(this.start + offset + BigInt(done))}: ${why}`,
          this.label,
        );
      }
      done += n;
    }
    this.position += BigInt(into.length);
    if (this.position === this.size) await this.finish();
  }

  /** Queues `length` bytes of the pass to be read and dropped. */
  private skip(length: bigint): void {
    const scratch = new Uint8Array(Number(length < BigInt(SKIP_CHUNK) ? length : BigInt(SKIP_CHUNK)));
    for (let left = length; left > 0n;) {
      const part = left < BigInt(scratch.length) ? scratch.subarray(0, Number(left)) : scratch;
      const at = this.queuedEnd;
      this.queuedEnd += BigInt(part.length);
      this.tail = this.tail.then(() => this.readInOrder(at, part));
      left -= BigInt(part.length);
    }
  }

  /** Reads a pass in progress to its end (dropping what nobody asked for), so QEMU's monitor is free. */
  async drain(): Promise<void> {
    if (this.queuedEnd > 0n && this.queuedEnd < this.size) this.skip(this.size - this.queuedEnd);
    await this.tail.catch(() => undefined);
  }

  /** A pmemsave of just this span into a file: no pass is started (one may not be running). */
  async readSpan(offset: bigint, into: Uint8Array): Promise<void> {
    if (this.command !== undefined)
      throw new VmdumpError('internal', `pmemsave is streaming this range: no other read until its pass ends`, this.label);
    await this.readOnce(offset, into);
  }

  private async readOnce(offset: bigint, into: Uint8Array): Promise<void> {
    await this.passes.before(this);
    if (this.closed) throw new VmdumpError('cancelled', 'the VM is being released: no more pmemsave', this.label);
    // Each span its own file: two spans in flight must not share one.
    const file = `${this.fifo}.span${(this.spans += 1)}`;
    try {
      await this.qmp.execute('pmemsave', { val: Number(this.start + offset), size: into.length, filename: file });
      const bytes = fs.readFileSync(file);
      if (bytes.length !== into.length)
        throw new VmdumpError(
          'short-read',
          `pmemsave wrote ${bytes.length} of ${into.length} bytes at ${hex(this.start + offset)}`,
          this.label,
        );
      into.set(bytes);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /**
   * A completed pass leaves the transfer as new: a later pass (the dump after the search for
   * VMCOREINFO) streams again from the start, and reads elsewhere meanwhile are spans.
   */
  private async finish(): Promise<void> {
    this.finished = true;
    if (this.passes.current === this) this.passes.current = undefined;
    this.release();
    await this.command;
    this.command = undefined;
    this.opening = undefined;
    this.position = 0n;
    this.queuedEnd = 0n;
    this.finished = false;
  }

  /** Closes the FIFO's descriptor exactly once, even if the close itself fails. */
  private release(): void {
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (fd !== undefined) fs.closeSync(fd);
    } finally {
      fs.rmSync(this.fifo, { force: true });
    }
  }

  /** Ends an unfinished transfer without leaving QEMU blocked on the FIFO. */
  async abandon(): Promise<void> {
    // No transfer may start after this: a read still on its way (a kdump batch that crosses into
    // this range as the dump fails) would set QEMU writing into a FIFO nobody reads, its monitor
    // blocked, and the VM never resumed.
    this.closed = true;
    if (this.command === undefined || this.finished) return;
    this.finished = true;
    if (this.fd === undefined) {
      // QEMU may still be waiting in open(): give it a reader, then close it.
      this.fd =
        (await Promise.race([
          this.opening!,
          this.command.then(
            () => undefined,
            () => undefined,
          ),
        ])) ?? undefined;
      if (this.fd === undefined) {
        // pmemsave ended without opening the FIFO; our own blocked open needs a writer to return.
        try {
          fs.closeSync(fs.openSync(this.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
        } catch {
          /* no reader left */
        }
        this.fd = await this.opening!.catch(() => undefined);
      }
    }
    this.release();
    await this.command.catch(() => undefined);
  }
}

export function fifoPath(dir: string, index: number): string {
  return path.join(dir, `range-${index}.fifo`);
}
