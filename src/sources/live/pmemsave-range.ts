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
  ) {}

  private begin(): Promise<number> {
    if (this.closed) throw new VmdumpError('cancelled', 'the VM is being released: no more pmemsave', this.label);
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
   * next bytes in order can be read; reads asked for ahead (the dump reads ahead) wait their turn.
   */
  read(offset: bigint, into: Uint8Array): Promise<void> {
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

  /** A pmemsave of just this span into a file: no pass is started (one may not be running). */
  async readSpan(offset: bigint, into: Uint8Array): Promise<void> {
    if (this.command !== undefined)
      throw new VmdumpError('internal', `pmemsave is streaming this range: no other read until its pass ends`, this.label);
    await this.readOnce(offset, into);
  }

  private async readOnce(offset: bigint, into: Uint8Array): Promise<void> {
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
