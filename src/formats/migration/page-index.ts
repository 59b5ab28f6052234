/**
 * Where a RAM block's pages are in the stream, in memory that does not grow with what the
 * pages hold: one checkpoint per group of 512 pages (2 MiB of guest RAM), the stream offset of
 * the first record of that group. A stopped VM sends every page once, in ascending order
 * (docs/qemu-migration-stream.md §1), so a group's records follow its checkpoint; reading a group
 * re-parses that stretch of the stream. A page sent again later (a running VM's next pass)
 * goes to an override map, and the last record for a page wins.
 *
 * Cost: one map entry per 2 MiB group the stream holds (~2 MiB for a 64 GiB guest), plus
 * re-sent pages. A map, not an array sized by the block's length: that length comes from the
 * input, and a damaged one must not decide how much memory vmdump takes (found by fuzzing).
 */

/** A page's content: bytes at a file offset, or one repeated byte (a ZERO record). */
export type PageSource = { readonly kind: 'data'; readonly offset: number } | { readonly kind: 'fill'; readonly byte: number };

export const PAGES_PER_GROUP = 512;

export class PageIndex {
  private readonly checkpoints = new Map<number, number>();
  private readonly overrides = new Map<number, PageSource>();
  private lastPage = -1;

  constructor(readonly pageCount: number) {}

  /** Pass 1: a record for `page` starts at `recordOffset` (its be64 header) and holds `source`. */
  note(page: number, recordOffset: number, source: PageSource): void {
    if (page <= this.lastPage) {
      this.overrides.set(page, source);
      return;
    }
    const group = Math.floor(page / PAGES_PER_GROUP);
    if (!this.checkpoints.has(group)) this.checkpoints.set(group, recordOffset);
    this.lastPage = page;
  }

  /** Stream offset of the first record of `group`, or undefined when none of its pages was sent. */
  checkpoint(group: number): number | undefined {
    return this.checkpoints.get(group);
  }

  /** Bytes of stream from this group's checkpoint to the next group's, when both exist. */
  extent(group: number): number | undefined {
    const start = this.checkpoint(group);
    const next = this.checkpoint(group + 1);
    return start === undefined || next === undefined ? undefined : next - start;
  }

  override(page: number): PageSource | undefined {
    return this.overrides.size === 0 ? undefined : this.overrides.get(page);
  }

  get overrideCount(): number {
    return this.overrides.size;
  }
}
