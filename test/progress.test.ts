import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { withRate, type DumpProgress, type RatedProgress } from '../src/pipeline/progress.js';

describe('withRate', () => {
  it('computes bytes per second over a sliding window, per subscription', () => {
    let now = 0;
    const source = new Subject<DumpProgress>();
    const rated = source.pipe(withRate(1000, () => now));
    const first: RatedProgress[] = [];
    const second: RatedProgress[] = [];
    rated.subscribe((p) => first.push(p));
    const at = (ms: number, bytes: number) => {
      now = ms;
      source.next({ phase: 'memory', bytesWritten: bytes, totalBytes: 10e9 });
    };
    at(0, 0);
    at(500, 500e6); // 1 GB/s so far
    rated.subscribe((p) => second.push(p));
    at(1000, 1.5e9); // first: 1.5 GB over 1 s; second: only one sample yet
    at(2000, 2.0e9); // first: window drops t=0 and t=500: (2.0-1.5) GB over 1 s
    expect(first.map((p) => Math.round(p.bytesPerSecond / 1e6))).toEqual([0, 1000, 1500, 500]);
    expect(first.at(-1)!.elapsedMs).toBe(2000);
    expect(second.map((p) => Math.round(p.bytesPerSecond / 1e6))).toEqual([0, 500]);
  });
});
