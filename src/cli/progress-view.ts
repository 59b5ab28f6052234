/** Renders progress on stderr: a bar on a terminal, JSON lines for machines, or nothing. */
import type { Observable } from 'rxjs';
import { auditTime } from 'rxjs/internal/operators/auditTime';
import { endWith } from 'rxjs/internal/operators/endWith';
import type { RatedProgress } from '../pipeline/progress.js';
import { formatBytes, formatRate } from './format.js';

export type ProgressMode = 'bar' | 'json' | 'none';

/** Resolves once the view has written its last line (throttled values are flushed first). */
export function showProgress(
  progress$: Observable<RatedProgress>,
  mode: ProgressMode,
  write: (text: string) => void,
): Promise<void> {
  return new Promise((resolve) => {
    if (mode === 'none') {
      resolve();
      return;
    }
    if (mode === 'json') {
      progress$.pipe(auditTime(250)).subscribe({
        next: (p) =>
          write(
            `${JSON.stringify({ event: 'progress', ...p, bytesPerSecond: Math.round(p.bytesPerSecond), elapsedMs: Math.round(p.elapsedMs) })}\n`,
          ),
        error: () => resolve(),
        complete: () => resolve(),
      });
      return;
    }
    let last: RatedProgress | undefined;
    const endLine = (): void => {
      if (last !== undefined) write('\n');
      resolve();
    };
    progress$.pipe(auditTime(100), endWith(undefined)).subscribe({
      next: (p) => {
        if (p === undefined) {
          endLine();
          return;
        }
        last = p;
        write(`\r${bar(p)}\x1b[K`);
      },
      error: endLine,
    });
  });
}

function bar(p: RatedProgress): string {
  const width = 30;
  const fraction = p.totalBytes === 0 ? 1 : p.bytesWritten / p.totalBytes;
  const filled = Math.round(fraction * width);
  const eta = p.bytesPerSecond > 0 ? ` ETA ${Math.ceil((p.totalBytes - p.bytesWritten) / p.bytesPerSecond)} s` : '';
  const pages =
    p.pagesTotal === undefined ? '' : ` (${p.pagesDone ?? 0} / ${p.pagesTotal} pages → ${formatBytes(p.outputBytes ?? 0)})`;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
    `${formatBytes(p.bytesWritten)} / ${formatBytes(p.totalBytes)}${pages} ${formatRate(p.bytesPerSecond)}${eta} ${p.phase}`
  );
}
