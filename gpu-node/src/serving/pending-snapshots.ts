/**
 * Prefix-cache snapshots this node is still writing. A stateless request's answer ends before
 * its snapshot is stored (the client should not wait for it), so a follow-up that re-sends the
 * history at once could miss the cache; a follow-up on this node waits for the write in flight
 * instead of replaying. (A follow-up on another node replays: correct, only slower.)
 */
const WAIT_LIMIT_MS = 5_000;

export class PendingSnapshots {
  private readonly pending = new Map<string, Promise<void>>();

  static key(tenant: string, fingerprint: string, tokenHash: string): string {
    return `${tenant}\u0000${fingerprint}\u0000${tokenHash}`;
  }

  /** A session turn's state being saved after its end event (its next turn here waits for it). */
  static sessionKey(sessionId: string): string {
    return `session\u0000${sessionId}`;
  }

  /** Remember `write` under `key` until it settles. */
  track(key: string, write: Promise<unknown>): void {
    const settled = write.then(() => {}, () => {});
    this.pending.set(key, settled);
    void settled.then(() => { if (this.pending.get(key) === settled) this.pending.delete(key); });
  }

  /** Wait (a few seconds at most) for any write in flight under one of `keys`. */
  async settle(keys: readonly string[]): Promise<void> {
    const writes = keys.flatMap((key) => this.pending.get(key) ?? []);
    if (writes.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(writes), new Promise<void>((resolve) => { timer = setTimeout(resolve, WAIT_LIMIT_MS); })]);
    clearTimeout(timer);
  }

  get size(): number {
    return this.pending.size;
  }
}
