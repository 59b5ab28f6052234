/**
 * The part of the callback `fs` API the file sinks use. Node's `fs` and memfs both provide it,
 * which is how the memfs sink is the file sink on another file system.
 */
type Callback<T = void> = (error: NodeJS.ErrnoException | null, value: T) => void;

export interface FileSystem {
  open(path: string, flags: string, mode: number, callback: Callback<number>): void;
  lstat(path: string, callback: Callback<{ isFile(): boolean; isSymbolicLink(): boolean }>): void;
  link(existing: string, created: string, callback: (error: NodeJS.ErrnoException | null) => void): void;
  /** position null: at the file position (sequential sinks); a number: there (the plain kdump file only). */
  write(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
    callback: Callback<number>,
  ): void;
  fsync(fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void;
  /** Sets the size of a file written with holes (a trailing hole is not part of the file until then). */
  ftruncate(fd: number, length: number, callback: (error: NodeJS.ErrnoException | null) => void): void;
  close(fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void;
  rename(from: string, to: string, callback: (error: NodeJS.ErrnoException | null) => void): void;
  unlink(path: string, callback: (error: NodeJS.ErrnoException | null) => void): void;
}

/** Promise form of one FileSystem call. */
export function call<T>(run: (callback: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value))));
}
export function callVoid(run: (callback: (error: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((error) => (error ? reject(error) : resolve())));
}
