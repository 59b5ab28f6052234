/**
 * Progress as the pipeline reports it, and the rate operator. Progress counts bytes the sink
 * has confirmed (the Writable's buffer excluded), in dump bytes: before any compression.
 */
// RxJS by module, not its index: the index loads every operator, 0.06 s of a 0.2 s small dump; these
// paths are in the package's exports map (its own classes, so Observables interoperate), pinned by the lock file.
import type { OperatorFunction } from 'rxjs';
import { Observable } from 'rxjs/internal/Observable';

export type DumpPhase = 'planned' | 'headers' | 'memory' | 'trailer' | 'committing' | 'done';

export interface DumpProgress {
  readonly phase: DumpPhase;
  readonly bytesWritten: number;
  readonly totalBytes: number;
  /** kdump-compressed dumps: pages placed so far and in all (zero pages included), and the compressed bytes written. */
  readonly pagesDone?: number;
  readonly pagesTotal?: number;
  readonly outputBytes?: number;
}

export interface RatedProgress extends DumpProgress {
  /** Over the last `windowMs`; 0 until two samples are apart in time. */
  readonly bytesPerSecond: number;
  readonly elapsedMs: number;
}

/**
 * Adds a rate over a sliding window. State lives per subscription, so two subscribers
 * each get their own window.
 */
export function withRate(
  windowMs = 2000,
  now: () => number = () => performance.now(),
): OperatorFunction<DumpProgress, RatedProgress> {
  return (source) =>
    new Observable<RatedProgress>((subscriber) => {
      const samples: { at: number; bytes: number }[] = [];
      const started = now();
      return source.subscribe({
        next(progress) {
          const at = now();
          samples.push({ at, bytes: progress.bytesWritten });
          while (samples.length > 2 && samples[0]!.at < at - windowMs) samples.shift();
          const first = samples[0]!;
          const span = (at - first.at) / 1000;
          const bytesPerSecond = span > 0 ? (progress.bytesWritten - first.bytes) / span : 0;
          subscriber.next({ ...progress, bytesPerSecond, elapsedMs: at - started });
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
    });
}
