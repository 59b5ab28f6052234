/**
 * gzip in front of another sink. zlib's write callback fires once it has consumed the input,
 * and it stops consuming while the inner sink is slow, so backpressure reaches the producer.
 */
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type { Sink } from './sink.js';

export interface GzipOptions {
  /** zlib level 1-9, default 6 (gzip's own default). */
  readonly level?: number;
}

export function gzipSink(inner: Sink, options: GzipOptions = {}): Sink {
  return {
    description: `gzip → ${inner.description}`,
    async open() {
      const target = await inner.open();
      const gzip = createGzip({ level: options.level ?? 6, chunkSize: 256 << 10 });
      const drained = pipeline(gzip, target.writable);
      drained.catch(() => undefined); // observed in commit/abort; avoid an unhandled rejection meanwhile
      return {
        writable: gzip,
        async commit() {
          await drained;
          await target.commit();
        },
        async abort() {
          gzip.destroy();
          await target.abort();
        },
      };
    },
  };
}
