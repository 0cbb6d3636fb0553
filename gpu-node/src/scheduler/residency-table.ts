/**
 * Which sessions this node keeps resident in idle slots, and which to give up first (least
 * recently used). Plain TypeScript, generic over the slot type: no engine, no Redis.
 */
export interface Resident<S> {
  sessionId: string;
  slot: S;
  /** Hash of the token sequence the slot holds (checked before reuse). */
  tokenHash: string;
  lastUsedMs: number;
}

export class ResidencyTable<S> {
  private readonly residents = new Map<string, Resident<S>>();

  constructor(readonly capacity: number) {}

  /** Keep a session's slot after its turn. Returns residents pushed out to stay within capacity. */
  keep(sessionId: string, slot: S, tokenHash: string, nowMs: number): Resident<S>[] {
    // An older state of the same session in another slot (a save that landed late) goes out too.
    const replaced = this.residents.get(sessionId);
    this.residents.set(sessionId, { sessionId, slot, tokenHash, lastUsedMs: nowMs });
    const pushedOut: Resident<S>[] = replaced && replaced.slot !== slot ? [replaced] : [];
    while (this.residents.size > this.capacity) pushedOut.push(this.evictLeastRecent()!);
    return pushedOut;
  }

  /** Take a session's slot for its next turn if resident with the expected state; else null. */
  claim(sessionId: string, tokenHash: string): S | null {
    const resident = this.residents.get(sessionId);
    if (!resident || resident.tokenHash !== tokenHash) return null;
    this.residents.delete(sessionId);
    return resident.slot;
  }

  /** Drop a session (its state is stale or gone), returning its slot to free. */
  forget(sessionId: string): Resident<S> | null {
    const resident = this.residents.get(sessionId) ?? null;
    this.residents.delete(sessionId);
    return resident;
  }

  /** Give up the least recently used resident (a job needs its slot). */
  evictLeastRecent(): Resident<S> | null {
    let oldest: Resident<S> | null = null;
    for (const resident of this.residents.values()) if (!oldest || resident.lastUsedMs < oldest.lastUsedMs) oldest = resident;
    if (oldest) this.residents.delete(oldest.sessionId);
    return oldest;
  }

  has(sessionId: string): boolean { return this.residents.has(sessionId); }
  get size(): number { return this.residents.size; }
}
