/** A throwaway private redis-server for a benchmark case, removed afterwards. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalRedis } from '@bamba/cli/local-redis';
import { connectRedis, type RedisTarget, type RegionRedis } from '@bamba/region';

export async function withLocalRedis<T>(use: (redis: RegionRedis, target: RedisTarget) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bamba-bench-redis-'));
  const localRedis = await startLocalRedis({ dataDir, appendOnly: false });
  const target: RedisTarget = { kind: 'single', url: localRedis.url };
  const redis = connectRedis(target, { role: 'bench', mode: 'queue' });
  try {
    return await use(redis, target);
  } finally {
    redis.disconnect();
    await localRedis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
