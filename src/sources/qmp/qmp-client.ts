/**
 * A QMP client (docs/qemu-live-source.md §2): unix socket or TCP, greeting, capability negotiation,
 * one outstanding command at a time, events, timeouts. QMP serves one client per socket: a
 * second client is accepted by the kernel but gets no greeting, so a missing greeting within
 * the timeout is reported as "busy", not as a hang.
 */
import * as net from 'node:net';
import { VmdumpError, errnoText } from '../../guest/errors.js';

export type QmpAddress = { readonly path: string } | { readonly host: string; readonly port: number };

export interface QmpEvent {
  readonly event: string;
  readonly data?: unknown;
  readonly timestamp?: { seconds: number; microseconds: number };
}

export interface QmpOptions {
  /** For the greeting and for each command (default 10 s). */
  readonly timeoutMs?: number;
}

type Reply = { return: unknown } | { error: { class: string; desc: string } };

/** The longest QMP line vmdump holds (HMP `info mtree -f` of a big machine is well under 1 MiB). */
const MAX_LINE = 16 << 20;

const describe = (address: QmpAddress): string => ('path' in address ? address.path : `${address.host}:${address.port}`);

export class QmpClient {
  private buffer = '';
  /** The command awaiting its reply (commands run one at a time), with the id it was sent with. */
  private pending: { id: number; resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private closedError: Error | undefined;
  private readonly eventWaiters = new Set<{ name: string; resolve: (event: QmpEvent) => void; reject: (error: Error) => void }>();

  private constructor(
    private readonly socket: net.Socket,
    readonly where: string,
    private readonly timeoutMs: number,
  ) {}

  static async connect(address: QmpAddress, options: QmpOptions = {}): Promise<QmpClient> {
    const where = describe(address);
    const timeoutMs = options.timeoutMs ?? 10_000;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect('path' in address ? { path: address.path } : { host: address.host, port: address.port });
      s.once('connect', () => resolve(s));
      s.once('error', (error) =>
        reject(
          new VmdumpError('bad-input', `cannot connect to QMP at ${where}: ${errnoText(error)}`, undefined, { cause: error }),
        ),
      );
    });
    const client = new QmpClient(socket, where, timeoutMs);
    const greeting = client.nextMessage(
      timeoutMs,
      `QMP at ${where} sent no greeting within ${timeoutMs} ms: another client is probably connected (QMP serves one at a time)`,
    );
    socket.on('data', (data: Buffer) => client.receive(data.toString('utf8')));
    socket.on('close', () => client.closed(new VmdumpError('bad-input', `QMP connection to ${where} closed`)));
    socket.on('error', (error) =>
      client.closed(
        new VmdumpError('bad-input', `QMP connection to ${where} failed: ${errnoText(error)}`, undefined, { cause: error }),
      ),
    );
    try {
      const first = await greeting;
      if (!('QMP' in (first as object)))
        throw new VmdumpError('bad-input', `${where} does not speak QMP (first message: ${JSON.stringify(first).slice(0, 80)})`);
      await client.execute('qmp_capabilities');
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return client;
  }

  private greetingResolve: ((message: unknown) => void) | undefined;
  private greetingReject: ((error: Error) => void) | undefined;

  private nextMessage(timeoutMs: number, timeoutText: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new VmdumpError('bad-input', timeoutText)), timeoutMs);
      this.greetingResolve = (message) => {
        clearTimeout(timer);
        resolve(message);
      };
      this.greetingReject = (error) => {
        clearTimeout(timer);
        reject(error);
      };
    });
  }

  /**
   * Lines of JSON objects. Anything else ends the connection with a typed error: a line that is
   * not JSON, JSON that is not an object, or a line longer than MAX_LINE (the peer decides how
   * much it sends; it must not decide how much vmdump holds). Found by fuzzing a fake server.
   */
  private receive(text: string): void {
    if (this.closedError !== undefined) return;
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        message = undefined;
      }
      if (typeof message !== 'object' || message === null || Array.isArray(message)) {
        this.fail(`QMP at ${this.where} sent a line that is not a JSON object: ${line.slice(0, 80)}`);
        return;
      }
      this.dispatch(message as Record<string, unknown>);
    }
    if (this.buffer.length > MAX_LINE) this.fail(`QMP at ${this.where} sent a line longer than ${MAX_LINE} bytes`);
  }

  private fail(message: string): void {
    this.buffer = '';
    this.closed(new VmdumpError('bad-input', message));
    this.socket.destroy();
  }

  private dispatch(message: Record<string, unknown>): void {
    if (this.greetingResolve !== undefined) {
      const resolve = this.greetingResolve;
      this.greetingResolve = undefined;
      resolve(message);
    } else if (typeof message.event === 'string') {
      const event = message as unknown as QmpEvent;
      for (const waiter of this.eventWaiters) {
        if (waiter.name === event.event) {
          this.eventWaiters.delete(waiter);
          waiter.resolve(event);
        }
      }
    } else if (this.pending !== undefined && (message.id === undefined || message.id === this.pending.id)) {
      // QEMU echoes the id; a reply carrying another id answers a command that already timed out and is dropped.
      // A reply with no id (a peer that does not echo ids) answers the one command in flight.
      const { resolve } = this.pending;
      this.pending = undefined;
      resolve(message as unknown as Reply);
    }
  }

  private closed(error: Error): void {
    this.closedError ??= error;
    this.pending?.reject(this.closedError);
    this.pending = undefined;
    this.greetingReject?.(this.closedError);
    this.greetingResolve = undefined;
    this.greetingReject = undefined;
    for (const waiter of this.eventWaiters) waiter.reject(this.closedError);
    this.eventWaiters.clear();
  }

  /** Runs one command; commands queue behind each other. Rejects with QMP's error class and text. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: QmpOptions = {}): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closedError !== undefined) throw this.closedError;
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      const reply = await new Promise<Reply>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending = undefined;
          reject(new VmdumpError('bad-input', `QMP command ${command} got no answer from ${this.where} within ${timeoutMs} ms`));
        }, timeoutMs);
        const id = this.nextId++;
        this.pending = {
          id,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        this.socket.write(
          `${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`,
        );
      });
      if ('error' in reply) {
        const error = reply.error as Partial<{ desc: unknown; class: unknown }> | null;
        throw new VmdumpError('bad-input', `QMP ${command} failed: ${String(error?.desc)} (${String(error?.class)})`);
      }
      if (!('return' in reply))
        throw new VmdumpError('bad-input', `QMP ${command}: the answer from ${this.where} has neither "return" nor "error"`);
      return reply.return as T;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Resolves with the next event named `name` received from now on. */
  waitForEvent(name: string, timeoutMs = this.timeoutMs): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      if (this.closedError !== undefined) {
        reject(this.closedError);
        return;
      }
      const timer = setTimeout(() => {
        this.eventWaiters.delete(waiter);
        reject(new VmdumpError('bad-input', `no ${name} event from ${this.where} within ${timeoutMs} ms`));
      }, timeoutMs);
      // A closed connection ends the wait too: its timer must not keep the process alive (an unawaited waiter did, for an hour).
      const waiter = {
        name,
        resolve: (event: QmpEvent) => {
          clearTimeout(timer);
          resolve(event);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.eventWaiters.add(waiter);
    });
  }

  /** `human-monitor-command`: the HMP text output. */
  hmp(commandLine: string, options: QmpOptions = {}): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, options);
  }

  close(): void {
    this.closed(new VmdumpError('bad-input', `QMP connection to ${this.where} was closed by vmdump`));
    this.socket.end();
    this.socket.destroy();
  }
}
