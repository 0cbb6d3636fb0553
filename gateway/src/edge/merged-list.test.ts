// Paging a list merged from several regions, against regions simulated the way a region lists
// (its own order by creation ms then id; `after` in its own list; a creation-time window in
// seconds): every item comes exactly once, in one order, whatever the page size, with ties in
// the same second within and across regions.
import { describe, expect, it } from 'vitest';
import { mergePages, windowAfter, type ListCursor, type ListedItem } from './merged-list.js';

const REGIONS = ['us', 'eu', 'ap'];
const rank = (region: string) => REGIONS.indexOf(region);

interface Stored { id: string; ms: number }

/** A region's list call, as the region's index answers it (`ignoresWindow`: as a build without windows would). */
function regionPage(items: Stored[], query: Record<string, string>, order: 'asc' | 'desc', limit: number, ignoresWindow = false) {
  if (ignoresWindow) query = query.after ? { after: query.after } : {};
  const sorted = [...items].sort((a, b) => a.ms - b.ms || (a.id < b.id ? -1 : 1));
  if (order === 'desc') sorted.reverse();
  let from = 0;
  if (query.after) from = sorted.findIndex((item) => item.id === query.after) + 1;
  const inWindow = sorted.slice(from).filter((item) =>
    (query.created_before === undefined || item.ms < Number(query.created_before) * 1000) &&
    (query.created_after === undefined || item.ms >= (Number(query.created_after) + 1) * 1000));
  const data: ListedItem[] = inWindow.slice(0, limit).map((item) => ({ id: item.id, created_at: Math.floor(item.ms / 1000) }));
  return { data, hasMore: inWindow.length > limit };
}

/** Every page of the merged list, as a client pages it with `after` = the last id it got. */
function pageAll(stores: Record<string, Stored[]>, order: 'asc' | 'desc', limit: number, ignoresWindow: ReadonlySet<string> = new Set()): string[] {
  const seen: string[] = [];
  let cursor: ListCursor | null = null;
  for (let pageCount = 0; pageCount < 100; pageCount++) {
    const pages = REGIONS.map((region) => ({ region, ...regionPage(stores[region]!, windowAfter(region, cursor, order, rank), order, limit, ignoresWindow.has(region)) }));
    const merged = mergePages(pages, order, limit, rank, cursor);
    seen.push(...merged.data.map((item) => item.id));
    if (!merged.hasMore) return seen;
    const last = merged.data.at(-1)!;
    cursor = { id: last.id, region: last.id.split('-')[0]!, createdAt: last.created_at };
  }
  throw new Error('the pages did not end');
}

describe('a list merged from regions', () => {
  // Seconds 1..3 with several items per second in one region and across regions.
  const stores: Record<string, Stored[]> = {
    us: [{ id: 'us-a', ms: 1_100 }, { id: 'us-b', ms: 1_100 }, { id: 'us-c', ms: 2_900 }, { id: 'us-d', ms: 3_000 }],
    eu: [{ id: 'eu-a', ms: 1_050 }, { id: 'eu-b', ms: 2_000 }, { id: 'eu-c', ms: 2_999 }],
    ap: [{ id: 'ap-a', ms: 2_500 }, { id: 'ap-b', ms: 3_500 }],
  };
  const everyId = Object.values(stores).flat().map((item) => item.id).sort();

  it('pages oldest first in exactly the reverse order of newest first', () => {
    expect(pageAll(stores, 'asc', 100)).toEqual(pageAll(stores, 'desc', 100).reverse());
  });

  for (const order of ['desc', 'asc'] as const) {
    it(`pages ${order} through every item once, in the same order at every page size`, () => {
      const whole = pageAll(stores, order, 100);
      expect([...whole].sort()).toEqual(everyId);
      // Newest (or oldest) second first; within a second, by region, then the region's own order.
      const seconds = whole.map((id) => Math.floor(Object.values(stores).flat().find((item) => item.id === id)!.ms / 1000));
      expect(seconds).toEqual([...seconds].sort((a, b) => (order === 'desc' ? b - a : a - b)));
      for (const limit of [1, 2, 3, 4]) expect(pageAll(stores, order, limit)).toEqual(whole);
    });
  }

  it('never sends an item twice when a region ignores its window (an older build)', () => {
    const whole = pageAll(stores, 'desc', 100);
    // Page by page it may miss such a region's older items, but it ends, and repeats nothing.
    const paged = pageAll(stores, 'desc', 2, new Set(['ap']));
    expect(new Set(paged).size).toBe(paged.length);
    expect(paged.every((id) => whole.includes(id))).toBe(true);
  });

  it('says has_more when a region has more than it sent, even if the merged page is short', () => {
    const merged = mergePages([{ region: 'us', data: [{ id: 'us-a', created_at: 1 }], hasMore: true }, { region: 'eu', data: [], hasMore: false }], 'desc', 5, rank);
    expect(merged).toEqual({ data: [{ id: 'us-a', created_at: 1 }], hasMore: true });
  });
});
