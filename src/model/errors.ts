/**
 * One error class for everything vmdump reports, with a closed set of codes. The code
 * decides the CLI exit status (README "Exit codes"); `where` names the record, file or
 * byte offset the error is about, so a message reads like "... (in PT_LOAD #3 at byte 0x1d8)".
 */
export type VmdumpErrorCode =
  /** The command line or API options are wrong. */
  | 'usage'
  /** The guest description or source data is missing, malformed or inconsistent. */
  | 'bad-input'
  /** A source delivered fewer bytes than it promised. */
  | 'short-read'
  /** The requested dump cannot be represented (e.g. an ELF32 offset above 4 GiB). */
  | 'unrepresentable'
  /** The destination could not be opened or written (EACCES, ENOSPC, EPIPE ...). */
  | 'output'
  /** The run was cancelled through its AbortSignal. */
  | 'cancelled'
  /** vmdump broke its own plan: a bug. */
  | 'internal';

export class VmdumpError extends Error {
  override readonly name = 'VmdumpError';
  constructor(
    readonly code: VmdumpErrorCode,
    message: string,
    readonly where?: string,
    options?: { cause?: unknown },
  ) {
    super(where === undefined ? message : `${message} (${where})`, options);
  }
}

export function isVmdumpError(error: unknown): error is VmdumpError {
  return error instanceof VmdumpError;
}

/** `0x1d8`-style rendering used in every message that names an address or offset. */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** Wording for codes whose Node message is just "connect ECONNREFUSED 127.0.0.1:1" (sockets). */
const plainWords: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory', ECONNREFUSED: 'connection refused', EACCES: 'permission denied',
  ECONNRESET: 'connection reset', ETIMEDOUT: 'timed out', EHOSTUNREACH: 'host unreachable', EPIPE: 'broken pipe',
};

/** "no such file or directory (ENOENT)" from "ENOENT: no such file or directory, open '/x'" or "connect ENOENT /x". */
export function errnoText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.message !== 'string') return String((error as Error)?.message ?? error);
  const fsStyle = /^[A-Z0-9_]+: (.*?)(?:, \w+ '.*')?$/.exec(e.message);
  return `${fsStyle?.[1] ?? plainWords[e.code] ?? e.message} (${e.code})`;
}
