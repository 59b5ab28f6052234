/**
 * A SHA-256 of the bytes as they go to the inner sink (after gzip, when gzip is inside). The
 * chunk is hashed before it is passed on, so the inner sink may still recycle it.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sink } from './sink.js';

export interface DigestSink extends Sink {
  /** The hex digest; valid once the dump is committed. */
  digest(): string;
}

export function digestSink(inner: Sink): DigestSink {
  const hash = createHash('sha256');
  let digest: string | undefined;
  return {
    description: inner.description,
    digest: () => digest ?? hash.copy().digest('hex'),
    async open(options) {
      const target = await inner.open(options);
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      });
      const drained = pipeline(hashing, target.writable);
      drained.catch(() => undefined); // observed in commit/abort
      return {
        writable: hashing,
        async commit() {
          await drained;
          digest = hash.digest('hex');
          await target.commit();
        },
        async abort() {
          hashing.destroy();
          await target.abort();
        },
      };
    },
  };
}
