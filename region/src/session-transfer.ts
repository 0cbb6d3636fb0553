/**
 * Sessions crossing regions. Replication: a region keeps a copy (a replica) of another region's
 * session, the transcript only, applied only when its turn count is newer, so a job that runs
 * twice or late changes nothing. Moves: the source locks the session for the move (its turn
 * lock, held by the move's id), the target imports transcript and snapshot under a new id, and
 * the source swaps the session for a forwarding record in one script; until that swap the
 * source's session is untouched, so a move that fails anywhere leaves it as it was.
 */
import { chatMessageSchema, homeRegionOf, parseWireJson, type SessionRecord } from '@bamba/shared';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { isSessionId, isSnapshotId, movedSessionId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { runScript, scriptRefusal, type LuaScript } from './scripts.js';
import { newSessionHash, SESSION_FIELD as F, sessionFromHash } from './session-fields.js';
import { OPTIMISTIC_ATTEMPTS, RELEASE_LOCK, sessionRefusal } from './session-store.js';
import { SNAPSHOT_CHUNK_BYTES, SNAPSHOT_META_FIELD, type SnapshotStore } from './snapshot-store.js';

/** Largest snapshot a move takes (a 9B state at its longest context is well below). */
const MAX_MOVED_SNAPSHOT_BYTES = 16 * 1024 ** 3;
import { TenantUsage } from './tenant-usage.js';

/** The former ids a session keeps (the newest): older ones keep their forwarding records, unchanged. */
const MAX_FORMER_IDS = 64;

/** A session as it travels between regions: the record (no snapshot, no residency) and its transcript. */
export const sessionCopySchema = z.object({
  id: z.string().refine(isSessionId, 'not a session id'),
  tenant: z.string().min(1),
  model: z.string().min(1),
  createdAtMs: z.number().int().min(0),
  version: z.number().int().min(0),
  ttlSeconds: z.number().int().positive(),
  metadata: z.record(z.string(), z.string()),
  messages: z.array(chatMessageSchema),
  /** Its ids before earlier moves, oldest first (absent from builds before moves kept them). */
  formerIds: z.array(z.string().refine(isSessionId, 'not a session id')).max(MAX_FORMER_IDS).optional(),
});
export type SessionCopy = z.infer<typeof sessionCopySchema>;


/**
 * What applying a replica did. `conflict`: this region's transcript is not a prefix of the
 * replica's (both sides committed a turn on the same history, e.g. during a failover): nothing
 * changes, and the worker reports it. `moved`: the session moved or was dropped here.
 */
export type ReplicaOutcome = 'applied' | 'stale' | 'moved' | 'busy' | 'conflict';

/** A forwarding record: who owns the session, and its id now (`GONE`: deleted, its replica dropped). */
const forwardSchema = z.object({ tenant: z.string(), to: z.string() });
const GONE = '';
/** A dropped replica's tombstone outlives any replication job still in flight for it. */
const TOMBSTONE_TTL_SECONDS = 86_400;

/** A stored snapshot as a move sees it: what it is, and how many chunks to fetch. */
export const exportedSnapshotSchema = z.object({
  snapshotId: z.string().refine(isSnapshotId, 'not a snapshot id'),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  tokenCount: z.number().int().min(0),
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive().max(MAX_MOVED_SNAPSHOT_BYTES),
  chunks: z.number().int().positive(),
}).refine((snapshot) => snapshot.chunks === Math.ceil(snapshot.bytes / SNAPSHOT_CHUNK_BYTES), 'chunks does not match bytes');

/** What the source region's export answers: the session locked for the move, or where it went. */
export const sessionExportSchema = z.union([
  z.object({ copy: sessionCopySchema, snapshot: exportedSnapshotSchema.nullable() }),
  z.object({ movedTo: z.string().refine(isSessionId, 'not a session id') }),
]);
export type SessionExport = z.infer<typeof sessionExportSchema>;

/**
 * Apply a replica if it is newer. KEYS[1] hash, KEYS[2] transcript, KEYS[3] lock, KEYS[4] owners
 * of the current snapshot (any family key when none), KEYS[5] forwarding record.
 * ARGV[1] the replica's version, ARGV[2] the current snapshot id as read ('' = none), ARGV[3] TTL
 * seconds, ARGV[4] the hash fields (JSON object), ARGV[5] '1' to check lineage (this region's own
 * session: its history must not be overwritten), ARGV[6..] transcript messages (JSON).
 * Returns 'applied', 'stale' (this region has as many turns or more), 'moved'; or SESSION_BUSY,
 * SNAPSHOT_MOVED (read again).
 */
const APPLY_REPLICA: LuaScript = {
  name: 'bambaApplyReplica',
  keys: 5,
  lua: `
if redis.call('EXISTS', KEYS[5]) == 1 then return 'moved' end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
local version = tonumber(redis.call('HGET', KEYS[1], '${F.version}') or '-1')
if version >= tonumber(ARGV[1]) then return 'stale' end
-- This region's own session (turns coming home after a failover) must not lose history: the copy
-- must continue it, every message here the same item (by id, else the same JSON) at the same
-- place. Another region's session is that region's to decide: its newer copy always wins.
local here = redis.call('LRANGE', KEYS[2], 0, -1)
if ARGV[5] == '1' then
if #here > #ARGV - 5 then return 'conflict' end
for index, entry in ipairs(here) do
  local theirs = ARGV[index + 5]
  if entry ~= theirs then
    local ok, mine = pcall(cjson.decode, entry)
    local okTheirs, other = pcall(cjson.decode, theirs)
    if not (ok and okTheirs and type(mine) == 'table' and type(other) == 'table' and mine.id ~= nil and mine.id == other.id) then return 'conflict' end
  end
end
end
local snapshot = redis.call('HGET', KEYS[1], '${F.snapshotId}') or ''
if snapshot ~= ARGV[2] then return redis.error_reply('SNAPSHOT_MOVED') end
if snapshot ~= '' then redis.call('SREM', KEYS[4], KEYS[1]) end
redis.call('DEL', KEYS[1], KEYS[2])
local fields = cjson.decode(ARGV[4])
for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
for index = 6, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[index]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
if #ARGV >= 6 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return 'applied'
`,
};

/**
 * Lock a session for a move (its turn lock, held by the move id; the same move may take it
 * again). KEYS[1] hash, KEYS[2] lock. ARGV[1] move id, ARGV[2] lock TTL ms.
 * Returns 1, or NO_SESSION, SESSION_BUSY.
 */
const LOCK_FOR_MOVE: LuaScript = {
  name: 'bambaLockForMove',
  keys: 2,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NO_SESSION') end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return redis.error_reply('SESSION_BUSY') end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
`,
};

/**
 * Swap a moved session for its forwarding record. KEYS[1] hash, KEYS[2] transcript, KEYS[3] lock,
 * KEYS[4] snapshot set, KEYS[5] owners of the current snapshot (any family key when none),
 * KEYS[6] forwarding record. ARGV[1] move id, ARGV[2] the new id, ARGV[3] current snapshot id as read.
 * Returns {'moved', tenant, snapshot ids…} or {'already'}; or LOST_LOCK, SNAPSHOT_MOVED.
 */
/**
 * Point a forwarding record at the session's newest id, if it is one of the tenant's (never a
 * deleted replica's tombstone), keeping its TTL. KEYS[1] forwarding record. ARGV[1] tenant,
 * ARGV[2] the newest id. Returns 1 when changed, else 0.
 */
const REPOINT_FORWARD: LuaScript = {
  name: 'bambaRepointForward',
  keys: 1,
  lua: `
local text = redis.call('GET', KEYS[1])
if not text then return 0 end
local ok, forward = pcall(cjson.decode, text)
if not ok or type(forward) ~= 'table' or forward.tenant ~= ARGV[1] or forward.to == '${GONE}' or forward.to == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], cjson.encode({tenant = ARGV[1], to = ARGV[2]}), 'KEEPTTL')
return 1
`,
};

const COMMIT_MOVE: LuaScript = {
  name: 'bambaCommitMove',
  keys: 6,
  lua: `
local forward = redis.call('GET', KEYS[6])
if forward and cjson.decode(forward).to == ARGV[2] then return {'already'} end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('LOST_LOCK') end
if (redis.call('HGET', KEYS[1], '${F.snapshotId}') or '') ~= ARGV[3] then return redis.error_reply('SNAPSHOT_MOVED') end
local tenant = redis.call('HGET', KEYS[1], '${F.tenant}')
local ttl = redis.call('HGET', KEYS[1], '${F.ttlSeconds}')
local snapshots = redis.call('SMEMBERS', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[3])
if ARGV[3] ~= '' then redis.call('SREM', KEYS[5], KEYS[1]) end
redis.call('SET', KEYS[6], cjson.encode({tenant = tenant, to = ARGV[2]}), 'EX', ttl)
local reply = {'moved', tenant}
for _, id in ipairs(snapshots) do table.insert(reply, id) end
return reply
`,
};



export class SessionTransfer {
  private readonly tenants: TenantUsage;

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    private readonly snapshots: SnapshotStore,
  ) {
    this.tenants = new TenantUsage(redis, keys);
  }

  /**
   * Lock the session for move `moveId` and describe it for the target: transcript, and the
   * latest snapshot when it is still stored. `tenant` must own it (anything else is not found).
   */
  async exportForMove(sessionId: string, tenant: string, moveId: string, lockTtlMs: number): Promise<SessionExport | 'not_found' | 'busy'> {
    const movedTo = await this.forwardOf(tenant, sessionId);
    if (movedTo) return { movedTo };
    const before = await this.copyOf(sessionId);
    if (!before || before.record.tenant !== tenant) return 'not_found';
    const locked = await this.lockForMove(sessionId, moveId, lockTtlMs);
    if (locked !== 'locked') return locked;
    const found = await this.copyOf(sessionId); // read again under the lock: no turn commits now
    if (!found) {
      await this.releaseMove(sessionId, moveId);
      return 'not_found';
    }
    const { snapshotId } = found.record;
    const [info, chunks] = snapshotId ? await Promise.all([this.snapshots.info(snapshotId), this.snapshots.chunkCount(snapshotId)]) : [null, null];
    const snapshot = info && chunks ? { snapshotId, fingerprint: info.fingerprint, tokenCount: info.tokenCount, tokenHash: info.tokenHash, bytes: info.bytes, chunks } : null;
    return { copy: found.copy, snapshot };
  }

  /** Where the tenant's moved session went (its new id), or null (another tenant's reads as none). */
  async forwardOf(tenant: string, sessionId: string): Promise<string | null> {
    if (!isSessionId(sessionId)) return null;
    const text = await this.redis.get(this.keys.sessionForward(sessionId));
    if (text === null) return null;
    const forward = forwardSchema.safeParse(JSON.parse(text));
    return forward.success && forward.data.tenant === tenant && forward.data.to !== GONE ? forward.data.to : null;
  }

  /** This region's forwarding record of a session that moved away (any tenant's: for replication), or null. */
  async movedAway(sessionId: string): Promise<{ tenant: string; to: string } | null> {
    if (!isSessionId(sessionId)) return null;
    const text = await this.redis.get(this.keys.sessionForward(sessionId));
    const forward = text === null ? null : forwardSchema.safeParse(JSON.parse(text));
    return forward?.success && forward.data.to !== GONE ? forward.data : null;
  }

  /**
   * Drop this region's replica of another region's session, leaving a tombstone so a replication
   * job still in flight cannot bring it back. Never a session of this region's own. `movedTo`:
   * the session moved (not deleted); the tombstone forwards its old id there, so a failover
   * request by the old id finds it.
   */
  async dropReplica(sessionId: string, sessions: { delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'> }, movedTo: { tenant: string; to: string } | null = null): Promise<'dropped' | 'not_found' | 'busy'> {
    const home = homeRegionOf(sessionId);
    if (home === null || home === this.keys.region) return 'not_found';
    if (movedTo && !isSessionId(movedTo.to)) return 'not_found';
    const found = await this.copyOf(sessionId);
    const tombstone = movedTo ?? { tenant: found?.record.tenant ?? '', to: GONE };
    await this.redis.set(this.keys.sessionForward(sessionId), JSON.stringify(tombstone), 'EX', TOMBSTONE_TTL_SECONDS);
    if (!found) return 'not_found';
    const outcome = await sessions.delete(found.record.tenant, sessionId);
    return outcome === 'deleted' ? 'dropped' : outcome;
  }

  /** The session as it travels (a replica or a move), with its record; null when it does not exist. */
  async copyOf(sessionId: string): Promise<{ copy: SessionCopy; record: SessionRecord } | null> {
    if (!isSessionId(sessionId)) return null;
    const [hash, transcript] = await Promise.all([this.redis.hgetall(this.keys.session(sessionId)), this.redis.lrange(this.keys.sessionTranscript(sessionId), 0, -1)]);
    const record = sessionFromHash(sessionId, hash);
    if (!record) return null;
    const messages = transcript.map((message) => parseWireJson(chatMessageSchema, message, 'transcript message'));
    const { tenant, model, createdAtMs, version, ttlSeconds, metadata } = record;
    const formerIds = formerIdsOf(hash[F.formerIds]);
    return { copy: { id: sessionId, tenant, model, createdAtMs, version, ttlSeconds, metadata, messages, ...(formerIds.length > 0 ? { formerIds } : {}) }, record };
  }

  /** Keep `copy` as this region's copy of the session unless this region's is as new or newer. */
  async applyReplica(copy: SessionCopy): Promise<ReplicaOutcome> {
    const fields = {
      ...newSessionHash({ tenant: copy.tenant, model: copy.model, createdAtMs: copy.createdAtMs, version: copy.version, tokenCount: 0, snapshotId: '', snapshotBytes: 0, residentNode: '', ttlSeconds: copy.ttlSeconds, metadata: copy.metadata }),
      // Kept with the replica, so a copy coming home after a failover brings them back.
      ...(copy.formerIds ? { [F.formerIds]: JSON.stringify(copy.formerIds) } : {}),
    };
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const snapshotId = (await this.redis.hget(this.keys.session(copy.id), F.snapshotId)) ?? '';
      try {
        const outcome = (await runScript(this.redis, APPLY_REPLICA, [
          this.keys.session(copy.id), this.keys.sessionTranscript(copy.id), this.keys.sessionLock(copy.id),
          snapshotId ? this.keys.snapshotOwners(snapshotId) : this.keys.session(copy.id), this.keys.sessionForward(copy.id),
        ], [copy.version, snapshotId, copy.ttlSeconds, JSON.stringify(fields), homeRegionOf(copy.id) === this.keys.region ? '1' : '0', ...copy.messages.map((message) => JSON.stringify(message))])) as ReplicaOutcome;
        // A region's own session (back from a failover) holds no snapshot bytes now; another
        // region's replica is not counted against the tenant here at all.
        if (outcome === 'applied' && homeRegionOf(copy.id) === this.keys.region) await this.tenants.renewSession(copy.tenant, copy.id, copy.ttlSeconds, 0).catch(() => {});
        return outcome;
      } catch (error) {
        const refusal = scriptRefusal(error, ['SESSION_BUSY', 'SNAPSHOT_MOVED'] as const);
        if (refusal === 'SESSION_BUSY') return 'busy';
        if (refusal !== 'SNAPSHOT_MOVED') throw error;
      }
    }
    return 'busy';
  }

  /** Lock a session for move `moveId` (no turn can start or commit until the move ends). */
  async lockForMove(sessionId: string, moveId: string, ttlMs: number): Promise<'locked' | 'not_found' | 'busy'> {
    if (!isSessionId(sessionId)) return 'not_found';
    try {
      await runScript(this.redis, LOCK_FOR_MOVE, [this.keys.session(sessionId), this.keys.sessionLock(sessionId)], [moveId, ttlMs]);
      return 'locked';
    } catch (error) {
      return sessionRefusal(error);
    }
  }

  /** The move did not happen: give the session back. */
  async releaseMove(sessionId: string, moveId: string): Promise<void> {
    if (!isSessionId(sessionId)) return;
    await runScript(this.redis, RELEASE_LOCK, [this.keys.sessionLock(sessionId)], [moveId]);
  }

  /** The id the session gets in this region when move `moveId` brings it here. */
  movedId(sessionId: string, moveId: string): string {
    return movedSessionId(sessionId, this.keys.region, moveId);
  }

  /**
   * Create the moved session here under `newId`: the transcript, and the snapshot when one came
   * along (already stored here under the new id's family). Running it again rewrites the same.
   */
  async importMoved(newId: string, copy: SessionCopy, snapshot: { snapshotId: string; tokenCount: number; bytes: number } | null): Promise<void> {
    const formerIds = [...(copy.formerIds ?? []), copy.id].slice(-MAX_FORMER_IDS);
    const hash = {
      ...newSessionHash({
        tenant: copy.tenant, model: copy.model, createdAtMs: copy.createdAtMs, version: copy.version, tokenCount: snapshot?.tokenCount ?? 0,
        snapshotId: snapshot?.snapshotId ?? '', snapshotBytes: snapshot?.bytes ?? 0, residentNode: '', ttlSeconds: copy.ttlSeconds, metadata: copy.metadata,
      }),
      [F.formerIds]: JSON.stringify(formerIds),
    };
    const ttl = copy.ttlSeconds;
    await this.tenants.admitSession(copy.tenant, newId, ttl, Number.POSITIVE_INFINITY);
    const transaction = this.redis.multi()
      .del(this.keys.session(newId), this.keys.sessionTranscript(newId))
      .hset(this.keys.session(newId), hash)
      .expire(this.keys.session(newId), ttl);
    if (copy.messages.length > 0) transaction.rpush(this.keys.sessionTranscript(newId), ...copy.messages.map((message) => JSON.stringify(message))).expire(this.keys.sessionTranscript(newId), ttl);
    if (snapshot) {
      transaction
        .sadd(this.keys.snapshotOwners(snapshot.snapshotId), this.keys.session(newId)).expire(this.keys.snapshotOwners(snapshot.snapshotId), ttl)
        .sadd(this.keys.sessionSnapshots(newId), snapshot.snapshotId).expire(this.keys.sessionSnapshots(newId), ttl)
        .hdel(this.keys.snapshotMeta(snapshot.snapshotId), SNAPSHOT_META_FIELD.pinnedUntilMs);
    }
    const results = await transaction.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
    await this.tenants.renewSession(copy.tenant, newId, ttl, snapshot?.bytes ?? 0).catch(() => {});
    await this.repointForwards(copy.tenant, formerIds, newId);
  }

  /**
   * Point the forwarding records this region holds for the session's former ids (those homed
   * here) at its newest id, so an old id reaches the session in one hop per region it passed
   * through, however often it moved (not in one hop per move). Both ends of every move do it.
   * Best effort: a record left as it was still leads to the session, through more hops.
   */
  private async repointForwards(tenant: string, formerIds: readonly string[], newId: string): Promise<void> {
    await Promise.all(formerIds.filter((id) => homeRegionOf(id) === this.keys.region && id !== newId)
      .map((id) => runScript(this.redis, REPOINT_FORWARD, [this.keys.sessionForward(id)], [tenant, newId]).catch(() => {})));
  }

  /**
   * The session moved to `newId`: replace it by its forwarding record, atomically with the check
   * that move `moveId` still holds it. 'lost' when the lock expired (the move must not complete).
   */
  async commitMove(sessionId: string, moveId: string, newId: string): Promise<'moved' | 'lost'> {
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const [snapshotField, formerIdsField] = await this.redis.hmget(this.keys.session(sessionId), F.snapshotId, F.formerIds);
      const snapshotId = snapshotField ?? '';
      let reply: string[];
      try {
        reply = (await runScript(this.redis, COMMIT_MOVE, [
          this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.sessionLock(sessionId),
          this.keys.sessionSnapshots(sessionId), snapshotId ? this.keys.snapshotOwners(snapshotId) : this.keys.session(sessionId), this.keys.sessionForward(sessionId),
        ], [moveId, newId, snapshotId])) as string[];
      } catch (error) {
        const refusal = scriptRefusal(error, ['LOST_LOCK', 'SNAPSHOT_MOVED'] as const);
        if (refusal === 'LOST_LOCK') return 'lost';
        if (refusal !== 'SNAPSHOT_MOVED') throw error;
        continue;
      }
      if (reply[0] === 'moved') {
        await this.tenants.forgetSession(reply[1]!, sessionId).catch(() => {});
        for (const snapshot of new Set([...reply.slice(2), ...(snapshotId ? [snapshotId] : [])])) await this.snapshots.forget(snapshot);
        await this.repointForwards(reply[1]!, formerIdsOf(formerIdsField), newId);
      }
      return 'moved';
    }
    return 'lost';
  }
}

/** A session hash's former ids, from its field's text (see SESSION_FIELD.formerIds); none when absent or unreadable. */
function formerIdsOf(text: string | null | undefined): string[] {
  if (!text) return [];
  try {
    const ids: unknown = JSON.parse(text);
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string' && isSessionId(id)).slice(-MAX_FORMER_IDS) : [];
  } catch {
    return [];
  }
}
