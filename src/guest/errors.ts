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

/** Where an error is: the file or range, the record, the byte offset (any of them). */
export interface ErrorPlace {
  /** A file, a RAM range's label, a field of a description. */
  readonly in?: string;
  /** The record or structure, e.g. "PT_LOAD 3", "page descriptor 12". */
  readonly record?: string;
  /** A byte offset in the file or stream being read or written. */
  readonly offset?: bigint | number;
}

function renderPlace(place: ErrorPlace): string {
  return [place.record, place.offset === undefined ? undefined : `at byte ${hex(place.offset)}`, place.in]
    .filter((part) => part !== undefined)
    .join(', ');
}

export class VmdumpError extends Error {
  override readonly name = 'VmdumpError';
  /** The place as data; `where` is its rendering. */
  readonly place: ErrorPlace | undefined;
  readonly where: string | undefined;
  constructor(
    readonly code: VmdumpErrorCode,
    message: string,
    where?: string | ErrorPlace,
    options?: { cause?: unknown },
  ) {
    const place = typeof where === 'string' ? { in: where } : where;
    const rendered = place === undefined ? undefined : renderPlace(place);
    super(rendered === undefined || rendered === '' ? message : `${message} (${rendered})`, options);
    this.place = place;
    this.where = rendered;
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
  ENOENT: 'no such file or directory',
  ECONNREFUSED: 'connection refused',
  EACCES: 'permission denied',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  EPIPE: 'broken pipe',
};

/** "no such file or directory (ENOENT)" from "ENOENT: no such file or directory, open '/x'" or "connect ENOENT /x". */
export function errnoText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.message !== 'string') return String((error as Error)?.message ?? error);
  const fsStyle = /^[A-Z0-9_]+: (.*?)(?:, \w+ '.*')?$/.exec(e.message);
  return `${fsStyle?.[1] ?? plainWords[e.code] ?? e.message} (${e.code})`;
}

/** The error a run ends with when its AbortSignal fires (SIGINT, SIGTERM, a caller's abort). */
export function cancelled(signal: AbortSignal): VmdumpError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
  return new VmdumpError('cancelled', `dump cancelled: ${why}`);
}
