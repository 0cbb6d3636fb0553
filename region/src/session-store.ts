/**
 * Server-side sessions in a region's Redis, for every process: the gateway creates, reads,
 * forks, deletes and locks them; gpu-nodes load them and commit turns. Every multi-key change
 * is one Lua script over keys of one session family (one Cluster slot); field names come from
 * `session-fields.ts`.
 */
import {
  chatMessageSchema,
  parseWireJson,
  QuotaExceededError,
  type ChatMessage,
  type SessionRecord,
  type SessionStateLocation,
  type ValidatedCreateSession,
} from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import { forkSessionId, isSessionId, newItemId, newSessionId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { runScript, scriptRefusal, type LuaScript } from './scripts.js';
import { lastTurnFromHash, newSessionHash, SESSION_FIELD as F, sessionFromHash, type CommittedTurn } from './session-fields.js';
import { SNAPSHOT_META_FIELD, type SnapshotStore } from './snapshot-store.js';
import { TenantUsage, type TenantUsageFigures } from './tenant-usage.js';

export interface SessionView {
  session: SessionRecord;
  messages: ChatMessage[];
}

/** Why a fork did not happen: no such session, a turn is running, or it has fewer messages than asked to keep. */
export type ForkRefusal = 'not_found' | 'busy' | 'too_few_messages';

export interface TurnCommit {
  sessionId: string;
  /** The session's tenant and TTL (from its record): the tenant's usage moves with the commit. */
  tenant: string;
  ttlSeconds: number;
  requestId: string;
  expectedVersion: number;
  /** The turn's new messages (user input and the answer). */
  messages: ChatMessage[];
  /** The state after the turn, '' when there is none (the next turn replays). */
  snapshotId: string;
  tokenCount: number;
  snapshotBytes: number;
  /** The node keeping the state in a slot, '' when none. */
  residentNode: string;
  /** What the turn's end event said, kept so a retry of the same request answers from it. */
  turn: CommittedTurn;
}

export type CommitOutcome =
  /** Committed now; `snapshotId` is '' when the snapshot vanished before the commit (next turn replays). */
  | { kind: 'committed'; version: number; snapshotId: string }
  /** This request's turn was committed before (a retry after the committing node died). */
  | { kind: 'already-committed'; version: number; turn: CommittedTurn; answer: string };

/** A commit's `snapshotId` meaning "keep the session's current snapshot" (its turn's state is saved later). */
export const KEEP_SNAPSHOT = '=';

/** Why a commit was refused: the turn lost its lock, raced another, or the session is gone. */
export class TurnCommitRefused extends Error {
  constructor(readonly reason: 'LOST_LOCK' | 'VERSION_CONFLICT' | 'NO_SESSION') {
    super(`turn commit refused: ${reason}`);
  }
}

/**
 * Take a session's turn lock. KEYS[1] session hash, KEYS[2] lock, KEYS[3] transcript.
 * ARGV[1] tenant, ARGV[2] request id, ARGV[3] lock TTL ms.
 * The session lives at least as long as the lock: a turn that outlasts the session's TTL would
 * otherwise find it gone at its commit and lose its whole answer (the commit sets the TTL anew).
 * Returns the hash (flat field list), or NO_SESSION (missing or another tenant's), SESSION_BUSY.
 */
const LOCK_TURN: LuaScript = {
  name: 'bambaLockTurn',
  keys: 3,
  lua: `
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if not redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') then return redis.error_reply('SESSION_BUSY') end
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  local left = redis.call('PTTL', key)
  if left >= 0 and left < tonumber(ARGV[3]) then redis.call('PEXPIRE', key, ARGV[3]) end
end
return redis.call('HGETALL', KEYS[1])
`,
};

/** Release a turn lock only if this request (or move) still holds it. KEYS[1] lock. ARGV[1] request id. */
export const RELEASE_LOCK: LuaScript = {
  name: 'bambaReleaseTurnLock',
  keys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
};

/**
 * Lua shared by commit and fork: `session` now owns `snapshot` (it is never evicted while the
 * session lives), and the snapshot is one of the session's (dropped with it). Both sets live as
 * long as the session.
 */
const OWN_SNAPSHOT_LUA = `
local function ownSnapshot(owners, session, sessionSnapshots, snapshot, ttl)
  redis.call('SADD', owners, session)
  redis.call('EXPIRE', owners, ttl)
  redis.call('SADD', sessionSnapshots, snapshot)
  redis.call('EXPIRE', sessionSnapshots, ttl)
end
`;

/**
 * Commit a turn: transcript append + snapshot pointer and ownership + version, together.
 * KEYS[1] session hash, KEYS[2] transcript, KEYS[3] turn lock, KEYS[4] the session's snapshot
 * set, KEYS[5] new snapshot's meta, KEYS[6] its owners, KEYS[7] owners of the previous snapshot
 * (KEYS[5..7] are the session hash when there is no such snapshot; never touched then).
 * ARGV[1] request id, ARGV[2] expected version, ARGV[3] new snapshot id or '', ARGV[4] token
 * count, ARGV[5] snapshot bytes (both ignored with KEEP_SNAPSHOT: the current pointer stays), ARGV[6]
 * resident node or '', ARGV[7] the turn (JSON), ARGV[8] the previous snapshot id as the caller read
 * it ('' = none: KEYS[7] names its owners), ARGV[9..] messages (JSON) to append.
 * Returns {'committed', version, snapshot id, its bytes} or {'already', version, turn JSON, last message},
 * or an error: NO_SESSION, LOST_LOCK, VERSION_CONFLICT.
 */
const COMMIT_TURN: LuaScript = {
  name: 'bambaCommitTurn',
  keys: 7,
  lua: `${OWN_SNAPSHOT_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NO_SESSION') end
local version = tonumber(redis.call('HGET', KEYS[1], '${F.version}'))
local expected = tonumber(ARGV[2])
local last = redis.call('HGET', KEYS[1], '${F.lastTurn}') or ''
if version == expected + 1 and last ~= '' and cjson.decode(last).requestId == ARGV[1] then
  return {'already', version, last, redis.call('LINDEX', KEYS[2], -1) or ''}
end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('LOST_LOCK') end
if version ~= expected then return redis.error_reply('VERSION_CONFLICT') end
local snapshot, tokens, bytes, resident = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HGET', KEYS[1], '${F.snapshotId}') or ''
-- '${KEEP_SNAPSHOT}': the turn's state is saved later; the session keeps pointing where it points now.
local keep = snapshot == '${KEEP_SNAPSHOT}'
if keep then
  snapshot, tokens, bytes = old, redis.call('HGET', KEYS[1], '${F.tokenCount}') or '0', redis.call('HGET', KEYS[1], '${F.snapshotBytes}') or '0'
elseif snapshot ~= '' and redis.call('EXISTS', KEYS[5]) == 0 then
  snapshot, tokens, bytes, resident = '', '0', '0', ''
end
for index = 9, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[index]) end
if old ~= '' and old ~= snapshot then redis.call('SREM', KEYS[7], KEYS[1]) end
redis.call('HSET', KEYS[1], '${F.version}', version + 1, '${F.tokenCount}', tokens, '${F.snapshotId}', snapshot,
  '${F.snapshotBytes}', bytes, '${F.residentNode}', resident, '${F.lastTurn}', ARGV[7])
local ttl = redis.call('HGET', KEYS[1], '${F.ttlSeconds}')
if snapshot ~= '' and not keep then
  redis.call('HDEL', KEYS[5], '${SNAPSHOT_META_FIELD.pinnedUntilMs}') -- owned now: the pin has done its job
  ownSnapshot(KEYS[6], KEYS[1], KEYS[4], snapshot, ttl)
elseif snapshot ~= '' and snapshot == ARGV[8] then
  -- The kept snapshot stays owned as long as the session now lives (its sets expire with it).
  ownSnapshot(KEYS[7], KEYS[1], KEYS[4], snapshot, ttl)
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('DEL', KEYS[3])
return {'committed', version + 1, snapshot, bytes}
`,
};

/**
 * Point a committed turn's session at the snapshot taken for it, written after the turn's end:
 * only if no later turn committed meanwhile. KEYS[1] session hash, KEYS[2] the session's snapshot
 * set, KEYS[3] the snapshot's meta, KEYS[4] its owners, KEYS[5] owners of the current snapshot
 * (any family key when none). ARGV[1] the turn's version, ARGV[2] snapshot id, ARGV[3] token
 * count, ARGV[4] bytes, ARGV[5] resident node or '', ARGV[6] the current snapshot id as read.
 * Returns 1, 0 (a later turn, or the session is gone: the caller forgets the snapshot), or
 * SNAPSHOT_MOVED (read again).
 */
const ATTACH_SNAPSHOT: LuaScript = {
  name: 'bambaAttachSnapshot',
  keys: 5,
  lua: `${OWN_SNAPSHOT_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], '${F.version}')) ~= tonumber(ARGV[1]) then return 0 end
local old = redis.call('HGET', KEYS[1], '${F.snapshotId}') or ''
if old ~= ARGV[6] then return redis.error_reply('SNAPSHOT_MOVED') end
if old ~= '' and old ~= ARGV[2] then redis.call('SREM', KEYS[5], KEYS[1]) end
redis.call('HSET', KEYS[1], '${F.snapshotId}', ARGV[2], '${F.tokenCount}', ARGV[3], '${F.snapshotBytes}', ARGV[4], '${F.residentNode}', ARGV[5])
redis.call('HDEL', KEYS[3], '${SNAPSHOT_META_FIELD.pinnedUntilMs}')
ownSnapshot(KEYS[4], KEYS[1], KEYS[2], ARGV[2], redis.call('HGET', KEYS[1], '${F.ttlSeconds}'))
return 1
`,
};

/**
 * Fork a session: a new session (same family) with the same transcript and the same snapshot,
 * now owned by both, so nothing is copied or recomputed. A fork of the first messages only
 * keeps those and no snapshot (its next turn finds the state of that point in the prefix cache,
 * or replays); its turn count is the answers it keeps.
 * KEYS[1] source hash, KEYS[2] source transcript, KEYS[3] source lock, KEYS[4] new hash,
 * KEYS[5] new transcript, KEYS[6] owners of the source's snapshot (any family key when none),
 * KEYS[7] the new session's snapshot set.
 * ARGV[1] tenant, ARGV[2] the source's snapshot id as read before ('' = none), ARGV[3] created-at ms,
 * ARGV[4] messages to keep ('' = all).
 * Returns 1, or NO_SESSION, SESSION_BUSY, SNAPSHOT_MOVED (a turn committed since: read again),
 * TOO_FEW_MESSAGES (the session has fewer than ARGV[4]).
 */
const FORK_SESSION: LuaScript = {
  name: 'bambaForkSession',
  keys: 7,
  lua: `${OWN_SNAPSHOT_LUA}
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
local snapshot = redis.call('HGET', KEYS[1], '${F.snapshotId}') or ''
if snapshot ~= ARGV[2] then return redis.error_reply('SNAPSHOT_MOVED') end
local messages = redis.call('LRANGE', KEYS[2], 0, -1)
local partial = ARGV[4] ~= '' and tonumber(ARGV[4]) < #messages
if ARGV[4] ~= '' and tonumber(ARGV[4]) > #messages then return redis.error_reply('TOO_FEW_MESSAGES') end
redis.call('HSET', KEYS[4], unpack(redis.call('HGETALL', KEYS[1])))
redis.call('HSET', KEYS[4], '${F.createdAtMs}', ARGV[3], '${F.residentNode}', '', '${F.lastTurn}', '')
-- A fork is a new session: the source's former ids (moves) stay the source's.
redis.call('HDEL', KEYS[4], '${F.formerIds}')
local kept = #messages
if partial then
  kept = tonumber(ARGV[4])
  local answers = 0
  for index = 1, kept do
    local ok, message = pcall(cjson.decode, messages[index])
    if ok and type(message) == 'table' and message.role == 'assistant' then answers = answers + 1 end
  end
  redis.call('HSET', KEYS[4], '${F.version}', answers, '${F.snapshotId}', '', '${F.tokenCount}', 0, '${F.snapshotBytes}', 0)
  snapshot = ''
end
for index = 1, kept do redis.call('RPUSH', KEYS[5], messages[index]) end
local ttl = redis.call('HGET', KEYS[1], '${F.ttlSeconds}')
if snapshot ~= '' then ownSnapshot(KEYS[6], KEYS[4], KEYS[7], snapshot, ttl) end
redis.call('EXPIRE', KEYS[4], ttl)
if kept > 0 then redis.call('EXPIRE', KEYS[5], ttl) end
return 1
`,
};

/**
 * Delete a session: record, transcript and snapshot set; it stops owning its snapshot.
 * KEYS[1] hash, KEYS[2] transcript, KEYS[3] lock, KEYS[4] snapshot set, KEYS[5] owners of the
 * current snapshot (any family key when none).
 * ARGV[1] tenant, ARGV[2] the current snapshot id as read before ('' = none).
 * Returns the ids of every snapshot taken for the session (to forget unless a fork owns them),
 * or NO_SESSION, SESSION_BUSY, SNAPSHOT_MOVED.
 */
const DELETE_SESSION: LuaScript = {
  name: 'bambaDeleteSession',
  keys: 5,
  lua: `
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
if (redis.call('HGET', KEYS[1], '${F.snapshotId}') or '') ~= ARGV[2] then return redis.error_reply('SNAPSHOT_MOVED') end
local snapshots = redis.call('SMEMBERS', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
if ARGV[2] ~= '' then redis.call('SREM', KEYS[5], KEYS[1]) end
return snapshots
`,
};

/** Lua: extend `key`'s life to `seconds` from now, only ever later, and only if it exists. Returns 1 when extended. */
const EXTEND_TTL_LUA = `
local function extendTtl(key, seconds)
  local left = redis.call('TTL', key)
  if left >= 0 and left < seconds then return redis.call('EXPIRE', key, seconds) end
  return 0
end
`;

/**
 * Lua shared by the edits between turns (items, metadata): a session edited is in use, so its
 * record, transcript and snapshot set (one slot family) live their whole TTL again from now, as
 * after a turn; only ever later (a running turn's lock may keep them longer), and a key that is
 * gone stays gone. Written with TTL, not `EXPIRE … GT`, which needs Redis 7.
 */
const RENEW_EDITED_LUA = `${EXTEND_TTL_LUA}
local function renewEdited(hash, transcript, snapshots)
  local ttl = tonumber(redis.call('HGET', hash, '${F.ttlSeconds}'))
  for _, key in ipairs({hash, transcript, snapshots}) do extendTtl(key, ttl) end
end
`;

/**
 * Append items to a conversation between turns. KEYS[1] hash, KEYS[2] transcript, KEYS[3] lock,
 * KEYS[4] snapshot set. ARGV[1] tenant, ARGV[2] the transcript's length and ARGV[3] its last
 * entry's id ('' when none) when the items were checked against it (ARGV[2] '': not checked),
 * ARGV[4..] messages (JSON). Returns 1, or NO_SESSION, SESSION_BUSY, TRANSCRIPT_CHANGED (an edit
 * or a turn came between the check and this append: check again).
 */
const APPEND_ITEMS: LuaScript = {
  name: 'bambaAppendItems',
  keys: 4,
  lua: `${RENEW_EDITED_LUA}
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
if ARGV[2] ~= '' then
  local lastId = ''
  local last = redis.call('LINDEX', KEYS[2], -1)
  if last then
    local ok, message = pcall(cjson.decode, last)
    if ok and type(message) == 'table' and type(message.id) == 'string' then lastId = message.id end
  end
  if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) or lastId ~= ARGV[3] then return redis.error_reply('TRANSCRIPT_CHANGED') end
end
for index = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[index]) end
redis.call('EXPIRE', KEYS[2], redis.call('HGET', KEYS[1], '${F.ttlSeconds}'))
renewEdited(KEYS[1], KEYS[2], KEYS[4])
return 1
`,
};

/**
 * Remove one item from a conversation between turns (its snapshot no longer matches the
 * transcript: the next turn finds that out and replays). KEYS as APPEND_ITEMS.
 * ARGV[1] tenant, ARGV[2] item id, ARGV[3] a call id ('' for none): that call of a message goes
 * (the message too when nothing else is left), else the message with ARGV[2] as its id; the tool
 * answers of the calls removed go with them.
 * Returns 1 (removed), 0 (no such item), or NO_SESSION, SESSION_BUSY.
 */
const DELETE_ITEM: LuaScript = {
  name: 'bambaDeleteItem',
  keys: 4,
  lua: `${RENEW_EDITED_LUA}
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
local gone = {}
local found = false
for index, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local ok, message = pcall(cjson.decode, entry)
  if ok and type(message) == 'table' then
    if found then
      if message.role == 'tool' and gone[message.toolCallId] then redis.call('LREM', KEYS[2], 1, entry) end
    elseif ARGV[3] == '' and message.id == ARGV[2] then
      found = true
      redis.call('LREM', KEYS[2], 1, entry)
      if type(message.toolCalls) == 'table' then for _, call in ipairs(message.toolCalls) do gone[call.id] = true end end
    elseif ARGV[3] ~= '' and type(message.toolCalls) == 'table' then
      local kept = {}
      for _, call in ipairs(message.toolCalls) do
        if call.id == ARGV[3] then found = true else table.insert(kept, call) end
      end
      if found then
        gone[ARGV[3]] = true
        if #kept > 0 then
          message.toolCalls = kept
          redis.call('LSET', KEYS[2], index - 1, cjson.encode(message))
        elseif message.content == '' then
          redis.call('LREM', KEYS[2], 1, entry)
        else
          message.toolCalls = nil
          redis.call('LSET', KEYS[2], index - 1, cjson.encode(message))
        end
      end
    end
  end
end
if found then renewEdited(KEYS[1], KEYS[2], KEYS[4]) return 1 end
return 0
`,
};

/** KEYS as APPEND_ITEMS. ARGV[1] tenant, ARGV[2] metadata JSON. Returns 1, or NO_SESSION. */
const SET_METADATA: LuaScript = {
  name: 'bambaSetSessionMetadata',
  keys: 4,
  lua: `${RENEW_EDITED_LUA}
if redis.call('HGET', KEYS[1], '${F.tenant}') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
redis.call('HSET', KEYS[1], '${F.metadata}', ARGV[2])
renewEdited(KEYS[1], KEYS[2], KEYS[4])
return 1
`,
};

/** EXTEND_TTL_LUA for one key in a slot of its own. KEYS[1] the key. ARGV[1] seconds. Returns 1 when extended. */
const EXTEND_TTL: LuaScript = {
  name: 'bambaExtendTtl',
  keys: 1,
  lua: `${EXTEND_TTL_LUA}
return extendTtl(KEYS[1], tonumber(ARGV[1]))
`,
};

/** The state left a node's slot. KEYS[1] session hash. ARGV[1] node id. Clears `residentNode` if it names that node. */
const CLEAR_RESIDENCY: LuaScript = {
  name: 'bambaClearResidency',
  keys: 1,
  lua: `
if redis.call('HGET', KEYS[1], '${F.residentNode}') == ARGV[1] then redis.call('HSET', KEYS[1], '${F.residentNode}', '') return 1 end
return 0
`,
};

/** A script's NO_SESSION / SESSION_BUSY refusal as an outcome; anything else is rethrown. */
export function sessionRefusal(error: unknown): 'not_found' | 'busy' {
  const refusal = scriptRefusal(error, ['NO_SESSION', 'SESSION_BUSY'] as const);
  if (refusal === 'NO_SESSION') return 'not_found';
  if (refusal === 'SESSION_BUSY') return 'busy';
  throw error;
}

/** Attempts of an optimistic script (fork, delete, replica, move) against turns committing meanwhile. */
export const OPTIMISTIC_ATTEMPTS = 5;

export class SessionStore {
  private readonly tenants: TenantUsage;

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    private readonly snapshots: SnapshotStore,
  ) {
    this.tenants = new TenantUsage(redis, keys);
  }

  /** What a tenant holds: live sessions and their snapshot bytes. */
  usage(tenant: string): Promise<TenantUsageFigures> {
    return this.tenants.usage(tenant);
  }

  private async admit(tenant: string, sessionId: string, ttlSeconds: number, maxSessions: number): Promise<void> {
    if (!(await this.tenants.admitSession(tenant, sessionId, ttlSeconds, maxSessions))) {
      throw new QuotaExceededError(`this tenant holds ${maxSessions} sessions already, its limit; delete some or let idle ones expire`, { param: 'session' });
    }
  }

  /** A key of the session's family that scripts never touch when a snapshot is absent. */
  private placeholder(sessionId: string): string {
    return this.keys.session(sessionId);
  }

  /** Create a session; `QuotaExceededError` when the tenant holds `maxSessions` already. */
  async create(tenant: string, request: ValidatedCreateSession, ttlSeconds: number, maxSessions = Number.POSITIVE_INFINITY): Promise<SessionView> {
    const sessionId = newSessionId(this.keys.region);
    await this.admit(tenant, sessionId, ttlSeconds, maxSessions);
    const messages: ChatMessage[] = [...(request.system ? [{ role: 'system' as const, content: request.system }] : []), ...(request.items ?? [])]
      .map((message) => ({ ...message, id: message.id ?? newItemId() }));
    const record: Omit<SessionRecord, 'id'> = {
      tenant, model: request.model, createdAtMs: Date.now(), version: 0, tokenCount: 0, snapshotId: '', snapshotBytes: 0, residentNode: '', ttlSeconds, metadata: request.metadata,
    };
    const transaction = this.redis.multi().hset(this.keys.session(sessionId), newSessionHash(record)).expire(this.keys.session(sessionId), ttlSeconds);
    if (messages.length > 0) {
      transaction.rpush(this.keys.sessionTranscript(sessionId), ...messages.map((message) => JSON.stringify(message))).expire(this.keys.sessionTranscript(sessionId), ttlSeconds);
    }
    try {
      await execOrThrow(transaction);
    } catch (error) {
      await this.tenants.forgetSession(tenant, sessionId).catch(() => {});
      throw error;
    }
    return { session: { id: sessionId, ...record }, messages };
  }

  /** The session with its transcript; null when missing, not an id of ours, or another tenant's. */
  async get(tenant: string, sessionId: string): Promise<SessionView | null> {
    const loaded = await this.load(sessionId);
    if (!loaded || loaded.session.tenant !== tenant) return null;
    return { session: loaded.session, messages: loaded.transcript };
  }

  /**
   * The session and its transcript, whoever owns it (gpu-nodes check the tenant themselves),
   * with the last committed turn (a retried request may find its own turn there).
   */
  async load(sessionId: string): Promise<{ session: SessionRecord; transcript: ChatMessage[]; lastTurn: CommittedTurn | null } | null> {
    if (!isSessionId(sessionId)) return null;
    const [hash, transcript] = await Promise.all([
      this.redis.hgetall(this.keys.session(sessionId)),
      this.redis.lrange(this.keys.sessionTranscript(sessionId), 0, -1),
    ]);
    const session = sessionFromHash(sessionId, hash);
    if (!session) return null;
    return { session, transcript: transcript.map((message) => parseWireJson(chatMessageSchema, message, 'transcript message')), lastTurn: lastTurnFromHash(hash) };
  }

  /** Where the session's state lives now, given the live gpu-nodes' ids. */
  async stateOf(session: SessionRecord, liveNodeIds: ReadonlySet<string>): Promise<SessionStateLocation> {
    if (session.residentNode && liveNodeIds.has(session.residentNode)) return 'resident';
    if (session.snapshotId && (await this.snapshots.exists(session.snapshotId))) return 'snapshot';
    return 'transcript';
  }

  /** Take the session's one-turn-at-a-time lock for a request; returns the record it builds on. */
  async lockTurn(tenant: string, sessionId: string, requestId: string, ttlMs: number): Promise<SessionRecord | 'not_found' | 'busy'> {
    if (!isSessionId(sessionId)) return 'not_found';
    try {
      const fields = (await runScript(this.redis, LOCK_TURN, [this.keys.session(sessionId), this.keys.sessionLock(sessionId), this.keys.sessionTranscript(sessionId)], [tenant, requestId, ttlMs])) as string[];
      // Counted against its tenant as long as the lock keeps it (a turn that then fails renews nothing else).
      await this.tenants.outlastLock(tenant, sessionId, ttlMs).catch(() => { /* caught up at its next change */ });
      const hash: Record<string, string> = {};
      for (let index = 0; index + 1 < fields.length; index += 2) hash[fields[index]!] = fields[index + 1]!;
      return sessionFromHash(sessionId, hash) ?? 'not_found';
    } catch (error) {
      return sessionRefusal(error);
    }
  }

  /** Give the lock back if this request still holds it (the turn did not commit). */
  async unlockTurn(sessionId: string, requestId: string): Promise<void> {
    if (!isSessionId(sessionId)) return;
    await runScript(this.redis, RELEASE_LOCK, [this.keys.sessionLock(sessionId)], [requestId]);
  }

  /** Commit a finished turn. Throws `TurnCommitRefused` when the commit must not happen. */
  async commitTurn(commit: TurnCommit, previousSnapshotId: string): Promise<CommitOutcome> {
    const { sessionId } = commit;
    const placeholder = this.placeholder(sessionId);
    const keep = commit.snapshotId === KEEP_SNAPSHOT;
    const newSnapshot = keep ? '' : commit.snapshotId;
    let reply: [string, number, string, string?];
    try {
      reply = (await runScript(this.redis, COMMIT_TURN, [
        this.keys.session(sessionId),
        this.keys.sessionTranscript(sessionId),
        this.keys.sessionLock(sessionId),
        this.keys.sessionSnapshots(sessionId),
        newSnapshot ? this.keys.snapshotMeta(newSnapshot) : placeholder,
        newSnapshot ? this.keys.snapshotOwners(newSnapshot) : placeholder,
        previousSnapshotId ? this.keys.snapshotOwners(previousSnapshotId) : placeholder,
      ], [
        commit.requestId, commit.expectedVersion, commit.snapshotId, commit.tokenCount, commit.snapshotBytes, commit.residentNode,
        JSON.stringify(commit.turn), previousSnapshotId, ...commit.messages.map((message) => JSON.stringify(message)),
      ])) as [string, number, string, string?];
    } catch (error) {
      const reason = scriptRefusal(error, ['LOST_LOCK', 'VERSION_CONFLICT', 'NO_SESSION'] as const);
      if (reason) throw new TurnCommitRefused(reason);
      throw error;
    }
    if (reply[0] === 'already') {
      const turn = lastTurnFromHash({ lastTurn: reply[2] });
      const answer = parseWireJson(chatMessageSchema, reply[3] ?? '', 'transcript message');
      if (!turn) throw new TurnCommitRefused('VERSION_CONFLICT');
      return { kind: 'already-committed', version: Number(reply[1]), turn, answer: answer.content };
    }
    // The session's expiry moved, and its state's bytes are what it holds now ('' = no snapshot).
    const heldBytes = keep ? Number(reply[3] ?? 0) : reply[2] ? commit.snapshotBytes : 0;
    await this.tenants.renewSession(commit.tenant, sessionId, commit.ttlSeconds, heldBytes).catch(() => { /* caught up at its next change */ });
    return { kind: 'committed', version: Number(reply[1]), snapshotId: reply[2] };
  }

  /**
   * The snapshot taken at turn `version`'s end landed: the session now resumes from it. False
   * when a later turn committed first (or the session went): the caller forgets the snapshot.
   */
  async attachSnapshot(session: { id: string; tenant: string; ttlSeconds: number }, version: number, snapshot: { snapshotId: string; tokenCount: number; bytes: number }, residentNode: string): Promise<boolean> {
    const sessionId = session.id;
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const current = (await this.redis.hget(this.keys.session(sessionId), F.snapshotId)) ?? '';
      try {
        const attached = (await runScript(this.redis, ATTACH_SNAPSHOT, [
          this.keys.session(sessionId), this.keys.sessionSnapshots(sessionId), this.keys.snapshotMeta(snapshot.snapshotId), this.keys.snapshotOwners(snapshot.snapshotId),
          current ? this.keys.snapshotOwners(current) : this.placeholder(sessionId),
        ], [version, snapshot.snapshotId, snapshot.tokenCount, snapshot.bytes, residentNode, current])) === 1;
        if (attached) await this.tenants.renewSession(session.tenant, sessionId, session.ttlSeconds, snapshot.bytes).catch(() => { /* caught up at its next change */ });
        return attached;
      } catch (error) {
        if (!scriptRefusal(error, ['SNAPSHOT_MOVED'] as const)) throw error;
      }
    }
    return false;
  }

  /**
   * Fork a session, whole or after its first `keepMessages` messages; `QuotaExceededError` when
   * the tenant holds `maxSessions` already.
   */
  async fork(tenant: string, sessionId: string, keepMessages: number | null = null, maxSessions = Number.POSITIVE_INFINITY): Promise<SessionView | ForkRefusal> {
    if (!isSessionId(sessionId)) return 'not_found';
    const source = await this.redis.hmget(this.keys.session(sessionId), F.tenant, F.ttlSeconds);
    if (source[0] !== tenant) return 'not_found';
    const forkId = forkSessionId(sessionId, this.keys.region);
    await this.admit(tenant, forkId, Number(source[1]), maxSessions);
    const outcome = await this.forkAdmitted(tenant, sessionId, forkId, keepMessages);
    if (typeof outcome === 'string') await this.tenants.forgetSession(tenant, forkId).catch(() => {});
    return outcome;
  }

  private async forkAdmitted(tenant: string, sessionId: string, forkId: string, keepMessages: number | null): Promise<SessionView | ForkRefusal> {
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const snapshotId = (await this.redis.hget(this.keys.session(sessionId), F.snapshotId)) ?? '';
      try {
        await runScript(this.redis, FORK_SESSION, [
          this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.sessionLock(sessionId),
          this.keys.session(forkId), this.keys.sessionTranscript(forkId),
          snapshotId ? this.keys.snapshotOwners(snapshotId) : this.placeholder(sessionId),
          this.keys.sessionSnapshots(forkId),
        ], [tenant, snapshotId, Date.now(), keepMessages ?? '']);
        const view = await this.get(tenant, forkId);
        if (!view) return 'not_found'; // expired at once: only with a TTL of a second or two
        return view;
      } catch (error) {
        const refusal = scriptRefusal(error, ['NO_SESSION', 'SESSION_BUSY', 'SNAPSHOT_MOVED', 'TOO_FEW_MESSAGES'] as const);
        if (refusal === 'NO_SESSION') return 'not_found';
        if (refusal === 'SESSION_BUSY') return 'busy';
        if (refusal === 'TOO_FEW_MESSAGES') return 'too_few_messages';
        if (refusal !== 'SNAPSHOT_MOVED') throw error;
      }
    }
    return 'busy';
  }

  /** Delete a session with its transcript; its snapshots go too unless a fork still owns them. */
  async delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'> {
    if (!isSessionId(sessionId)) return 'not_found';
    for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
      const snapshotId = (await this.redis.hget(this.keys.session(sessionId), F.snapshotId)) ?? '';
      let taken: string[];
      try {
        taken = (await runScript(this.redis, DELETE_SESSION, [
          this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.sessionLock(sessionId),
          this.keys.sessionSnapshots(sessionId), snapshotId ? this.keys.snapshotOwners(snapshotId) : this.placeholder(sessionId),
        ], [tenant, snapshotId])) as string[];
      } catch (error) {
        const refusal = scriptRefusal(error, ['NO_SESSION', 'SESSION_BUSY', 'SNAPSHOT_MOVED'] as const);
        if (refusal === 'NO_SESSION') return 'not_found';
        if (refusal === 'SESSION_BUSY') return 'busy';
        if (refusal !== 'SNAPSHOT_MOVED') throw error;
        continue;
      }
      // The session is gone (the commit point); its snapshots leave the prefix cache too.
      await this.tenants.forgetSession(tenant, sessionId).catch(() => {});
      for (const snapshot of new Set([...taken, ...(snapshotId ? [snapshotId] : [])])) await this.snapshots.forget(snapshot);
      return 'deleted';
    }
    return 'busy';
  }

  /**
   * Add items to a conversation (refused while a turn runs: it would not see them consistently).
   * `checkedAgainst`: the transcript the items were checked against (its messages as `get` gave
   * them); when it changed since, nothing is appended (`changed`), so a check and its append act
   * as one.
   */
  async appendItems(tenant: string, sessionId: string, messages: ChatMessage[], checkedAgainst?: readonly ChatMessage[]): Promise<'appended' | 'changed' | 'not_found' | 'busy'> {
    if (!isSessionId(sessionId)) return 'not_found';
    const expected = checkedAgainst ? [String(checkedAgainst.length), checkedAgainst.at(-1)?.id ?? ''] : ['', ''];
    let outcome: 'appended' | 'not_found' | 'busy';
    try {
      outcome = await this.itemScript(APPEND_ITEMS, sessionId, [tenant, ...expected, ...messages.map((message) => JSON.stringify(message))], () => 'appended' as const);
    } catch (error) {
      if (scriptRefusal(error, ['TRANSCRIPT_CHANGED'] as const)) return 'changed';
      throw error;
    }
    if (outcome === 'appended') await this.renewAfterEdit(tenant, sessionId);
    return outcome;
  }

  /**
   * Remove one item of a conversation: a message by its id, or (`callId`) one call of a message
   * (the message goes too when nothing else is left of it). The answers of the calls removed go
   * with them: a tool's answer never stays without its call.
   */
  async deleteItem(tenant: string, sessionId: string, itemId: string, callId = ''): Promise<'deleted' | 'item_not_found' | 'not_found' | 'busy'> {
    if (!isSessionId(sessionId)) return 'not_found';
    const outcome = await this.itemScript(DELETE_ITEM, sessionId, [tenant, itemId, callId], (reply) => (reply === 1 ? 'deleted' as const : 'item_not_found' as const));
    if (outcome === 'deleted') await this.renewAfterEdit(tenant, sessionId);
    return outcome;
  }

  /**
   * After an edit between turns (whose script renewed the session's own keys, RENEW_EDITED_LUA):
   * what lives in other slots lives as long, its current snapshot's ownership and its tenant's
   * count, each only ever later and only while it exists (a delete meanwhile stays a delete).
   */
  private async renewAfterEdit(tenant: string, sessionId: string): Promise<void> {
    try {
      const [ttlText, snapshotId] = await this.redis.hmget(this.keys.session(sessionId), F.ttlSeconds, F.snapshotId);
      const ttlSeconds = Number(ttlText);
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) return; // gone meanwhile
      if (snapshotId) await runScript(this.redis, EXTEND_TTL, [this.keys.snapshotOwners(snapshotId)], [ttlSeconds]);
      await this.tenants.extendSession(tenant, sessionId, ttlSeconds);
    } catch {
      // The edit stands (its own keys were renewed with it); the rest catches up at the next change.
    }
  }

  private async itemScript<T>(script: LuaScript, sessionId: string, args: Array<string | number>, outcome: (reply: unknown) => T): Promise<T | 'not_found' | 'busy'> {
    try {
      return outcome(await runScript(this.redis, script, this.editKeys(sessionId), args));
    } catch (error) {
      return sessionRefusal(error);
    }
  }

  /** KEYS of the edit scripts (APPEND_ITEMS, DELETE_ITEM, SET_METADATA). */
  private editKeys(sessionId: string): string[] {
    return [this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.sessionLock(sessionId), this.keys.sessionSnapshots(sessionId)];
  }

  /** Replace a session's metadata. */
  async setMetadata(tenant: string, sessionId: string, metadata: Record<string, string>): Promise<'updated' | 'not_found'> {
    if (!isSessionId(sessionId)) return 'not_found';
    try {
      await runScript(this.redis, SET_METADATA, this.editKeys(sessionId), [tenant, JSON.stringify(metadata)]);
      await this.renewAfterEdit(tenant, sessionId);
      return 'updated';
    } catch (error) {
      if (scriptRefusal(error, ['NO_SESSION'] as const)) return 'not_found';
      throw error;
    }
  }

  /** The session's state left this node's slot: stop routing its turns here. */
  async clearResidency(sessionId: string, nodeId: string): Promise<void> {
    if (!isSessionId(sessionId)) return;
    await runScript(this.redis, CLEAR_RESIDENCY, [this.keys.session(sessionId)], [nodeId]);
  }
}

async function execOrThrow(transaction: ReturnType<RegionRedis['multi']>): Promise<void> {
  const results = await transaction.exec();
  const failed = results?.find(([error]) => error);
  if (failed) throw failed[0];
}
