/**
 * Slot accounting for intake: a job is pulled from the queue only after a slot is reserved for
 * it, so a node never holds a job it cannot start. A released slot goes straight to the
 * longest-waiting reservation (handed over, not freed), so one waiter can never keep taking a
 * slot back from another (the region queue's loop from an affinity job, say). Plain TypeScript:
 * no queue, no engine.
 */
export class SlotScheduler {
  private reserved = 0;
  private waiters: Array<(granted: boolean) => void> = [];

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
  }

  /** Reserve a slot now; `false` when all are reserved (capacity is a return value). */
  tryReserve(): boolean {
    if (this.reserved >= this.slots) return false;
    this.reserved++;
    return true;
  }

  /** Wait for a slot and hold it; `false` when woken by `wakeAll` (stopping) without one. */
  async reserve(): Promise<boolean> {
    if (this.tryReserve()) return true;
    return new Promise<boolean>((resolve) => this.waiters.push(resolve));
  }

  /** Give a reservation back: to the first waiter if there is one, else to the pool. */
  release(): void {
    if (this.reserved === 0) throw new Error('bug: SlotScheduler.release without a reservation');
    const next = this.waiters.shift();
    if (next) next(true); // handed over: still reserved, now by the waiter
    else this.reserved--;
  }

  /** Wake every waiter without a slot (shutdown). */
  wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake(false);
  }

  get busy(): number { return this.reserved; }
}
