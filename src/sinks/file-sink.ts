/**
 * A file written under a temporary name in the destination's folder (so the rename cannot
 * cross file systems), mode 0600 because dumps hold the guest's secrets, optionally fsynced,
 * and renamed over the destination only after the last byte. On failure the temporary file
 * is removed and an existing destination is left untouched.
 *
 * A destination that exists and is not a regular file (/dev/null, a FIFO, a tape) is written
 * in place: renaming over a device node would replace it with a plain file. An existing file is
 * replaced only with `overwrite` (the CLI's --force): otherwise the finished file is linked into
 * place, which fails rather than clobbers if the name appeared meanwhile. A symbolic link at the
 * destination is refused: vmdump never writes through one.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { VmdumpError, errnoText } from '../guest/errors.js';
import { FdWritable } from './fd-writable.js';
import { call, callVoid, type FileSystem } from './fs-api.js';
import type { PlacedSink, Sink, SinkOpenOptions } from './sink.js';

export interface FileSinkOptions {
  /** fsync the file before renaming it into place (and the folder after). */
  readonly fsync?: boolean;
  /** Another file system (memfs in tests); default node:fs. */
  readonly fileSystem?: FileSystem;
  /** Default 0o600. */
  readonly mode?: number;
  /** Replace an existing regular file (default: refuse). */
  readonly overwrite?: boolean;
  /**
   * Leave long runs of zeros as holes (default true): the file reads the same, byte for byte, and
   * occupies fewer blocks. Only a file vmdump creates; a device written in place gets every byte.
   */
  readonly sparse?: boolean;
}

/** The name a dump has while it is being written; never mistaken for a finished dump. */
export function partialName(destination: string): string {
  const dir = path.posix.dirname(destination);
  return path.posix.join(dir, `.${path.posix.basename(destination)}.${randomBytes(4).toString('hex')}.vmdump-partial`);
}

export function fileSink(destination: string, options: FileSinkOptions = {}): Sink {
  return {
    description: destination,
    async open(openOptions?: SinkOpenOptions) {
      const fileSystem = options.fileSystem ?? fs;
      const target = await openDestination(destination, options);
      return {
        writable: new FdWritable(target.fd, {
          fileSystem,
          recycle: openOptions?.recycle,
          sparse: target.created && options.sparse !== false,
        }),
        commit: target.commit,
        abort: target.abort,
      };
    },
  };
}

/**
 * The plain kdump file (docs/kdump-compressed.md §8): the project's only positional writer. Its
 * parts are written where they belong, out of order (descriptors after the data they point
 * at), with the same temporary name, mode and commit as the sequential file sink. Holes it
 * skips read as zeros. A destination that cannot seek (a FIFO) fails with ESPIPE.
 */
export function placedFileSink(destination: string, options: FileSinkOptions = {}): PlacedSink {
  return {
    description: destination,
    async open() {
      const fileSystem = options.fileSystem ?? fs;
      const target = await openDestination(destination, options);
      const write = async (bytes: Uint8Array, position: bigint): Promise<void> => {
        // Positions are exact in a double below 2^53 (8 PiB), past any file a kdump plan makes.
        const at = Number(position);
        for (let done = 0; done < bytes.length;) {
          done += await call<number>((cb) => fileSystem.write(target.fd, bytes, done, bytes.length - done, at + done, cb));
        }
      };
      return { write, commit: target.commit, abort: target.abort };
    },
  };
}

interface OpenDestination {
  readonly fd: number;
  /** A new regular file (empty, at offset 0), not a device or FIFO written in place. */
  readonly created: boolean;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Refuses links and (without overwrite) existing files; opens a device in place, anything else as a temporary file. */
async function openDestination(destination: string, options: FileSinkOptions): Promise<OpenDestination> {
  const fileSystem = options.fileSystem ?? fs;
  const existing = await classify(fileSystem, destination);
  if (existing === 'symlink') {
    throw new VmdumpError(
      'output',
      `${destination} is a symbolic link; vmdump does not write through links (name the target, or use -o - for standard output)`,
    );
  }
  if (existing === 'special') return openInPlace(fileSystem, destination);
  if (existing === 'file' && options.overwrite !== true)
    throw new VmdumpError('output', `${destination} already exists; use --force to replace it`);
  const temporary = partialName(destination);
  const fd = await call<number>((cb) => fileSystem.open(temporary, 'wx', options.mode ?? 0o600, cb)).catch(
    (error: NodeJS.ErrnoException) => {
      throw new VmdumpError('output', `cannot create ${destination}: ${errnoText(error)}`, undefined, { cause: error });
    },
  );
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      await callVoid((cb) => fileSystem.close(fd, cb));
    }
  };
  return {
    fd,
    created: true,
    async commit() {
      if (options.fsync === true) await callVoid((cb) => fileSystem.fsync(fd, cb));
      await close();
      if (options.overwrite === true) {
        await callVoid((cb) => fileSystem.rename(temporary, destination, cb));
      } else {
        await callVoid((cb) => fileSystem.link(temporary, destination, cb)).catch((error: NodeJS.ErrnoException) => {
          throw new VmdumpError('output', `cannot put the dump at ${destination}: ${errnoText(error)}`, undefined, {
            cause: error,
          });
        });
        await callVoid((cb) => fileSystem.unlink(temporary, cb));
      }
      if (options.fsync === true && fileSystem === fs) await syncDirectory(path.dirname(destination));
    },
    async abort() {
      await close().catch(() => undefined);
      await callVoid((cb) => fileSystem.unlink(temporary, cb)).catch(() => undefined);
    },
  };
}

/** What the destination name is now, without following a link. */
async function classify(fileSystem: FileSystem, destination: string): Promise<'absent' | 'file' | 'special' | 'symlink'> {
  try {
    const stat = await call<{ isFile(): boolean; isSymbolicLink(): boolean }>((cb) => fileSystem.lstat(destination, cb));
    return stat.isSymbolicLink() ? 'symlink' : stat.isFile() ? 'file' : 'special';
  } catch {
    return 'absent'; // absent (the usual case) or unreadable: creating the temporary file reports it
  }
}

/** Devices and FIFOs: nothing to rename or remove; a partial write cannot be mistaken for a file. */
async function openInPlace(fileSystem: FileSystem, destination: string): Promise<OpenDestination> {
  const fd = await call<number>((cb) => fileSystem.open(destination, 'w', 0o600, cb)).catch((error: NodeJS.ErrnoException) => {
    throw new VmdumpError('output', `cannot open ${destination}: ${errnoText(error)}`, undefined, { cause: error });
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      await callVoid((cb) => fileSystem.close(fd, cb));
    }
  };
  return { fd, created: false, commit: close, abort: () => close().catch(() => undefined) };
}

/** Makes the rename itself durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
