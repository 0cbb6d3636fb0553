/**
 * The session store against a real redis-server: records are parsed with their wire version,
 * commits are atomic and idempotent per request, forks share the snapshot, deletion cleans up.
 */
import { WireFormatError } from '@bamba/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionKeys } from './keys.js';
import { KEEP_SNAPSHOT, SessionStore, TurnCommitRefused } from './session-store.js';
import { SnapshotStore } from './snapshot-store.js';
import { TenantUsage } from './tenant-usage.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';

let server: TestRedis;
let sessions: SessionStore;
let snapshots: SnapshotStore;
const keys = regionKeys('sessions-test', 'local');
beforeAll(async () => {
  server = await startTestRedis();
  snapshots = new SnapshotStore(server.redis, keys, 1024 ** 3);
  sessions = new SessionStore(server.redis, keys, snapshots);
});
afterAll(async () => server?.stop());

const create = (tenant = 'tenant-a') => sessions.create(tenant, { model: 'm', system: 'be brief', metadata: {} }, 3600);
const turn = { requestId: 'req-1', finishReason: 'length' as const, promptTokens: 10, completionTokens: 2, cachedTokens: 0, resume: 'replay' as const };

async function snapshotFor(sessionId: string, tokenHash: string): Promise<string> {
  const info = await snapshots.put(Buffer.from('state bytes'), { tenant: 'tenant-a', fingerprint: 'f'.repeat(64), tokenCount: 3, tokenHash, indexPrefix: true, sessionId, pinMs: 60_000 });
  return info.snapshotId;
}

async function commit(sessionId: string, requestId: string, expectedVersion: number, snapshotId: string, previous: string) {
  await sessions.lockTurn('tenant-a', sessionId, requestId, 60_000);
  return sessions.commitTurn({
    sessionId, tenant: 'tenant-a', ttlSeconds: 3600, requestId, expectedVersion, snapshotId, tokenCount: 3, snapshotBytes: 11, residentNode: '',
    messages: [{ role: 'user', content: `q${expectedVersion}` }, { role: 'assistant', content: `a${expectedVersion}` }],
    turn: { ...turn, requestId },
  }, previous);
}

describe('SessionStore', () => {
  it('refuses a record with an unknown wire version or a malformed field (a typed error, not a cast)', async () => {
    const { session } = await create();
    await server.redis.hset(keys.session(session.id), 'v', '2');
    await expect(sessions.get('tenant-a', session.id)).rejects.toBeInstanceOf(WireFormatError);
    await server.redis.hset(keys.session(session.id), 'v', '1', 'version', 'many');
    await expect(sessions.get('tenant-a', session.id)).rejects.toMatchObject({ code: 'wire_malformed' });
  });

  it('reads ids that are not ours, and other tenants’ sessions, as missing', async () => {
    const { session } = await create();
    expect(await sessions.get('tenant-b', session.id)).toBeNull();
    expect(await sessions.get('tenant-a', 'x:transcript')).toBeNull();
    expect(await sessions.lockTurn('tenant-a', 'sess_nope', 'r', 1000)).toBe('not_found');
    expect(await sessions.delete('tenant-a', '../../etc')).toBe('not_found');
  });

  it('commits a turn once: a retry of the same request finds it committed, another request conflicts', async () => {
    const { session } = await create();
    const snapshotId = await snapshotFor(session.id, '1'.repeat(64));
    expect(await commit(session.id, 'req-1', 0, snapshotId, '')).toMatchObject({ kind: 'committed', version: 1, snapshotId });
    const again = await sessions.commitTurn({
      sessionId: session.id, tenant: 'tenant-a', ttlSeconds: 3600, requestId: 'req-1', expectedVersion: 0, snapshotId, tokenCount: 3, snapshotBytes: 11, residentNode: '',
      messages: [{ role: 'user', content: 'q0' }, { role: 'assistant', content: 'a0' }], turn,
    }, '');
    expect(again).toMatchObject({ kind: 'already-committed', version: 1, answer: 'a0', turn: { requestId: 'req-1', completionTokens: 2 } });
    await expect(sessions.commitTurn({ sessionId: session.id, tenant: 'tenant-a', ttlSeconds: 3600, requestId: 'req-other', expectedVersion: 0, snapshotId: '', tokenCount: 0, snapshotBytes: 0, residentNode: '', messages: [], turn }, snapshotId))
      .rejects.toBeInstanceOf(TurnCommitRefused);
    const loaded = await sessions.load(session.id);
    expect(loaded!.transcript.map((message) => message.content)).toEqual(['be brief', 'q0', 'a0']);
    expect(loaded!.lastTurn?.requestId).toBe('req-1');
  });

  it('a commit that keeps the current snapshot keeps it owned for the session\'s new lifetime', async () => {
    const { session } = await create();
    const snapshotId = await snapshotFor(session.id, '5'.repeat(64));
    await commit(session.id, 'req-keep-1', 0, snapshotId, '');
    // Its ownership is about to run out (a session idle for most of its TTL)…
    await server.redis.expire(keys.snapshotOwners(snapshotId), 5);
    await server.redis.expire(keys.sessionSnapshots(session.id), 5);
    expect(await commit(session.id, 'req-keep-2', 1, KEEP_SNAPSHOT, snapshotId)).toMatchObject({ kind: 'committed', version: 2, snapshotId });
    // …and the turn that kept it renewed it with the session.
    expect(await server.redis.ttl(keys.snapshotOwners(snapshotId))).toBeGreaterThan(3000);
    expect(await server.redis.ttl(keys.sessionSnapshots(session.id))).toBeGreaterThan(3000);
  });

  it('appends items checked against a transcript only while it is still that transcript, and a call\'s delete takes its answer along', async () => {
    const { session } = await create();
    const read = async () => (await sessions.get('tenant-a', session.id))!.messages;
    const call = (id: string) => ({ role: 'assistant' as const, content: '', id: `msg_${id}`, toolCalls: [{ id, name: 'f', arguments: '{"s": "a/b \\u00e9 😀"}' }, { id: `${id}_2`, name: 'g', arguments: '{}' }] });
    const checked = await read();
    expect(await sessions.appendItems('tenant-a', session.id, [call('call_a')], checked)).toBe('appended');
    // Checked against the transcript before that append: refused, nothing added.
    expect(await sessions.appendItems('tenant-a', session.id, [call('call_a')], checked)).toBe('changed');
    expect(await sessions.appendItems('tenant-a', session.id, [{ role: 'tool', content: 'out', id: 'msg_out', toolCallId: 'call_a' }], await read())).toBe('appended');
    expect((await read()).map((message) => message.id)).toEqual([...checked.map((message) => message.id), 'msg_call_a', 'msg_out']);
    // One call of two goes, with its answer; the message keeps the other, its arguments as they were.
    expect(await sessions.deleteItem('tenant-a', session.id, 'fc_call_a', 'call_a')).toBe('deleted');
    const after = await read();
    expect(after.slice(checked.length)).toEqual([{ ...call('call_a'), toolCalls: [call('call_a').toolCalls[1]] }]);
    expect(await sessions.deleteItem('tenant-a', session.id, 'fc_call_a', 'call_a')).toBe('item_not_found');
  });

  it('an edit between turns (items added or removed, metadata set) renews the session as a turn does, never shortening it', async () => {
    const { session } = await create();
    const snapshotId = await snapshotFor(session.id, '6'.repeat(64));
    await commit(session.id, 'req-edit-1', 0, snapshotId, '');
    const renewed = [keys.session(session.id), keys.sessionTranscript(session.id), keys.sessionSnapshots(session.id), keys.snapshotOwners(snapshotId)];
    const runOut = async () => {
      for (const key of renewed) await server.redis.expire(key, 5); // idle for most of its TTL
      await server.redis.zadd(keys.tenantSessions('tenant-a'), Date.now() + 5000, session.id);
    };
    const lifetimes = async () => [...(await Promise.all(renewed.map((key) => server.redis.ttl(key)))), Math.round((Number(await server.redis.zscore(keys.tenantSessions('tenant-a'), session.id)) - Date.now()) / 1000)];
    await runOut();
    expect(await sessions.appendItems('tenant-a', session.id, [{ role: 'user', content: 'added', id: 'msg_edit' }])).toBe('appended');
    for (const seconds of await lifetimes()) expect(seconds).toBeGreaterThan(3000);
    await runOut();
    expect(await sessions.setMetadata('tenant-a', session.id, { topic: 'x' })).toBe('updated');
    for (const seconds of await lifetimes()) expect(seconds).toBeGreaterThan(3000);
    await runOut();
    expect(await sessions.deleteItem('tenant-a', session.id, 'msg_edit')).toBe('deleted');
    for (const seconds of await lifetimes()) expect(seconds).toBeGreaterThan(3000);
    // A lock that keeps the session longer than its TTL is not cut short by an edit.
    await server.redis.expire(keys.session(session.id), 7200);
    await sessions.setMetadata('tenant-a', session.id, { topic: 'y' });
    expect(await server.redis.ttl(keys.session(session.id))).toBeGreaterThan(3600);
    // An edit's renewal that lands after a delete (they take no lock) never counts the deleted session again.
    await new TenantUsage(server.redis, keys).forgetSession('tenant-a', session.id);
    await new TenantUsage(server.redis, keys).extendSession('tenant-a', session.id, 3600);
    expect(await server.redis.zscore(keys.tenantSessions('tenant-a'), session.id)).toBeNull();
  });

  it('taking a turn lock keeps the session alive, and counted against its tenant, at least as long as the lock', async () => {
    const { session } = await create();
    await server.redis.expire(keys.session(session.id), 2);
    await server.redis.expire(keys.sessionTranscript(session.id), 2);
    await server.redis.zadd(keys.tenantSessions('tenant-a'), Date.now() + 2000, session.id);
    expect(await sessions.lockTurn('tenant-a', session.id, 'req-long', 60_000)).toMatchObject({ id: session.id });
    expect(await server.redis.pttl(keys.session(session.id))).toBeGreaterThan(50_000);
    expect(await server.redis.pttl(keys.sessionTranscript(session.id))).toBeGreaterThan(50_000);
    expect(Number(await server.redis.zscore(keys.tenantSessions('tenant-a'), session.id)) - Date.now()).toBeGreaterThan(50_000);
    // Never shortened: a session that lives longer than the lock keeps its own expiry.
    const { session: longLived } = await create();
    const expiry = Number(await server.redis.zscore(keys.tenantSessions('tenant-a'), longLived.id));
    await sessions.lockTurn('tenant-a', longLived.id, 'req-short', 1000);
    expect(Number(await server.redis.zscore(keys.tenantSessions('tenant-a'), longLived.id))).toBe(expiry);
  });

  it('commits without the snapshot when it vanished before the commit (the next turn replays)', async () => {
    const { session } = await create();
    const snapshotId = await snapshotFor(session.id, '2'.repeat(64));
    await server.redis.del(keys.snapshotMeta(snapshotId));
    expect(await commit(session.id, 'req-gone', 0, snapshotId, '')).toMatchObject({ kind: 'committed', version: 1, snapshotId: '' });
    expect((await sessions.load(session.id))!.session).toMatchObject({ snapshotId: '', tokenCount: 0, version: 1 });
  });

  it('forks onto the same snapshot and deleting the source keeps the fork’s state', async () => {
    const { session } = await create();
    const snapshotId = await snapshotFor(session.id, '3'.repeat(64));
    await commit(session.id, 'req-f', 0, snapshotId, '');
    const fork = await sessions.fork('tenant-a', session.id);
    if (typeof fork === 'string') throw new Error(fork);
    expect(fork.session.snapshotId).toBe(snapshotId);
    expect(fork.messages).toEqual((await sessions.get('tenant-a', session.id))!.messages);
    expect(await sessions.delete('tenant-a', session.id)).toBe('deleted');
    expect(await snapshots.exists(snapshotId)).toBe(true); // the fork still owns it
    expect(await sessions.delete('tenant-a', fork.session.id)).toBe('deleted');
    expect(await snapshots.exists(snapshotId)).toBe(false);
    expect(await server.redis.exists(keys.prefixEntry('tenant-a', 'f'.repeat(64), '3'.repeat(64)))).toBe(0); // gone from the prefix cache too
  });

  it('forks onto the snapshot current when the fork commits, even when a turn commits in between', async () => {
    const { session } = await create();
    const first = await snapshotFor(session.id, '4'.repeat(64));
    await commit(session.id, 'req-race-1', 0, first, '');
    const second = await snapshotFor(session.id, '5'.repeat(64));
    // A turn commits right after the fork read the source's snapshot id.
    const redis = server.redis as unknown as { hget: (...args: unknown[]) => Promise<string | null> };
    const hget = redis.hget.bind(server.redis);
    let raced = false;
    redis.hget = async (...args: unknown[]) => {
      const value = await hget(...args);
      if (!raced) {
        raced = true;
        await commit(session.id, 'req-race-2', 1, second, first);
      }
      return value;
    };
    let fork;
    try {
      fork = await sessions.fork('tenant-a', session.id);
    } finally {
      redis.hget = hget;
    }
    if (typeof fork === 'string') throw new Error(fork);
    expect(raced).toBe(true);
    expect(fork.session.snapshotId).toBe(second);
    expect(fork.messages).toHaveLength(5);
    expect(await server.redis.sismember(keys.snapshotOwners(second), keys.session(fork.session.id))).toBe(1);
    expect(await server.redis.sismember(keys.snapshotOwners(first), keys.session(fork.session.id))).toBe(0);
    expect(await server.redis.ttl(keys.snapshotOwners(second))).toBeGreaterThan(3000); // follows the fork's TTL
    expect(await sessions.delete('tenant-a', session.id)).toBe('deleted');
    expect(await snapshots.exists(second)).toBe(true); // still the fork's state
  });

  it('forks after some messages: those only, no snapshot, turns = answers kept; more than it has is refused', async () => {
    const { session } = await create();
    const first = await snapshotFor(session.id, 'c'.repeat(64));
    await commit(session.id, 'req-partial-1', 0, first, '');
    await commit(session.id, 'req-partial-2', 1, await snapshotFor(session.id, 'd'.repeat(64)), first);
    const fork = await sessions.fork('tenant-a', session.id, 3);
    if (typeof fork === 'string') throw new Error(`fork refused: ${fork}`);
    expect(fork.messages.map((message) => message.content)).toEqual(['be brief', 'q0', 'a0']);
    expect(fork.session).toMatchObject({ version: 1, snapshotId: '', tokenCount: 0, snapshotBytes: 0 });
    expect(await sessions.fork('tenant-a', session.id, 6)).toBe('too_few_messages');
    expect((await sessions.get('tenant-a', session.id))?.messages).toHaveLength(5); // the source is untouched
  });

  it('counts the live sessions of every tenant in the region', async () => {
    const tenants = new TenantUsage(server.redis, keys);
    const before = await tenants.regionSessions();
    const mine = await create('tenant-count-a');
    await create('tenant-count-b');
    expect(await tenants.regionSessions()).toBe(before + 2);
    await sessions.delete('tenant-count-a', mine.session.id);
    expect(await tenants.regionSessions()).toBe(before + 1);
  });

  it('counts sessions against their tenant and refuses one beyond the limit; deleting frees a place', async () => {
    const tenant = 'tenant-quota';
    const made = [];
    for (let index = 0; index < 2; index++) made.push((await sessions.create(tenant, { model: 'm', system: null, metadata: {} }, 3600, 2)).session.id);
    await expect(sessions.create(tenant, { model: 'm', system: null, metadata: {} }, 3600, 2)).rejects.toMatchObject({ status: 429, code: 'quota_exceeded' });
    await expect(sessions.fork(tenant, made[0]!, null, 2)).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(await sessions.usage(tenant)).toEqual({ sessions: 2, sessionBytes: 0 });
    await sessions.delete(tenant, made[0]!);
    await sessions.create(tenant, { model: 'm', system: null, metadata: {} }, 3600, 2);
    expect((await sessions.usage(tenant)).sessions).toBe(2);
    expect((await sessions.usage('tenant-a')).sessions).toBeGreaterThan(0); // another tenant counts apart
  });
});
