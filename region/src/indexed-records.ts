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
 * A page of an index, in one step (an id added meanwhile cannot shift it). KEYS[1] the index.
 * ARGV[1] order, ARGV[2] the id to start after ('' none), ARGV[3] scores below this ('' none),
 * ARGV[4] scores from this ('' none), ARGV[5] offset, ARGV[6] count. Ranks are counted in the
 * page's order; the window covers ranks [first, last). Nil when the `after` id is not indexed.
 */
const INDEX_PAGE: LuaScript = {
  name: 'bambaIndexPage',
  keys: 1,
  lua: `
local key, desc = KEYS[1], ARGV[1] == 'desc'
local first, last = 0, redis.call('ZCARD', key)
if ARGV[3] ~= '' or ARGV[4] ~= '' then
  local max = ARGV[3] == '' and '+inf' or ('(' .. ARGV[3])
  local min = ARGV[4] == '' and '-inf' or ARGV[4]
  local ahead = 0
  if desc and ARGV[3] ~= '' then ahead = redis.call('ZCOUNT', key, ARGV[3], '+inf') end
  if not desc and ARGV[4] ~= '' then ahead = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[4]) end
  first, last = ahead, ahead + redis.call('ZCOUNT', key, min, max)
end
if ARGV[2] ~= '' then
  local rank
  if desc then rank = redis.call('ZREVRANK', key, ARGV[2]) else rank = redis.call('ZRANK', key, ARGV[2]) end
  if not rank then return false end
  if rank + 1 > first then first = rank + 1 end
end
local from = first + tonumber(ARGV[5])
local to = math.min(last, from + tonumber(ARGV[6])) - 1
if to < from then return {} end
if desc then return redis.call('ZREVRANGE', key, from, to) end
return redis.call('ZRANGE', key, from, to)
`,
};

/**
 * Ids of the index from just after `after` (from the start when null), newest first for `desc`,
 * `count` at most, skipping `start`; null when `after` is not in the index. With a creation-time
 * window (unix seconds, exclusive), only the ids created inside it (also after `after`).
 */
export async function indexPage(redis: RegionRedis, indexKey: string, query: { after: string | null; order: 'asc' | 'desc'; window?: CreatedWindow }, start: number, count: number): Promise<string[] | null> {
  const window = query.window;
  // Scores are creation times in ms: before S seconds is below S*1000, after S is from (S+1)*1000.
  const below = window?.createdBefore == null ? '' : String(window.createdBefore * 1000);
  const from = window?.createdAfter == null ? '' : String((window.createdAfter + 1) * 1000);
  return (await runScript(redis, INDEX_PAGE, [indexKey], [query.order, query.after ?? '', below, from, start, count])) as string[] | null;
}
