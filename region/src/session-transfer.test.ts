/**
 * Sessions crossing regions, against a real redis-server: a replica is kept only when newer and
 * never while a turn runs; a move holds the session's lock, imports under a new id that a retry
 * reproduces, and swaps the source for a forwarding record only while it still holds the lock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionKeys } from './keys.js';
import { SessionStore } from './session-store.js';
import { SessionTransfer, type SessionCopy } from './session-transfer.js';
import { SnapshotStore } from './snapshot-store.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';

let server: TestRedis;
const us = regionKeys('transfer-test', 'us');
const eu = regionKeys('transfer-test', 'eu');
const stores = (keys: typeof us) => {
  const snapshots = new SnapshotStore(server.redis, keys, 1024 ** 3);
  return { snapshots, sessions: new SessionStore(server.redis, keys, snapshots), transfer: new SessionTransfer(server.redis, keys, snapshots) };
};
beforeAll(async () => { server = await startTestRedis(); });
afterAll(async () => server?.stop());

const turn = { requestId: 'r', finishReason: 'length' as const, promptTokens: 1, completionTokens: 1, cachedTokens: 0, resume: 'replay' as const };

async function sessionWithTurns(turns: number) {
  const { sessions } = stores(us);
  const { session } = await sessions.create('tenant-a', { model: 'm', system: 'sys', metadata: { k: 'v' } }, 3600);
  for (let version = 0; version < turns; version++) {
    const requestId = `req-${version}`;
    await sessions.lockTurn('tenant-a', session.id, requestId, 60_000);
    await sessions.commitTurn({ sessionId: session.id, tenant: 'tenant-a', ttlSeconds: 3600, requestId, expectedVersion: version, snapshotId: '', tokenCount: 0, snapshotBytes: 0, residentNode: '', messages: [{ role: 'user', content: `q${version}`, id: `msg_q${version}` }, { role: 'assistant', content: `a${version}`, id: `msg_a${version}` }], turn: { ...turn, requestId } }, '');
  }
  return session.id;
}

describe('replicas', () => {
  it('are ids of their home region, kept when newer, ignored when not, and never applied while a turn runs', async () => {
    const id = await sessionWithTurns(2);
    expect(id).toMatch(/^sess_us_[0-9a-f]{32}$/);
    const copy = (await stores(us).transfer.copyOf(id))!.copy;
    const backup = stores(eu);
    expect(await backup.transfer.applyReplica(copy)).toBe('applied');
    expect((await backup.sessions.get('tenant-a', id))?.messages.map((message) => message.content)).toEqual(['sys', 'q0', 'a0', 'q1', 'a1']);
    expect(await backup.transfer.applyReplica(copy)).toBe('stale'); // again: no change
    const older: SessionCopy = { ...copy, version: 1, messages: copy.messages.slice(0, 3) };
    expect(await backup.transfer.applyReplica(older)).toBe('stale');
    expect((await backup.sessions.get('tenant-a', id))?.session.version).toBe(2);
    await backup.sessions.lockTurn('tenant-a', id, 'running', 60_000);
    expect(await backup.transfer.applyReplica({ ...copy, version: 3, messages: [...copy.messages, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' }] })).toBe('busy');
    expect((await backup.sessions.get('tenant-a', id))?.session.version).toBe(2);
    await backup.sessions.unlockTurn(id, 'running');
    // The home region's newer copy wins at the backup, whatever the backup holds (an item deleted at home goes).
    const trimmed: SessionCopy = { ...copy, version: 3, messages: [...copy.messages.slice(0, 3), { role: 'user', content: 'q2', id: 'msg_q2' }, { role: 'assistant', content: 'a2', id: 'msg_a2' }] };
    expect(await backup.transfer.applyReplica(trimmed)).toBe('applied');
    expect((await backup.sessions.get('tenant-a', id))?.messages.map((message) => message.content)).toEqual(['sys', 'q0', 'a0', 'q2', 'a2']);
  });

  it('coming home, must continue the home history: a diverged copy is a conflict and changes nothing', async () => {
    const id = await sessionWithTurns(2);
    const home = stores(us);
    const copy = (await home.transfer.copyOf(id))!.copy;
    const forked: SessionCopy = { ...copy, version: 3, messages: [...copy.messages.slice(0, 3), { role: 'user', content: 'other', id: 'msg_other' }, { role: 'assistant', content: 'x', id: 'msg_x' }, { role: 'user', content: 'q2', id: 'msg_q2' }, { role: 'assistant', content: 'a2', id: 'msg_a2' }] };
    expect(await home.transfer.applyReplica(forked)).toBe('conflict');
    expect((await home.sessions.get('tenant-a', id))?.messages.map((message) => message.content)).toEqual(['sys', 'q0', 'a0', 'q1', 'a1']);
    const continued: SessionCopy = { ...copy, version: 3, messages: [...copy.messages, { role: 'user', content: 'q2', id: 'msg_q2' }, { role: 'assistant', content: 'a2', id: 'msg_a2' }] };
    expect(await home.transfer.applyReplica(continued)).toBe('applied');
    expect((await home.sessions.get('tenant-a', id))?.session.version).toBe(3);
  });

  it('once dropped, are not brought back by a replication job still in flight', async () => {
    const id = await sessionWithTurns(1);
    const copy = (await stores(us).transfer.copyOf(id))!.copy;
    const backup = stores(eu);
    expect(await backup.transfer.applyReplica(copy)).toBe('applied');
    expect(await stores(us).transfer.dropReplica(id, stores(us).sessions)).toBe('not_found'); // never a region's own session
    expect(await backup.transfer.dropReplica(id, backup.sessions)).toBe('dropped');
    expect(await backup.transfer.applyReplica({ ...copy, version: 2 })).toBe('moved');
    expect(await backup.sessions.get('tenant-a', id)).toBeNull();
  });
});

describe('moves', () => {
  it('lock the source, import under a reproducible id, then leave a forwarding record', async () => {
    const id = await sessionWithTurns(1);
    const source = stores(us);
    const target = stores(eu);
    const snapshot = await source.snapshots.put(Buffer.alloc(3 * 1024 * 1024 + 5, 7), { tenant: 'tenant-a', fingerprint: 'f'.repeat(64), tokenCount: 9, tokenHash: 'h'.repeat(64), indexPrefix: false, sessionId: id });
    await server.redis.hset(us.session(id), 'snapshotId', snapshot.snapshotId, 'tokenCount', '9', 'snapshotBytes', String(snapshot.bytes));

    expect(await source.transfer.exportForMove(id, 'tenant-b', 'move-'.padEnd(37, '1'), 60_000)).toBe('not_found'); // another tenant's
    const moveId = `move-${'a'.repeat(32)}`;
    const exported = await source.transfer.exportForMove(id, 'tenant-a', moveId, 60_000);
    if (typeof exported === 'string' || 'movedTo' in exported) throw new Error('expected an export');
    expect(exported.snapshot).toMatchObject({ snapshotId: snapshot.snapshotId, chunks: 4, bytes: snapshot.bytes });
    // Locked for the move: no turn starts, no other move either.
    expect(await source.sessions.lockTurn('tenant-a', id, 'turn', 60_000)).toBe('busy');
    expect(await source.transfer.exportForMove(id, 'tenant-a', `move-${'b'.repeat(32)}`, 60_000)).toBe('busy');
    expect(await source.transfer.exportForMove(id, 'tenant-a', moveId, 60_000)).not.toBe('busy'); // the same move may retry

    const chunks = await Promise.all(Array.from({ length: 4 }, (_, index) => source.snapshots.readChunk(snapshot.snapshotId, index)));
    const newId = target.transfer.movedId(id, moveId);
    expect(newId).toBe(target.transfer.movedId(id, moveId));
    expect(newId).toMatch(/^sess_eu_/);
    const stored = await target.snapshots.put(Buffer.concat(chunks as Buffer[]), { tenant: 'tenant-a', fingerprint: 'f'.repeat(64), tokenCount: 9, tokenHash: 'h'.repeat(64), indexPrefix: false, sessionId: newId, pinMs: 60_000 });
    await target.transfer.importMoved(newId, exported.copy, stored);
    const moved = await target.sessions.get('tenant-a', newId);
    expect(moved?.session).toMatchObject({ version: 1, snapshotId: stored.snapshotId, tokenCount: 9, metadata: { k: 'v' } });
    expect(await target.snapshots.read(stored.snapshotId)).toEqual(Buffer.concat(chunks as Buffer[]));

    expect(await source.transfer.commitMove(id, `move-${'c'.repeat(32)}`, newId)).toBe('lost'); // not the lock holder
    expect(await source.transfer.commitMove(id, moveId, newId)).toBe('moved');
    expect(await source.transfer.commitMove(id, moveId, newId)).toBe('moved'); // a retry after the swap
    expect(await source.sessions.get('tenant-a', id)).toBeNull();
    expect(await source.transfer.forwardOf('tenant-a', id)).toBe(newId);
    expect(await source.transfer.forwardOf('tenant-b', id)).toBeNull(); // another tenant learns nothing
    expect(await source.snapshots.exists(snapshot.snapshotId)).toBe(false);
    expect(await source.transfer.exportForMove(id, 'tenant-a', moveId, 60_000)).toEqual({ movedTo: newId });
    expect(await source.transfer.applyReplica(exported.copy)).toBe('moved'); // a late replica does not bring it back
  });

  it('moved back and forth, point every former id at the newest one (one hop, however many moves)', async () => {
    let id = await sessionWithTurns(1);
    const first = id;
    const regions = [stores(us), stores(eu)];
    const ids = [id];
    for (let move = 0; move < 5; move++) {
      const source = regions[move % 2]!;
      const target = regions[(move + 1) % 2]!;
      const moveId = `move-${String(move).repeat(32)}`;
      const exported = await source.transfer.exportForMove(id, 'tenant-a', moveId, 60_000);
      if (typeof exported === 'string' || 'movedTo' in exported) throw new Error('expected an export');
      const newId = target.transfer.movedId(id, moveId);
      await target.transfer.importMoved(newId, exported.copy, null);
      expect(await source.transfer.commitMove(id, moveId, newId)).toBe('moved');
      id = newId;
      ids.push(id);
      // Every former id, in whichever region holds its record, leads straight to the newest.
      for (const former of ids.slice(0, -1)) {
        const home = former.startsWith('sess_us_') ? regions[0]! : regions[1]!;
        expect(await home.transfer.forwardOf('tenant-a', former)).toBe(id);
      }
    }
    const { copy } = (await regions[1]!.transfer.copyOf(id))!;
    expect(copy.formerIds).toEqual(ids.slice(0, -1));
    // A replica keeps them, so the copy that comes home after a failover brings them back.
    expect(await regions[0]!.transfer.applyReplica(copy)).toBe('applied');
    expect((await regions[0]!.transfer.copyOf(id))?.copy.formerIds).toEqual(ids.slice(0, -1));
    expect(await regions[0]!.transfer.forwardOf('tenant-b', first)).toBeNull(); // another tenant still learns nothing

    // A fork is another session: moving it leaves the former ids leading to the session they were.
    const fork = await regions[1]!.sessions.fork('tenant-a', id, null);
    if (typeof fork === 'string') throw new Error(`fork: ${fork}`);
    expect((await regions[1]!.transfer.copyOf(fork.session.id))?.copy.formerIds).toBeUndefined();
    const moveId = `move-${'f'.repeat(32)}`;
    const exported = await regions[1]!.transfer.exportForMove(fork.session.id, 'tenant-a', moveId, 60_000);
    if (typeof exported === 'string' || 'movedTo' in exported) throw new Error('expected an export');
    const forkMoved = regions[0]!.transfer.movedId(fork.session.id, moveId);
    await regions[0]!.transfer.importMoved(forkMoved, exported.copy, null);
    expect(await regions[1]!.transfer.commitMove(fork.session.id, moveId, forkMoved)).toBe('moved');
    expect(await regions[0]!.transfer.forwardOf('tenant-a', first)).toBe(id);
  });

  it('released, leave the session as it was', async () => {
    const id = await sessionWithTurns(1);
    const source = stores(us);
    const moveId = `move-${'d'.repeat(32)}`;
    await source.transfer.exportForMove(id, 'tenant-a', moveId, 60_000);
    await source.transfer.releaseMove(id, moveId);
    expect(await source.sessions.lockTurn('tenant-a', id, 'turn', 60_000)).not.toBe('busy');
    expect((await source.sessions.get('tenant-a', id))?.session.version).toBe(1);
  });
});
