/**
 * Where each page of a RAM block lives in the stream. A stopped VM sends every page once in
 * ascending order (qemu-migration-stream.md §1), so runs of like records compress the index
 * to a handful of entries; a page sent again (a running VM's later pass) goes to an override
 * map, and the last record for a page wins.
 */

/** A page's content: bytes at a file offset, or one repeated byte (a ZERO record). */
export type PageSource = { readonly kind: 'data'; readonly offset: number } | { readonly kind: 'fill'; readonly byte: number };

interface Run {
  readonly first: number;
  count: number;
  /** -1: data pages; 0..255: ZERO records with that fill byte. */
  readonly fill: number;
  readonly offset: number;
  /** Distance between consecutive data pages' payloads (the record header sits between them). */
  stride: number;
}

export class PageIndex {
  private readonly runs: Run[] = [];
  private readonly overrides = new Map<number, PageSource>();

  add(page: number, source: PageSource): void {
    const last = this.runs[this.runs.length - 1];
    if (last !== undefined && page < last.first + last.count) {
      this.overrides.set(page, source);
      return;
    }
    const fill = source.kind === 'fill' ? source.byte : -1;
    const offset = source.kind === 'data' ? source.offset : 0;
    if (last !== undefined && page === last.first + last.count && fill === last.fill) {
      if (fill >= 0) { last.count += 1; return; }
      const stride = offset - last.offset;
      if (last.count === 1 && stride > 0) last.stride = stride;
      if (last.offset + last.count * last.stride === offset) { last.count += 1; return; }
    }
    this.runs.push({ first: page, count: 1, fill, offset, stride: 0 });
  }

  /** undefined: the stream never sent this page. */
  lookup(page: number): PageSource | undefined {
    const override = this.overrides.get(page);
    if (override !== undefined) return override;
    let low = 0;
    let high = this.runs.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const run = this.runs[mid]!;
      if (page < run.first) high = mid - 1;
      else if (page >= run.first + run.count) low = mid + 1;
      else return run.fill >= 0 ? { kind: 'fill', byte: run.fill } : { kind: 'data', offset: run.offset + (page - run.first) * run.stride };
    }
    return undefined;
  }

  get runCount(): number { return this.runs.length; }
}
