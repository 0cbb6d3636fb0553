/**
 * What each tenant holds in a region: its live sessions and the bytes of their latest
 * snapshots (which are never evicted), so one tenant cannot fill Redis. Kept beside the session
 * records in the tenant's own slot; updated after each session change (a crash between the two
 * leaves at most one session's figures stale until it changes or expires again). The region-wide
 * live-session count (for status pages) follows the same changes in its own key and slot.
 */
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';
import { runScript, type LuaScript } from './scripts.js';

/**
 * Drop expired sessions from a tenant's usage. Shared by the scripts below.
 * KEYS[1] sessions zset, KEYS[2] bytes hash (field 'total' = sum). ARGV[1] now ms.
 */
const FORGET_EXPIRED = `
local function forgetExpired(sessions, bytes, now)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', sessions, '-inf', now)) do
    local held = tonumber(redis.call('HGET', bytes, id) or '0')
    if held > 0 then redis.call('HINCRBY', bytes, 'total', -held) end
    redis.call('HDEL', bytes, id)
  end
  redis.call('ZREMRANGEBYSCORE', sessions, '-inf', now)
end
`;

/**
 * Count a new session against its tenant, unless the tenant holds `limit` already.
 * KEYS[1] sessions, KEYS[2] bytes. ARGV[1] now ms, ARGV[2] session id, ARGV[3] expiry ms, ARGV[4] limit.
 * Returns 1 (admitted) or 0 (at the limit).
 */
const ADMIT_SESSION: LuaScript = {
  name: 'bambaTenantAdmitSession',
  keys: 2,
  lua: `${FORGET_EXPIRED}
forgetExpired(KEYS[1], KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
`,
};

/**
 * A session committed a turn: its expiry moves and its snapshot bytes change.
 * KEYS[1] sessions, KEYS[2] bytes. ARGV[1] session id, ARGV[2] expiry ms, ARGV[3] bytes.
 */
const RENEW_SESSION: LuaScript = {
  name: 'bambaTenantRenewSession',
  keys: 2,
  lua: `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
redis.call('HINCRBY', KEYS[2], 'total', tonumber(ARGV[3]) - held)
if tonumber(ARGV[3]) > 0 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) else redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
`,
};

/** A session is gone. KEYS[1] sessions, KEYS[2] bytes. ARGV[1] session id. */
const FORGET_SESSION: LuaScript = {
  name: 'bambaTenantForgetSession',
  keys: 2,
  lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held > 0 then redis.call('HINCRBY', KEYS[2], 'total', -held) end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`,
};

/**
 * A session lives until ARGV[3] in the region's count, whose expired entries go on every write
 * (so the set stays as large as the live sessions, whether or not anyone reads the count).
 * KEYS[1] the region's sessions zset. ARGV[1] now ms, ARGV[2] session id, ARGV[3] expiry ms.
 */
const TOUCH_REGION_SESSION: LuaScript = {
  name: 'bambaRegionTouchSession',
  keys: 1,
  lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
`,
};

/** Live sessions in the region. KEYS[1] the region's sessions zset. ARGV[1] now ms. */
const REGION_SESSIONS: LuaScript = {
  name: 'bambaRegionSessions',
  keys: 1,
  lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
`,
};

/** A tenant's usage now. KEYS[1] sessions, KEYS[2] bytes. ARGV[1] now ms. Returns {sessions, bytes}. */
const USAGE: LuaScript = {
  name: 'bambaTenantUsage',
  keys: 2,
  lua: `${FORGET_EXPIRED}
forgetExpired(KEYS[1], KEYS[2], ARGV[1])
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('HGET', KEYS[2], 'total') or '0')}
`,
};

export interface TenantUsageFigures {
  /** Live sessions. */
  sessions: number;
  /** Bytes of their latest snapshots (never evicted while the session lives). */
  sessionBytes: number;
}

export class TenantUsage {
  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys) {}

  private keysOf(tenant: string): string[] {
    return [this.keys.tenantSessions(tenant), this.keys.tenantSessionBytes(tenant)];
  }

  /** Count a new session, unless the tenant already holds `limit`. */
  async admitSession(tenant: string, sessionId: string, ttlSeconds: number, limit: number): Promise<boolean> {
    const expiresAtMs = Date.now() + ttlSeconds * 1000;
    const admitted = (await runScript(this.redis, ADMIT_SESSION, this.keysOf(tenant), [Date.now(), sessionId, expiresAtMs, limit])) === 1;
    if (admitted) await this.touchRegionSession(sessionId, expiresAtMs);
    return admitted;
  }

  async renewSession(tenant: string, sessionId: string, ttlSeconds: number, snapshotBytes: number): Promise<void> {
    const expiresAtMs = Date.now() + ttlSeconds * 1000;
    await runScript(this.redis, RENEW_SESSION, this.keysOf(tenant), [sessionId, expiresAtMs, snapshotBytes]);
    await this.touchRegionSession(sessionId, expiresAtMs);
  }

  /**
   * A session whose turn holds its lock lives at least until then (the lock keeps its records
   * alive), so it is counted at least that long: only ever later (GT), never earlier.
   */
  async outlastLock(tenant: string, sessionId: string, lockTtlMs: number): Promise<void> {
    const expiresAtMs = Date.now() + lockTtlMs;
    // Side by side (one round trip on a turn's way to the queue); the two keys live in different slots.
    await Promise.all([
      this.redis.zadd(this.keys.tenantSessions(tenant), 'GT', expiresAtMs, sessionId),
      this.redis.zadd(this.keys.regionSessions, 'GT', expiresAtMs, sessionId).catch(() => { /* a figure for status pages */ }),
    ]);
  }

  async forgetSession(tenant: string, sessionId: string): Promise<void> {
    await runScript(this.redis, FORGET_SESSION, this.keysOf(tenant), [sessionId]);
    await this.redis.zrem(this.keys.regionSessions, sessionId).catch(() => { /* pruned when it expires */ });
  }

  /** The region count is a figure for status pages: failing to update it never fails a session change. */
  /**
   * A session edited between turns lives `ttlSeconds` from now: counted that long, only ever later
   * (GT) and only while it is counted (XX: an edit racing a delete never counts the deleted one again).
   */
  async extendSession(tenant: string, sessionId: string, ttlSeconds: number): Promise<void> {
    const expiresAtMs = Date.now() + ttlSeconds * 1000;
    await Promise.all([
      this.redis.zadd(this.keys.tenantSessions(tenant), 'XX', 'GT', expiresAtMs, sessionId),
      this.redis.zadd(this.keys.regionSessions, 'XX', 'GT', expiresAtMs, sessionId).catch(() => { /* a figure for status pages */ }),
    ]);
  }

  private async touchRegionSession(sessionId: string, expiresAtMs: number): Promise<void> {
    await runScript(this.redis, TOUCH_REGION_SESSION, [this.keys.regionSessions], [Date.now(), sessionId, expiresAtMs]).catch(() => { /* caught up at its next change */ });
  }

  /** Live sessions in the region, every tenant's. */
  async regionSessions(): Promise<number> {
    return Number(await runScript(this.redis, REGION_SESSIONS, [this.keys.regionSessions], [Date.now()]));
  }

  async usage(tenant: string): Promise<TenantUsageFigures> {
    const [sessions, sessionBytes] = (await runScript(this.redis, USAGE, this.keysOf(tenant), [Date.now()])) as [number, number];
    return { sessions, sessionBytes };
  }
}
