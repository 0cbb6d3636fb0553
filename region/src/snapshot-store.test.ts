/**
 * The snapshot store's bytes against a real redis-server, through both ways of moving chunks
 * (node-redis pool and the shared ioredis connection): multi-chunk snapshots round-trip
 * byte-exact, a missing chunk reads as null, and the pool's connections close.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBulkBytes, ioredisBulkBytes, type BulkBytes } from './bulk-bytes.js';
import { regionKeys } from './keys.js';
import { SNAPSHOT_CHUNK_BYTES, SnapshotStore } from './snapshot-store.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';

let server: TestRedis;
beforeAll(async () => {
  server = await startTestRedis();
});
afterAll(async () => server?.stop());

/** Connections named `bamba:bulk:<role>` that the server holds now. */
async function bulkConnections(role: string): Promise<number> {
  const list = (await server.redis.call('CLIENT', 'LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=bamba:bulk:${role} `)).length;
}

const options = (tokenHash: string) => ({ tenant: 'tenant-a', fingerprint: 'f'.repeat(64), tokenCount: 3, tokenHash, indexPrefix: false });

describe.each([
  { path: 'node-redis pool', open: (role: string): BulkBytes => connectBulkBytes(server.target, { role, connections: 3 }) },
  { path: 'shared ioredis connection', open: (): BulkBytes => ioredisBulkBytes(server.redis) },
])('snapshot bytes through the $path', ({ path, open }) => {
  const role = `store-test-${path.replaceAll(' ', '-')}`;
  const keys = regionKeys(`snapshot-test-${role}`, 'local');
  let bulk: BulkBytes;
  let store: SnapshotStore;
  beforeAll(() => {
    bulk = open(role);
    store = new SnapshotStore(server.redis, keys, 1024 ** 3, bulk);
  });
  afterAll(async () => bulk?.close());

  it('round-trips a multi-chunk snapshot byte-exact, and each chunk on its own', async () => {
    const bytes = randomBytes(5 * SNAPSHOT_CHUNK_BYTES + 12_345);
    const info = await store.put(bytes, options('a'.repeat(64)));
    expect(info.bytes).toBe(bytes.length);
    expect(await store.chunkCount(info.snapshotId)).toBe(6);
    const read = await store.read(info.snapshotId);
    expect(read?.equals(bytes)).toBe(true);
    const chunks = await Promise.all(Array.from({ length: 6 }, (_, index) => store.readChunk(info.snapshotId, index)));
    expect(Buffer.concat(chunks as Buffer[]).equals(bytes)).toBe(true);
    expect(chunks.at(-1)?.length).toBe(12_345);
  });

  it('round-trips a snapshot of exactly one chunk and an empty one', async () => {
    for (const bytes of [randomBytes(SNAPSHOT_CHUNK_BYTES), Buffer.alloc(0)]) {
      const info = await store.put(bytes, options(`${bytes.length}`.padStart(64, 'b')));
      expect((await store.read(info.snapshotId))?.equals(bytes)).toBe(true);
    }
  });

  it('reads a snapshot with a missing chunk as null', async () => {
    const info = await store.put(randomBytes(3 * SNAPSHOT_CHUNK_BYTES), options('c'.repeat(64)));
    await server.redis.del(keys.snapshotChunk(info.snapshotId, 1));
    expect(await store.read(info.snapshotId)).toBeNull();
    expect(await store.readChunk(info.snapshotId, 1)).toBeNull();
    expect(await store.readChunk(info.snapshotId, 0)).not.toBeNull();
  });

  it('hands back a chunk of another size as stored (the snapshot header rejects it, not the store)', async () => {
    const info = await store.put(randomBytes(2 * SNAPSHOT_CHUNK_BYTES), options('d'.repeat(64)));
    const foreign = randomBytes(1000);
    await server.redis.set(keys.snapshotChunk(info.snapshotId, 0), foreign);
    const read = await store.read(info.snapshotId);
    expect(read?.length).toBe(SNAPSHOT_CHUNK_BYTES + 1000);
    expect(read?.subarray(0, 1000).equals(foreign)).toBe(true);
  });
});

describe('the node-redis pool', () => {
  it('opens its connections under its role and closes them all, twice over', async () => {
    const bulk = connectBulkBytes(server.target, { role: 'pool-close-test', connections: 3 });
    expect(bulk.description).toBe('node-redis × 3');
    // The connections open in the background; three calls go one over each.
    await Promise.all([0, 1, 2].map((index) => bulk.set(`pool-close-test:${index}`, Buffer.from([index]))));
    expect(await bulkConnections('pool-close-test')).toBe(3);
    await bulk.close();
    await bulk.close();
    expect(await bulkConnections('pool-close-test')).toBe(0);
    await expect(bulk.get('pool-close-test:0')).rejects.toThrow(/closed/);
  });

  it('closes a pool whose connections never opened (no Redis there)', async () => {
    const bulk = connectBulkBytes({ kind: 'single', url: 'redis://127.0.0.1:1' }, { role: 'pool-nowhere', connections: 2, mode: 'queue' });
    await bulk.close();
    await expect(bulk.get('anything')).rejects.toThrow(/closed/);
  });
});
