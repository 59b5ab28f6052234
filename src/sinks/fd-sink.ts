/** Standard output or any already-open descriptor. vmdump never closes a descriptor it did not open. */
import { FdWritable } from './fd-writable.js';
import type { Sink } from './sink.js';

export function fdSink(fd: number, description = fd === 1 ? 'stdout' : `fd ${fd}`): Sink {
  return {
    description,
    open: async (options) => ({
      writable: new FdWritable(fd, { recycle: options?.recycle }),
      commit: async () => undefined,
      abort: async () => undefined,
    }),
  };
}

export const stdoutSink = (): Sink => fdSink(1);
