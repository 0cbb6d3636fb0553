/** Sessions in the region's Redis (keys from the shared key builder, multi-key changes in Lua). */
import { randomUUID } from 'node:crypto';
import {
  DELETE_SESSION_SCRIPT,
  FORK_SESSION_SCRIPT,
  RELEASE_LOCK_SCRIPT,
  sessionFromHash,
  snapshotKeyTemplates,
  type ChatMessage,
  type RedisKeys,
  type SessionRecord,
  type ValidatedCreateSession,
} from '@bamba/shared';
import type { Redis } from 'ioredis';
import type { Sessions, SessionView } from '../ports.js';

const newSessionId = () => `sess_${randomUUID().replace(/-/g, '')}`;

export class RedisSessions implements Sessions {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly ttlSeconds: number) {}

  async create(tenant: string, request: ValidatedCreateSession): Promise<SessionView> {
    const sessionId = newSessionId();
    const createdAtMs = Date.now();
    const messages: ChatMessage[] = request.system ? [{ role: 'system', content: request.system }] : [];
    const transaction = this.redis.multi().hset(this.keys.session(sessionId), {
      tenant, model: request.model, createdAtMs, version: 0, tokenCount: 0, snapshotId: '', snapshotBytes: 0, residentNode: '', metadata: JSON.stringify(request.metadata),
    }).expire(this.keys.session(sessionId), this.ttlSeconds);
    if (messages.length > 0) {
      transaction.rpush(this.keys.sessionTranscript(sessionId), ...messages.map((message) => JSON.stringify(message))).expire(this.keys.sessionTranscript(sessionId), this.ttlSeconds);
    }
    await transaction.exec();
    return { session: sessionFromHash(sessionId, await this.redis.hgetall(this.keys.session(sessionId)))!, messages };
  }

  async get(tenant: string, sessionId: string): Promise<SessionView | null> {
    const [hash, transcript] = await Promise.all([this.redis.hgetall(this.keys.session(sessionId)), this.redis.lrange(this.keys.sessionTranscript(sessionId), 0, -1)]);
    const session = sessionFromHash(sessionId, hash);
    if (!session || session.tenant !== tenant) return null;
    return { session, messages: transcript.map((message) => JSON.parse(message) as ChatMessage) };
  }

  async delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'> {
    try {
      await this.redis.eval(DELETE_SESSION_SCRIPT, 5,
        this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.sessionLock(sessionId), this.keys.snapshotLru, this.keys.snapshotBytes,
        tenant, sessionId, ...snapshotKeyTemplates(this.keys));
      return 'deleted';
    } catch (error) {
      return scriptRefusal(error);
    }
  }

  async fork(tenant: string, sessionId: string): Promise<SessionView | 'not_found' | 'busy'> {
    const forkId = newSessionId();
    const snapshotId = (await this.redis.hget(this.keys.session(sessionId), 'snapshotId')) || 'none';
    try {
      await this.redis.eval(FORK_SESSION_SCRIPT, 6,
        this.keys.session(sessionId), this.keys.sessionTranscript(sessionId), this.keys.session(forkId), this.keys.sessionTranscript(forkId),
        this.keys.snapshotOwners(snapshotId), this.keys.sessionLock(sessionId),
        tenant, forkId, Date.now(), this.ttlSeconds);
    } catch (error) {
      return scriptRefusal(error);
    }
    return (await this.get(tenant, forkId))!;
  }

  async lockTurn(tenant: string, sessionId: string, requestId: string, ttlMs: number): Promise<SessionRecord | 'not_found' | 'busy'> {
    const session = sessionFromHash(sessionId, await this.redis.hgetall(this.keys.session(sessionId)));
    if (!session || session.tenant !== tenant) return 'not_found';
    const taken = await this.redis.set(this.keys.sessionLock(sessionId), requestId, 'PX', ttlMs, 'NX');
    if (taken !== 'OK') return 'busy';
    // Re-read under the lock: the version the turn builds on.
    const locked = sessionFromHash(sessionId, await this.redis.hgetall(this.keys.session(sessionId)));
    if (!locked) {
      await this.unlockTurn(sessionId, requestId);
      return 'not_found';
    }
    return locked;
  }

  async unlockTurn(sessionId: string, requestId: string): Promise<void> {
    await this.redis.eval(RELEASE_LOCK_SCRIPT, 1, this.keys.sessionLock(sessionId), requestId);
  }

  async snapshotExists(snapshotId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.snapshotMeta(snapshotId))) === 1;
  }
}

function scriptRefusal(error: unknown): 'not_found' | 'busy' {
  const message = (error as Error).message;
  if (message.includes('NO_SESSION')) return 'not_found';
  if (message.includes('SESSION_BUSY')) return 'busy';
  throw error;
}
