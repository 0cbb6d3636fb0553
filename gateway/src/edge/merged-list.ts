/**
 * One list of a tenant's files or batches from every region, for the edge. Each region lists its
 * own items by creation time; the edge merges their pages in one order every page agrees on:
 * `created_at` (seconds), then the region's place in the edge's region list, then the region's
 * own order (`asc`; `desc` is exactly its reverse). A client pages with `after` = the last id it got, as with OpenAI: that item's own
 * region continues after it, and the others are asked for a creation-time window that starts
 * where that item stands in the merged order (a region cannot place another region's id).
 */
import type { ListQuery } from '@bamba/shared';
import { z } from 'zod';

export const regionListSchema = z.object({
  data: z.array(z.looseObject({ id: z.string(), created_at: z.number().int() })),
  has_more: z.boolean(),
});
export type ListedItem = z.infer<typeof regionListSchema>['data'][number];

/** The item a client's `after` names: where the next page starts. */
export interface ListCursor {
  id: string;
  region: string;
  createdAt: number;
}

/**
 * What `region` is asked for (besides limit and filters) so its page starts just after `cursor`
 * in the merged order. `rank`: a region's place in the edge's list.
 */
export function windowAfter(region: string, cursor: ListCursor | null, order: ListQuery['order'], rank: (region: string) => number): Record<string, string> {
  if (!cursor) return {};
  if (region === cursor.region) return { after: cursor.id };
  // This region's items of the cursor's second come after the cursor when the region follows the
  // cursor's in this order (ranked after it ascending, before it descending).
  const tiesAfter = order === 'asc' ? rank(region) > rank(cursor.region) : rank(region) < rank(cursor.region);
  if (order === 'desc') return { created_before: String(tiesAfter ? cursor.createdAt + 1 : cursor.createdAt) };
  const after = tiesAfter ? cursor.createdAt - 1 : cursor.createdAt;
  return after < 0 ? {} : { created_after: String(after) };
}

export interface RegionPage {
  region: string;
  data: ListedItem[];
  hasMore: boolean;
}

/**
 * The first `limit` items of the regions' pages in the merged order. Each page is the start of
 * its region's items after the cursor, so the first `limit` of their union are the merged list's.
 */
export function mergePages(pages: RegionPage[], order: ListQuery['order'], limit: number, rank: (region: string) => number, cursor: ListCursor | null = null): { data: ListedItem[]; hasMore: boolean } {
  const sign = order === 'desc' ? -1 : 1;
  // What a region sent from before the cursor is dropped (one that ignored its window, say an
  // older build): the client saw it already, and sending it again could page for ever.
  const pastCursor = (item: ListedItem, region: string) => {
    if (!cursor || region === cursor.region) return true;
    const byTime = sign * (item.created_at - cursor.createdAt);
    return byTime > 0 || (byTime === 0 && sign * (rank(region) - rank(cursor.region)) > 0);
  };
  const all = pages.flatMap((page) => page.data.filter((item) => pastCursor(item, page.region)).map((item, index) => ({ item, rank: rank(page.region), index })));
  // A page is in its region's own order for `order` already: its index breaks the last ties.
  all.sort((a, b) => sign * (a.item.created_at - b.item.created_at) || sign * (a.rank - b.rank) || a.index - b.index);
  return { data: all.slice(0, limit).map((entry) => entry.item), hasMore: all.length > limit || pages.some((page) => page.hasMore) };
}
