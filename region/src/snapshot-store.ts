/**
 * State snapshots in a region's Redis: bytes in 1 MiB chunks (no command carries a huge value
 * and blocks Redis; on a Cluster the chunks spread over the shards), metadata written last as
 * the commit point, an index (LRU order, sizes, total bytes) for eviction within a byte budget,
 * and the prefix-cache entries by token-sequence hash.
 *
 * Nothing here needs two slots in one script, so it runs on a single Redis and a Cluster alike.
 * Cleaning a snapshot up is a sequence of idempotent steps (metadata → prefix entry → chunks →
 * index entry), and the index entry goes last: a process that dies half way leaves an index
 * entry without metadata, which the next eviction pass finishes cleaning. A snapshot that a live
 * session owns (its latest state), or that a turn in flight is about to own (pinned), is never
 * evicted.
 */
import { z } from 'zod';
import { ioredisBulkBytes, type BulkBytes } from './bulk-bytes.js';
import type { RegionRedis } from './connection.js';
import { countField } from './hash-fields.js';
import { newSnapshotId, sessionFamily, isSnapshotId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { runScript, type LuaScript } from './scripts.js';

/**
 * Largest value one Redis command carries. 1 MiB, not more: ioredis reads 4 MiB replies an
 * order of magnitude slower per byte (measured here: 6 MiB in 4 MiB chunks 60–100 ms, in 1 MiB
 * chunks 4–12 ms), and small values never block Redis for long.
 */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** Snapshots looked at per eviction pass: bounded work per write whatever the LRU holds. */
const EVICTION_SCAN_LIMIT = 64;
/** An index entry without metadata younger than this may be a write in progress: left alone. */
const ABANDONED_WRITE_GRACE_MS = 10 * 60_000;

export interface SnapshotInfo {
  snapshotId: string;
  tenant: string;
  fingerprint: string;
  tokenCount: number;
  tokenHash: string;
  bytes: number;
}

export interface PutSnapshotOptions {
  tenant: string;
  fingerprint: string;
  tokenCount: number;
  tokenHash: string;
  /** Also register it in the prefix cache (stateless requests can resume from it). */
  indexPrefix: boolean;
  /** The session whose turn took it: the snapshot joins the session's family (Cluster slot). */
  sessionId?: string;
  /** Never evicted within this long (a turn's commit is about to own it). */
  pinMs?: number;
}

/** Fields of a snapshot's metadata that Lua scripts elsewhere read or change. */
export const SNAPSHOT_META_FIELD = { pinnedUntilMs: 'pinnedUntilMs', prefixKey: 'prefixKey' } as const;

const metaSchema = z.object({
  tenant: z.string(),
  fingerprint: z.string(),
  tokenCount: countField,
  tokenHash: z.string(),
  bytes: countField,
  chunks: countField,
});

/**
 * Delete a snapshot's metadata unless a live session owns it or it is pinned.
 * KEYS[1] meta, KEYS[2] owners (SET of session keys, same family slot).
 * Returns {'deleted', prefixKey or ''}, {'kept', reason} or {'gone', ''} (no metadata).
 */
const FORGET_SNAPSHOT: LuaScript = {
  name: 'bambaForgetSnapshot',
  keys: 2,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return {'gone', ''}
end
for _, owner in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', owner) == 1 then return {'kept', 'owned'} end
end
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if tonumber(redis.call('HGET', KEYS[1], '${SNAPSHOT_META_FIELD.pinnedUntilMs}') or '0') > nowMs then return {'kept', 'pinned'} end
local prefixKey = redis.call('HGET', KEYS[1], '${SNAPSHOT_META_FIELD.prefixKey}') or ''
redis.call('DEL', KEYS[1], KEYS[2])
return {'deleted', prefixKey}
`,
};

/** KEYS[1] a prefix-cache entry. ARGV[1] snapshot id. Deletes the entry if it still names that snapshot. */
const DROP_PREFIX_ENTRY: LuaScript = {
  name: 'bambaDropPrefixEntry',
  keys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
};

/**
 * Add a snapshot to the index. KEYS[1] LRU zset, KEYS[2] sizes hash, KEYS[3] bytes counter.
 * ARGV[1] snapshot id, ARGV[2] bytes, ARGV[3] now ms.
 */
const INDEX_ADD: LuaScript = {
  name: 'bambaSnapshotIndexAdd',
  keys: 3,
  lua: `
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then redis.call('INCRBY', KEYS[3], ARGV[2]) end
return 1
`,
};

/**
 * Remove a snapshot from the index. KEYS as INDEX_ADD. ARGV[1] snapshot id.
 * Returns its bytes, or false when it was not indexed.
 */
const INDEX_REMOVE: LuaScript = {
  name: 'bambaSnapshotIndexRemove',
  keys: 3,
  lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
local bytes = redis.call('HGET', KEYS[2], ARGV[1])
if not bytes then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DECRBY', KEYS[3], bytes)
return tonumber(bytes)
`,
};

/**
 * What `forget` did: `deleted` it, found it already `gone` (and finished cleaning up), or left it
 * because a live session `owned` it, it was `pinned`, or it may still be `writing`.
 */
export type ForgetOutcome = 'deleted' | 'gone' | 'owned' | 'pinned' | 'writing';

export class SnapshotStore {
  private readonly bulk: BulkBytes;

  /**
   * `bulk` moves the chunks' bytes (default: the `redis` connection itself); everything else
   * (index, metadata, prefix entries, deletes) goes over `redis`. Whoever passes a `bulk`
   * closes it.
   */
  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys, private readonly budgetBytes: number, bulk?: BulkBytes) {
    this.bulk = bulk ?? ioredisBulkBytes(redis);
  }

  private get indexKeys(): string[] {
    return [this.keys.snapshotLru, this.keys.snapshotSizes, this.keys.snapshotBytes];
  }

  /** Store a snapshot; returns its id and metadata. Evicts least-recently-used ones beyond the budget. */
  async put(snapshot: Buffer, options: PutSnapshotOptions): Promise<SnapshotInfo> {
    const snapshotId = newSnapshotId(options.sessionId ? (sessionFamily(options.sessionId) ?? undefined) : undefined);
    const chunks = Math.max(1, Math.ceil(snapshot.length / SNAPSHOT_CHUNK_BYTES));
    const nowMs = Date.now();
    // Indexed first: if this process dies before the metadata lands, eviction finds the entry
    // without metadata and deletes the chunks written so far.
    await runScript(this.redis, INDEX_ADD, this.indexKeys, [snapshotId, snapshot.length, nowMs]);
    // Every chunk's SET has been answered before the metadata is written: it is the commit point.
    await Promise.all(Array.from({ length: chunks }, (_, index) =>
      this.bulk.set(this.keys.snapshotChunk(snapshotId, index), snapshot.subarray(index * SNAPSHOT_CHUNK_BYTES, (index + 1) * SNAPSHOT_CHUNK_BYTES))));
    const prefixKey = this.keys.prefixEntry(options.tenant, options.fingerprint, options.tokenHash);
    await this.redis.hset(this.keys.snapshotMeta(snapshotId), {
      tenant: options.tenant,
      fingerprint: options.fingerprint,
      tokenCount: options.tokenCount,
      tokenHash: options.tokenHash,
      bytes: snapshot.length,
      chunks,
      createdAtMs: nowMs,
      ...(options.pinMs ? { [SNAPSHOT_META_FIELD.pinnedUntilMs]: nowMs + options.pinMs } : {}),
      ...(options.indexPrefix ? { [SNAPSHOT_META_FIELD.prefixKey]: prefixKey } : {}),
    });
    if (options.indexPrefix) await this.redis.set(prefixKey, snapshotId);
    await this.evict();
    return { snapshotId, tenant: options.tenant, fingerprint: options.fingerprint, tokenCount: options.tokenCount, tokenHash: options.tokenHash, bytes: snapshot.length };
  }

  /** The snapshot's metadata, or null when it is gone (or the id is not one of ours). */
  async info(snapshotId: string): Promise<SnapshotInfo | null> {
    if (!isSnapshotId(snapshotId)) return null;
    const meta = metaSchema.safeParse(await this.redis.hgetall(this.keys.snapshotMeta(snapshotId)));
    if (!meta.success) return null;
    const { tenant, fingerprint, tokenCount, tokenHash, bytes } = meta.data;
    return { snapshotId, tenant, fingerprint, tokenCount, tokenHash, bytes };
  }

  async exists(snapshotId: string): Promise<boolean> {
    return isSnapshotId(snapshotId) && (await this.redis.exists(this.keys.snapshotMeta(snapshotId))) === 1;
  }

  /** The snapshot's bytes, or null when it (or any chunk) is gone. Marks it recently used. */
  async read(snapshotId: string): Promise<Buffer | null> {
    if (!isSnapshotId(snapshotId)) return null;
    const meta = metaSchema.safeParse(await this.redis.hgetall(this.keys.snapshotMeta(snapshotId)));
    if (!meta.success) return null;
    const { bytes, chunks } = meta.data;
    // Each chunk is copied into place as it arrives (while later ones are still on the wire)
    // rather than all concatenated at the end. Chunk i holds bytes [i MiB, (i+1) MiB).
    let snapshot = Buffer.allocUnsafeSlow(bytes);
    let sizesMatch = Math.max(1, Math.ceil(bytes / SNAPSHOT_CHUNK_BYTES)) === chunks;
    const parts = await Promise.all(Array.from({ length: chunks }, async (_, index) => {
      const part = await this.bulk.get(this.keys.snapshotChunk(snapshotId, index));
      if (part !== null && part.length === Math.min(SNAPSHOT_CHUNK_BYTES, bytes - index * SNAPSHOT_CHUNK_BYTES)) part.copy(snapshot, index * SNAPSHOT_CHUNK_BYTES);
      else sizesMatch = false;
      return part;
    }));
    if (parts.some((part) => part === null)) return null;
    // A chunk of another size (not written by this store): the bytes as stored, for the
    // snapshot's own header and checksum to reject.
    if (!sizesMatch) snapshot = Buffer.concat(parts as Buffer[]);
    await this.redis.zadd(this.keys.snapshotLru, 'XX', Date.now(), snapshotId);
    return snapshot;
  }

  /** How many chunks the snapshot is stored in, or null when it is gone. */
  async chunkCount(snapshotId: string): Promise<number | null> {
    if (!isSnapshotId(snapshotId)) return null;
    const meta = metaSchema.safeParse(await this.redis.hgetall(this.keys.snapshotMeta(snapshotId)));
    return meta.success ? meta.data.chunks : null;
  }

  /** One stored chunk (a move reads them one at a time), or null when it is gone. */
  async readChunk(snapshotId: string, index: number): Promise<Buffer | null> {
    if (!isSnapshotId(snapshotId) || !Number.isInteger(index) || index < 0) return null;
    return this.bulk.get(this.keys.snapshotChunk(snapshotId, index));
  }

  /**
   * Among candidate token-sequence hashes (longest first), the first whose prefix-cache entry
   * names a stored snapshot. Entries whose snapshot is gone are dropped on the way.
   */
  async findPrefix(tenant: string, fingerprint: string, tokenHashes: readonly string[]): Promise<{ snapshotId: string; index: number } | null> {
    // One GET per candidate, not MGET: on a Cluster the entries live in different slots.
    const ids = await Promise.all(tokenHashes.map((hash) => this.redis.get(this.keys.prefixEntry(tenant, fingerprint, hash))));
    for (const [index, snapshotId] of ids.entries()) {
      if (snapshotId === null) continue;
      if (await this.exists(snapshotId)) return { snapshotId, index };
      await runScript(this.redis, DROP_PREFIX_ENTRY, [this.keys.prefixEntry(tenant, fingerprint, tokenHashes[index]!)], [snapshotId]);
    }
    return null;
  }

  /**
   * Delete a snapshot unless a live session owns it or it is pinned. Idempotent: safe to repeat
   * after a crash half way. `abandonedAfterMs`: an index entry without metadata is cleaned only
   * if it was last touched before this time (else it may be a write in progress).
   */
  async forget(snapshotId: string, abandonedAfterMs = Number.POSITIVE_INFINITY): Promise<ForgetOutcome> {
    if (!isSnapshotId(snapshotId)) {
      // Not an id of ours (a bug or a foreign writer): drop the index entry so eviction moves on.
      await runScript(this.redis, INDEX_REMOVE, this.indexKeys, [snapshotId]);
      return 'gone';
    }
    const [status, detail] = (await runScript(this.redis, FORGET_SNAPSHOT, [this.keys.snapshotMeta(snapshotId), this.keys.snapshotOwners(snapshotId)], [])) as ['deleted' | 'gone' | 'kept', string];
    if (status === 'kept') return detail === 'pinned' ? 'pinned' : 'owned';
    if (status === 'gone' && abandonedAfterMs !== Number.POSITIVE_INFINITY) {
      const lastUsedMs = Number(await this.redis.zscore(this.keys.snapshotLru, snapshotId));
      if (lastUsedMs > abandonedAfterMs) return 'writing';
    }
    if (detail) await runScript(this.redis, DROP_PREFIX_ENTRY, [detail], [snapshotId]);
    const bytes = Number(await this.redis.hget(this.keys.snapshotSizes, snapshotId));
    const chunks = Math.max(1, Math.ceil(bytes / SNAPSHOT_CHUNK_BYTES));
    await Promise.all(Array.from({ length: chunks }, (_, index) => this.redis.del(this.keys.snapshotChunk(snapshotId, index))));
    await runScript(this.redis, INDEX_REMOVE, this.indexKeys, [snapshotId]);
    return status;
  }

  /** Total snapshot bytes stored. */
  async storedBytes(): Promise<number> {
    return Number((await this.redis.get(this.keys.snapshotBytes)) ?? 0);
  }

  /**
   * Evict least-recently-used snapshots until the stored bytes fit the budget, looking at no
   * more than `EVICTION_SCAN_LIMIT` of them. A snapshot that must stay (owned or pinned) moves
   * to the back of the LRU order, so the next pass looks at others. Returns how many went.
   */
  async evict(): Promise<number> {
    let evicted = 0;
    let scanned = 0;
    let skipped = 0; // entries left in place at the front (writes in progress)
    while (scanned < EVICTION_SCAN_LIMIT && (await this.storedBytes()) > this.budgetBytes) {
      const page = await this.redis.zrange(this.keys.snapshotLru, String(skipped), String(skipped + Math.min(16, EVICTION_SCAN_LIMIT - scanned) - 1));
      if (page.length === 0) break;
      for (const snapshotId of page) {
        scanned++;
        const outcome = await this.forget(snapshotId, Date.now() - ABANDONED_WRITE_GRACE_MS);
        if (outcome === 'owned' || outcome === 'pinned') await this.redis.zadd(this.keys.snapshotLru, 'XX', Date.now(), snapshotId);
        else if (outcome === 'writing') skipped++;
        else evicted++;
        if ((await this.storedBytes()) <= this.budgetBytes) return evicted;
      }
    }
    return evicted;
  }
}
