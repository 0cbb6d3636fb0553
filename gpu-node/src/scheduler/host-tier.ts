/**
 * The node's second state tier: saved states of sessions kept in host RAM after their turn (the
 * bytes the turn's snapshot export produced anyway), within a byte budget, least recently used
 * first out. A session whose state is here resumes without a Redis read, on this node, beyond
 * the few sessions its slots can hold. Plain TypeScript: no engine, no Redis.
 */
export interface HostTierEntry<B extends { length: number }> {
  sessionId: string;
  /** The snapshot these bytes are (the session record names it when they are current). */
  snapshotId: string;
  bytes: B;
  lastUsedMs: number;
}

export class HostTier<B extends { length: number }> {
  private readonly entries = new Map<string, HostTierEntry<B>>();
  private heldBytes = 0;

  constructor(readonly budgetBytes: number) {}

  /**
   * Keep a session's state (replacing what it had here). Returns the sessions pushed out to stay
   * within the budget; a state larger than the whole budget is not kept (the session is returned).
   */
  put(sessionId: string, snapshotId: string, bytes: B, nowMs: number): string[] {
    this.forget(sessionId);
    if (bytes.length > this.budgetBytes) return [sessionId];
    this.entries.set(sessionId, { sessionId, snapshotId, bytes, lastUsedMs: nowMs });
    this.heldBytes += bytes.length;
    const pushedOut: string[] = [];
    while (this.heldBytes > this.budgetBytes) {
      let oldest: HostTierEntry<B> | null = null;
      for (const entry of this.entries.values()) if (!oldest || entry.lastUsedMs < oldest.lastUsedMs) oldest = entry;
      this.forget(oldest!.sessionId);
      pushedOut.push(oldest!.sessionId);
    }
    return pushedOut;
  }

  /** The session's state if it is the one named (the session's current snapshot); else null. */
  get(sessionId: string, snapshotId: string, nowMs: number): B | null {
    const entry = this.entries.get(sessionId);
    if (!entry || entry.snapshotId !== snapshotId) return null;
    entry.lastUsedMs = nowMs;
    return entry.bytes;
  }

  forget(sessionId: string): boolean {
    const entry = this.entries.get(sessionId);
    if (!entry) return false;
    this.entries.delete(sessionId);
    this.heldBytes -= entry.bytes.length;
    return true;
  }

  has(sessionId: string): boolean {
    return this.entries.has(sessionId);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }
}
