/** What both writers share: observing a stream of items, and turning any failure into one VmdumpError. */
import { VmdumpError, cancelled, isVmdumpError } from '../guest/errors.js';

export { cancelled };

export async function* tap<T>(source: AsyncIterable<T>, see: (item: T) => void): AsyncGenerator<T> {
  for await (const item of source) {
    see(item);
    yield item;
  }
}

const outputErrors: Readonly<Record<string, string>> = {
  EPIPE: 'the output was closed before the dump was complete (EPIPE)',
  ENOSPC: 'no space left on the output device (ENOSPC)',
  EDQUOT: 'disk quota exceeded on the output device (EDQUOT)',
  EFBIG: 'the output file grew beyond what the file system allows (EFBIG)',
  EIO: 'I/O error on the output (EIO)',
  ECONNRESET: 'the output connection was reset (ECONNRESET)',
};

export function describeFailure(
  error: unknown,
  sink: { readonly description: string },
  signal: AbortSignal | undefined,
): VmdumpError {
  if (signal?.aborted) return cancelled(signal);
  if (isVmdumpError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const known = code === undefined ? undefined : outputErrors[code];
  if (known !== undefined || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EBADF' || code === 'EACCES') {
    const message = known ?? `cannot write the output: ${(error as Error).message}`;
    return new VmdumpError('output', message, sink.description, { cause: error });
  }
  return new VmdumpError('internal', `unexpected failure: ${(error as Error).message ?? String(error)}`, undefined, {
    cause: error,
  });
}
