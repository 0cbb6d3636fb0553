import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionKeys } from './keys.js';
import { NodeRegistry } from './node-registry.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';

let server: TestRedis;
const keys = regionKeys('registry-test', 'local');
beforeAll(async () => { server = await startTestRedis(); });
afterAll(async () => server?.stop());

const status = (nodeId: string) => ({
  nodeId, region: 'local', device: 'cpu' as const, models: [{ id: 'm', contextSize: 1024, fingerprint: 'a'.repeat(64) }],
  slots: 4, busySlots: 0, maxBusySlots: 0, residentSessions: 0, snapshotBudgetBytes: null, completedRequests: 0, accepting: true, startedAtMs: 1, heartbeatAtMs: 2,
});

describe('NodeRegistry', () => {
  it('publishes statuses with the wire version, and leaves out (and reports) a malformed one', async () => {
    const malformed: string[] = [];
    const registry = new NodeRegistry(server.redis, keys, (nodeId) => malformed.push(nodeId));
    await registry.publish(status('good'), 60_000);
    await registry.publish(status('future'), 60_000);
    await server.redis.set(keys.nodeStatus('future'), JSON.stringify({ ...status('future'), v: 2 }), 'PX', 60_000);
    await registry.publish(status('broken'), 60_000);
    await server.redis.set(keys.nodeStatus('broken'), '{"nodeId": 7', 'PX', 60_000);
    const live = await registry.liveNodes();
    expect(live.map((node) => node.nodeId)).toEqual(['good']);
    expect(live[0]!.v).toBe(1);
    expect(malformed.sort()).toEqual(['broken', 'future']);
  });

  it('refuses to publish a status that fails its schema', async () => {
    const registry = new NodeRegistry(server.redis, keys);
    await expect(registry.publish({ ...status('bad'), slots: 0 }, 60_000)).rejects.toMatchObject({ code: 'wire_malformed' });
  });

  it('forgets a node whose status expired', async () => {
    const registry = new NodeRegistry(server.redis, keys);
    await registry.publish(status('short-lived'), 50);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect((await registry.liveNodes()).map((node) => node.nodeId)).not.toContain('short-lived');
    expect(await server.redis.sismember(keys.nodeSet, 'short-lived')).toBe(0);
  });
});
