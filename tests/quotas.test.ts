/**
 * One tenant cannot fill Redis: sessions per tenant and bytes of saved session state per
 * tenant are limited (429 quota_exceeded), other tenants are untouched, and when session-owned
 * snapshots exceed the snapshot budget, eviction neither stalls nor takes the state a turn is
 * committing (turns keep resuming from their snapshots instead of silently replaying).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionClient } from './support/session-client.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('per-tenant limits', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({
      nodeEnv: { BAMBA_RESIDENT_SESSIONS: '0' },
      gatewayEnv: { BAMBA_API_KEYS: 'key-a:tenant-a,key-b:tenant-b,key-c:tenant-c', BAMBA_MAX_SESSIONS_PER_TENANT: '3', BAMBA_MAX_SESSION_BYTES_PER_TENANT: '1000000' },
    });
  });
  afterAll(async () => stack?.stop());

  it('refuses a session beyond the tenant’s limit with 429 quota_exceeded, for creates and forks, and not for other tenants', async () => {
    const a = sessionClient(stack.url, 'key-a');
    const b = sessionClient(stack.url, 'key-b');
    const made = [await a.create(), await a.create(), await a.create()];
    const refused = await fetch(`${stack.url}/v1/sessions`, { method: 'POST', headers: { authorization: 'Bearer key-a', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bamba-tiny' }) });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({ type: 'rate_limit_error', code: 'quota_exceeded' });
    expect((await a.fork(made[0]!)).status).toBe(429);
    await b.create(); // tenant b is not affected
    expect((await a.delete(made[0]!)).status).toBe(200);
    await a.create(); // a place is free again
  });

  it('refuses turns once the tenant’s saved session state reaches its byte limit; freeing state lets turns go on', async () => {
    const c = sessionClient(stack.url, 'key-c');
    const sessions = [await c.create(), await c.create(), await c.create()];
    // A tiny-model snapshot is about 0.42 MB and a session holds its latest: two sessions' state
    // stays under 1 MB (a second turn replaces the first's state), a third session's crosses it.
    expect((await c.turn(sessions[0]!, 'one')).status).toBe(200);
    expect((await c.turn(sessions[1]!, 'two')).status).toBe(200);
    expect((await c.turn(sessions[0]!, 'three')).status).toBe(200);
    expect((await c.turn(sessions[2]!, 'four')).status).toBe(200);
    // A turn's state (and its bytes in the tenant's usage) lands after the turn's end event.
    await stack.waitFor('the fourth turn\'s state', async () => ((await c.get(sessions[2]!)).json.snapshot_bytes > 0 ? true : undefined));
    const refused = await c.turn(sessions[1]!, 'five');
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ code: 'quota_exceeded' });
    expect((await sessionClient(stack.url, 'key-a').chat({ messages: [{ role: 'user', content: 'stateless is fine' }] })).status).toBe(200);
    await c.delete(sessions[0]!);
    expect((await c.turn(sessions[1]!, 'five again')).status).toBe(200);
  });
});

describe('session-owned snapshots beyond the snapshot budget', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // A budget of about two snapshots, three sessions that each own one, nothing kept resident
    // (in a slot or in host memory).
    stack = await startTestStack({ nodeEnv: { BAMBA_RESIDENT_SESSIONS: '0', BAMBA_HOST_TIER_BYTES: '0', BAMBA_SNAPSHOT_BUDGET_BYTES: '900000' } });
  });
  afterAll(async () => stack?.stop());

  it('keeps every live session’s state and the one a commit is about to own: later turns resume from snapshots', async () => {
    const sessions = sessionClient(stack.url);
    const ids = [await sessions.create(), await sessions.create(), await sessions.create()];
    for (const id of ids) expect((await sessions.turn(id, 'first')).status).toBe(200);
    for (const id of ids) {
      const second = await sessions.turn(id, 'second');
      expect(second.status).toBe(200);
      expect(second.resume).toBe('snapshot');
      expect(second.cachedTokens).toBeGreaterThan(0);
    }
    // A turn's state lands after its end event: wait for the last one before reading the store.
    for (const id of ids) await stack.waitFor(`${id}'s snapshot`, async () => ((await sessions.get(id)).json.state === 'snapshot' ? true : undefined));
    // Owned snapshots exceed the budget; the store kept them (the budget bounds cache entries only).
    expect(Number(await stack.redis.get(stack.keys.snapshotBytes))).toBeGreaterThan(900_000);
  });
});
