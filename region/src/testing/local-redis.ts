/**
 * Test support: a private redis-server on a free port for one test file, with a connection to
 * it. (Tests only; the package's code never imports this.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalRedis, type LocalRedis } from '@bamba/cli/local-redis';
import type { RedisTarget } from '../config.js';
import { connectRedis, type RegionRedis } from '../connection.js';

export interface TestRedis {
  target: RedisTarget;
  redis: RegionRedis;
  stop(): Promise<void>;
}

export async function startTestRedis(role = 'test'): Promise<TestRedis> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bamba-region-test-'));
  let server: LocalRedis | null = null;
  try {
    server = await startLocalRedis({ dataDir, appendOnly: false });
    const target: RedisTarget = { kind: 'single', url: server.url };
    const redis = connectRedis(target, { role, mode: 'queue' });
    return {
      target,
      redis,
      async stop() {
        redis.disconnect();
        await server?.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}
