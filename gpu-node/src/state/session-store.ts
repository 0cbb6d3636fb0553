/**
 * The gpu-node's view of sessions in Redis: read a session with its transcript, and commit a
 * finished turn atomically (transcript + snapshot pointer + version in one Lua script).
 */
import { COMMIT_TURN_SCRIPT, sessionFromHash, type ChatMessage, type RedisKeys, type SessionRecord } from '@bamba/shared';
import type { Redis } from 'ioredis';

export interface TurnCommit {
  sessionId: string;
  requestId: string;
  expectedVersion: number;
  messages: ChatMessage[];
  snapshotId: string;
  tokenCount: number;
  snapshotBytes: number;
  residentNode: string;
}

/** Why a commit was refused: the turn lost its lock, raced another, or the session is gone. */
export class TurnCommitRefused extends Error {
  constructor(readonly reason: 'LOST_LOCK' | 'VERSION_CONFLICT' | 'NO_SESSION') {
    super(`turn commit refused: ${reason}`);
  }
}

export class SessionStore {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly ttlSeconds: number) {}

  async load(sessionId: string): Promise<{ session: SessionRecord; transcript: ChatMessage[] } | null> {
    const [hash, transcript] = await Promise.all([
      this.redis.hgetall(this.keys.session(sessionId)),
      this.redis.lrange(this.keys.sessionTranscript(sessionId), 0, -1),
    ]);
    const session = sessionFromHash(sessionId, hash);
    if (!session) return null;
    return { session, transcript: transcript.map((message) => JSON.parse(message) as ChatMessage) };
  }

  /** Returns the new version. Throws `TurnCommitRefused` when the commit must not happen. */
  async commitTurn(commit: TurnCommit, previousSnapshotId: string): Promise<number> {
    try {
      return (await this.redis.eval(
        COMMIT_TURN_SCRIPT,
        5,
        this.keys.session(commit.sessionId),
        this.keys.sessionTranscript(commit.sessionId),
        this.keys.sessionLock(commit.sessionId),
        this.keys.snapshotOwners(commit.snapshotId || 'none'),
        this.keys.snapshotOwners(previousSnapshotId || 'none'),
        commit.requestId,
        commit.expectedVersion,
        commit.sessionId,
        commit.snapshotId,
        commit.tokenCount,
        commit.snapshotBytes,
        commit.residentNode,
        this.ttlSeconds,
        ...commit.messages.map((message) => JSON.stringify(message)),
      )) as number;
    } catch (error) {
      const reason = (error as Error).message.match(/LOST_LOCK|VERSION_CONFLICT|NO_SESSION/)?.[0];
      if (reason) throw new TurnCommitRefused(reason as TurnCommitRefused['reason']);
      throw error;
    }
  }

  /** The session's state left this node's slot (evicted): stop routing its turns here. */
  async clearResidency(sessionId: string, nodeId: string): Promise<void> {
    const key = this.keys.session(sessionId);
    if ((await this.redis.hget(key, 'residentNode')) === nodeId) await this.redis.hset(key, 'residentNode', '');
  }
}
