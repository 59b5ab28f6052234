/**
 * One entry for writing any prepared dump (transforms/prepare-dump.ts) into a destination, and
 * the destination a path names, chosen the way the CLI chooses it: so a library caller who
 * makes the CLI's request gets the CLI's bytes.
 */
import * as fs from 'node:fs';
import { VmdumpError } from '../guest/errors.js';
import { digestSink, type DigestSink } from '../sinks/digest-sink.js';
import { fdSink } from '../sinks/fd-sink.js';
import { fileSink, placedFileSink } from '../sinks/file-sink.js';
import { gzipSink } from '../sinks/gzip-sink.js';
import type { Sink } from '../sinks/sink.js';
import type { PreparedDump } from '../transforms/prepare-dump.js';
import { writeDump, type DumpRun, type WriteDumpOptions } from './write-dump.js';
import { writeKdump, type KdumpDestination, type KdumpRun, type WriteKdumpOptions } from './write-kdump.js';
import type { Destination } from './write-records.js';

export type AnyDumpRun = ({ readonly format: 'elf' } & DumpRun) | ({ readonly format: 'kdump' } & KdumpRun);

/**
 * Starts writing. An ELF dump goes front to back into a sequential sink; a kdump dump goes plain
 * into a positional sink (a file) or flattened into a sequential one (a pipe, gzip, a Writable).
 */
export function startDump(
  prepared: PreparedDump,
  destination: Destination,
  options: WriteDumpOptions & WriteKdumpOptions = {},
): AnyDumpRun {
  if (prepared.format === 'kdump') {
    const kdump: KdumpDestination =
      destination.kind === 'positional'
        ? { kind: 'plain', sink: destination.sink }
        : { kind: 'flattened', sink: destination.sink };
    return { format: 'kdump', ...writeKdump(prepared.plan, kdump, options) };
  }
  if (destination.kind !== 'sequential') {
    throw new VmdumpError(
      'usage',
      'an ELF dump is written front to back: give it a sequential sink (fileSink, fdSink, gzipSink, a Writable)',
    );
  }
  return { format: 'elf', ...writeDump(prepared.plan, destination.sink, options) };
}

export interface OutputOptions {
  /** Compress the whole output with gzip (a kdump dump is then flattened). */
  readonly gzip?: boolean;
  /** kdump: the flattened form even into a regular file. */
  readonly flattened?: boolean;
  readonly fsync?: boolean;
  /** Leave long zero runs of a new regular file as holes (default true; the bytes read the same). */
  readonly sparse?: boolean;
  /** Replace an existing file. */
  readonly force?: boolean;
  /** Take a SHA-256 of the bytes as written (read back for the plain kdump file). */
  readonly checksum?: boolean;
}

export interface OutputDestination {
  readonly destination: Destination;
  /** The digest of the bytes written, once the run has committed; undefined for the plain kdump file (read it back). */
  readonly digest?: DigestSink;
}

/** A FIFO or socket cannot take out-of-order writes; /dev/null and block devices can. */
export function isSequentialPath(output: string): boolean {
  const stat = fs.statSync(output, { throwIfNoEntry: false });
  return stat !== undefined && (stat.isFIFO() || stat.isSocket());
}

/**
 * Where `output` (a path, or `-` / undefined for standard output) takes `prepared`'s bytes: a
 * kdump dump plain into a file, flattened wherever the bytes must go in order (standard output,
 * a pipe, gzip) or when asked; an ELF dump front to back.
 */
export function outputDestination(
  output: string | undefined,
  prepared: PreparedDump,
  options: OutputOptions = {},
): OutputDestination {
  const toStdout = output === undefined || output === '-';
  const sequential =
    prepared.format === 'elf' || toStdout || options.gzip === true || options.flattened === true || isSequentialPath(output);
  if (!sequential) {
    return {
      destination: {
        kind: 'positional',
        sink: placedFileSink(output, { fsync: options.fsync ?? false, overwrite: options.force ?? false }),
      },
    };
  }
  const base: Sink = toStdout
    ? fdSink(1)
    : fileSink(output, { fsync: options.fsync ?? false, overwrite: options.force ?? false, sparse: options.sparse ?? true });
  const digest = options.checksum === true ? digestSink(base) : undefined;
  const inner = digest ?? base;
  return {
    destination: { kind: 'sequential', sink: options.gzip === true ? gzipSink(inner) : inner },
    ...(digest === undefined ? {} : { digest }),
  };
}
