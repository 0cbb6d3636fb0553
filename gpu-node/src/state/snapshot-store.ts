/**
 * Snapshots in Redis: written in chunks of a few MiB (no single command carries a
 * multi-100-MB value and blocks Redis), metadata written last as the commit point, an LRU
 * index for eviction within a byte budget, and the prefix-cache index by token-sequence hash.
 */
import { randomUUID } from 'node:crypto';
import { EVICT_SNAPSHOTS_SCRIPT, snapshotKeyTemplates, type RedisKeys } from '@bamba/shared';
import type { Redis } from 'ioredis';

/**
 * Largest value one Redis command carries. 1 MiB, not more: ioredis reads 4 MiB replies an
 * order of magnitude slower per byte (measured here: 6 MiB in 4 MiB chunks 60–100 ms, in 1 MiB
 * chunks 4–12 ms), and small values never block Redis for long.
 */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

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
}

export class SnapshotStore {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly budgetBytes: number) {}

  async put(snapshot: Buffer, options: PutSnapshotOptions): Promise<SnapshotInfo> {
    const snapshotId = `snap-${randomUUID().replace(/-/g, '')}`;
    const chunks = Math.max(1, Math.ceil(snapshot.length / SNAPSHOT_CHUNK_BYTES));
    const writes = this.redis.pipeline();
    for (let index = 0; index < chunks; index++) {
      writes.set(this.keys.snapshotChunk(snapshotId, index), snapshot.subarray(index * SNAPSHOT_CHUNK_BYTES, (index + 1) * SNAPSHOT_CHUNK_BYTES));
    }
    await execOrThrow(writes);
    const prefixKey = this.keys.prefixEntry(options.tenant, options.fingerprint, options.tokenHash);
    const commit = this.redis
      .multi()
      .hset(this.keys.snapshotMeta(snapshotId), {
        tenant: options.tenant,
        fingerprint: options.fingerprint,
        tokenCount: options.tokenCount,
        tokenHash: options.tokenHash,
        bytes: snapshot.length,
        chunks,
        createdAtMs: Date.now(),
        ...(options.indexPrefix ? { prefixKey } : {}),
      })
      .zadd(this.keys.snapshotLru, Date.now(), snapshotId)
      .incrby(this.keys.snapshotBytes, snapshot.length);
    if (options.indexPrefix) commit.set(prefixKey, snapshotId);
    await execOrThrow(commit);
    await this.evict();
    return { snapshotId, bytes: snapshot.length, ...options };
  }

  async info(snapshotId: string): Promise<SnapshotInfo | null> {
    const meta = await this.redis.hgetall(this.keys.snapshotMeta(snapshotId));
    if (!meta.chunks) return null;
    return { snapshotId, tenant: meta.tenant!, fingerprint: meta.fingerprint!, tokenCount: Number(meta.tokenCount), tokenHash: meta.tokenHash!, bytes: Number(meta.bytes) };
  }

  /** The snapshot's bytes, or null when it (or any chunk) is gone. Marks it recently used. */
  async read(snapshotId: string): Promise<Buffer | null> {
    const meta = await this.redis.hgetall(this.keys.snapshotMeta(snapshotId));
    if (!meta.chunks) return null;
    const reads = this.redis.pipeline();
    for (let index = 0; index < Number(meta.chunks); index++) reads.getBuffer(this.keys.snapshotChunk(snapshotId, index));
    const results = (await reads.exec()) ?? [];
    const parts: Buffer[] = [];
    for (const [error, value] of results) {
      if (error || !value) return null;
      parts.push(value as Buffer);
    }
    await this.redis.zadd(this.keys.snapshotLru, 'XX', Date.now(), snapshotId);
    return Buffer.concat(parts);
  }

  /** Among candidate token-sequence hashes (longest first), the first with a stored snapshot. */
  async findPrefix(tenant: string, fingerprint: string, tokenHashes: readonly string[]): Promise<{ snapshotId: string; index: number } | null> {
    if (tokenHashes.length === 0) return null;
    const ids = await this.redis.mget(...tokenHashes.map((hash) => this.keys.prefixEntry(tenant, fingerprint, hash)));
    const index = ids.findIndex((id) => id !== null);
    return index === -1 ? null : { snapshotId: ids[index]!, index };
  }

  /** Evict least-recently-used unowned snapshots until the budget holds. */
  async evict(): Promise<number> {
    return (await this.redis.eval(EVICT_SNAPSHOTS_SCRIPT, 2, this.keys.snapshotLru, this.keys.snapshotBytes, this.budgetBytes, ...snapshotKeyTemplates(this.keys))) as number;
  }
}

async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = await pipeline.exec();
  const failed = results?.find(([error]) => error);
  if (failed) throw failed[0];
}
