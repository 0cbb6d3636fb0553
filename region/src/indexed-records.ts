/**
 * Records kept as one HASH each plus a per-tenant index (a ZSET of ids by creation time, in the
 * tenant's slot): uploaded files and batches. Writing the record and indexing it is one Lua
 * script; listing reads a page of the index after a given id, as OpenAI's `after` cursor does.
 */
import type { CreatedWindow } from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import { runScript, type LuaScript } from './scripts.js';

/**
 * Write a record and index it. KEYS[1] the record's hash, KEYS[2] the tenant's index.
 * ARGV[1] id, ARGV[2] score (created-at ms), ARGV[3..] field/value pairs.
 */
const PUT_INDEXED_RECORD: LuaScript = {
  name: 'bambaPutIndexedRecord',
  keys: 2,
  lua: `
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`,
};

export async function putIndexedRecord(redis: RegionRedis, recordKey: string, indexKey: string, id: string, createdAtMs: number, fields: Record<string, string>): Promise<void> {
  await runScript(redis, PUT_INDEXED_RECORD, [recordKey, indexKey], [id, createdAtMs, ...Object.entries(fields).flat()]);
}

/**
 * Ids of the index from just after `after` (from the start when null), newest first for `desc`,
 * `count` at most; null when `after` is not in the index. With a creation-time window (unix
 * seconds, exclusive; never with `after`), only the ids created inside it.
 */
export async function indexPage(redis: RegionRedis, indexKey: string, query: { after: string | null; order: 'asc' | 'desc'; window?: CreatedWindow }, start: number, count: number): Promise<string[] | null> {
  const window = query.window;
  if (window && (window.createdBefore !== null || window.createdAfter !== null)) {
    // Scores are creation times in ms: before S seconds is below S*1000, after S is from (S+1)*1000.
    const max = window.createdBefore === null ? '+inf' : `(${window.createdBefore * 1000}`;
    const min = window.createdAfter === null ? '-inf' : String((window.createdAfter + 1) * 1000);
    return query.order === 'desc'
      ? redis.zrevrangebyscore(indexKey, max, min, 'LIMIT', start, count)
      : redis.zrangebyscore(indexKey, min, max, 'LIMIT', start, count);
  }
  let from = start;
  if (query.after) {
    const rank = query.order === 'desc' ? await redis.zrevrank(indexKey, query.after) : await redis.zrank(indexKey, query.after);
    if (rank === null) return null;
    from += rank + 1;
  }
  return query.order === 'desc' ? redis.zrevrange(indexKey, from, from + count - 1) : redis.zrange(indexKey, String(from), String(from + count - 1));
}
