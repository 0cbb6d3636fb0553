/**
 * Lua scripts for every multi-key Redis change, so each one is atomic. Key names reach the
 * scripts as KEYS, or as templates from the key builder with `{id}` standing for a snapshot or
 * session id, so that `redis-keys.ts` stays the only place that spells a key.
 * (Scripts that build keys from templates need a single Redis, which is what a region runs.)
 */

/**
 * Commit a session turn: transcript append + snapshot pointer + version, together.
 * KEYS[1] session hash, KEYS[2] transcript list, KEYS[3] turn lock,
 * KEYS[4] owners set of the new snapshot (any key when there is none), KEYS[5] owners set of the old one.
 * ARGV[1] request id holding the lock, ARGV[2] expected version, ARGV[3] session id,
 * ARGV[4] new snapshot id ('' = none), ARGV[5] token count, ARGV[6] snapshot bytes,
 * ARGV[7] resident node ('' = none), ARGV[8] TTL seconds, ARGV[9..] messages (JSON) to append.
 * Returns the new version, or an error: LOST_LOCK, VERSION_CONFLICT, NO_SESSION.
 */
export const COMMIT_TURN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NO_SESSION') end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('LOST_LOCK') end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return redis.error_reply('VERSION_CONFLICT') end
for index = 9, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[index]) end
local old = redis.call('HGET', KEYS[1], 'snapshotId') or ''
if old ~= '' and old ~= ARGV[4] then redis.call('SREM', KEYS[5], ARGV[3]) end
redis.call('HSET', KEYS[1], 'version', version + 1, 'tokenCount', ARGV[5], 'snapshotId', ARGV[4], 'snapshotBytes', ARGV[6], 'residentNode', ARGV[7])
if ARGV[4] ~= '' then
  redis.call('SADD', KEYS[4], ARGV[3])
  redis.call('EXPIRE', KEYS[4], ARGV[8])
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('DEL', KEYS[3])
return version + 1
`;

/**
 * Release a turn lock only if this request still holds it.
 * KEYS[1] lock. ARGV[1] request id. Returns 1 when released.
 */
export const RELEASE_LOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Fork a session: a new session with the same transcript and the same snapshot (now owned by
 * both, so no work is copied or redone).
 * KEYS[1] source hash, KEYS[2] source transcript, KEYS[3] new hash, KEYS[4] new transcript,
 * KEYS[5] owners set of the source's snapshot (any key when there is none), KEYS[6] source lock.
 * ARGV[1] tenant, ARGV[2] new session id, ARGV[3] created-at ms, ARGV[4] TTL seconds.
 * Returns 1, or an error: NO_SESSION (missing or another tenant's), SESSION_BUSY.
 */
export const FORK_SESSION_SCRIPT = `
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[6]) == 1 then return redis.error_reply('SESSION_BUSY') end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('HSET', KEYS[3], 'createdAtMs', ARGV[3], 'residentNode', '')
local messages = redis.call('LRANGE', KEYS[2], 0, -1)
for index = 1, #messages do redis.call('RPUSH', KEYS[4], messages[index]) end
local snapshot = redis.call('HGET', KEYS[1], 'snapshotId') or ''
if snapshot ~= '' then redis.call('SADD', KEYS[5], ARGV[2]) end
redis.call('EXPIRE', KEYS[3], ARGV[4])
if #messages > 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 1
`;

/**
 * Shared Lua: key templates and deleting one snapshot (meta, chunks, owners, prefix entry,
 * LRU entry, byte count). Templates come in ARGV[t], ARGV[t+1], ARGV[t+2], ARGV[t+3]:
 * meta, chunk ({id}, {index}), owners, session ({id} = session id).
 */
const SNAPSHOT_LUA = `
local function key(template, id, index)
  local result = string.gsub(template, '{id}', id)
  if index then result = string.gsub(result, '{index}', tostring(index)) end
  return result
end
local function deleteSnapshot(id, lru, bytesKey, metaT, chunkT, ownersT)
  local meta = key(metaT, id)
  local chunks = tonumber(redis.call('HGET', meta, 'chunks') or '0')
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local prefixKey = redis.call('HGET', meta, 'prefixKey')
  if prefixKey and redis.call('GET', prefixKey) == id then redis.call('DEL', prefixKey) end
  for index = 0, chunks - 1 do redis.call('DEL', key(chunkT, id, index)) end
  redis.call('DEL', meta, key(ownersT, id))
  if redis.call('ZREM', lru, id) == 1 then redis.call('DECRBY', bytesKey, bytes) end
end
local function ownedByLiveSession(id, ownersT, sessionT)
  for _, session in ipairs(redis.call('SMEMBERS', key(ownersT, id))) do
    if redis.call('EXISTS', key(sessionT, session)) == 1 then return true end
  end
  return false
end
`;

/**
 * Evict least-recently-used snapshots until the stored bytes fit the budget. A snapshot some
 * live session owns (its latest state) is never evicted; one whose owners all expired is.
 * KEYS[1] LRU zset, KEYS[2] bytes counter.
 * ARGV[1] budget bytes, ARGV[2..5] templates (meta, chunk, owners, session).
 * Returns the number of snapshots evicted.
 */
export const EVICT_SNAPSHOTS_SCRIPT = `${SNAPSHOT_LUA}
local budget = tonumber(ARGV[1])
local evicted = 0
-- Runs after every snapshot write: within budget (the usual case) it must not list every snapshot.
if tonumber(redis.call('GET', KEYS[2]) or '0') <= budget then return 0 end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if tonumber(redis.call('GET', KEYS[2]) or '0') <= budget then break end
  if not ownedByLiveSession(id, ARGV[4], ARGV[5]) then
    deleteSnapshot(id, KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4])
    evicted = evicted + 1
  end
end
return evicted
`;

/**
 * Delete a session: record, transcript, lock, and its latest snapshot unless a fork still owns it.
 * KEYS[1] hash, KEYS[2] transcript, KEYS[3] lock, KEYS[4] LRU zset, KEYS[5] bytes counter.
 * ARGV[1] tenant, ARGV[2] session id, ARGV[3..6] templates (meta, chunk, owners, session).
 * Returns 1, or NO_SESSION (missing or another tenant's), SESSION_BUSY.
 */
export const DELETE_SESSION_SCRIPT = `${SNAPSHOT_LUA}
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return redis.error_reply('NO_SESSION') end
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.error_reply('SESSION_BUSY') end
local snapshot = redis.call('HGET', KEYS[1], 'snapshotId') or ''
redis.call('DEL', KEYS[1], KEYS[2])
if snapshot ~= '' then
  redis.call('SREM', key(ARGV[5], snapshot), ARGV[2])
  if not ownedByLiveSession(snapshot, ARGV[5], ARGV[6]) then
    deleteSnapshot(snapshot, KEYS[4], KEYS[5], ARGV[3], ARGV[4], ARGV[5])
  end
end
return 1
`;
