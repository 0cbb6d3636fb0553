/**
 * Slot accounting for intake: a job is pulled from the queue only after a slot is reserved for
 * it, so a node never holds a job it cannot start. Plain TypeScript: no queue, no engine.
 */
export class SlotScheduler {
  private reserved = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
  }

  /** Reserve a slot; `false` when all are reserved (capacity is a return value). */
  tryReserve(): boolean {
    if (this.reserved >= this.slots) return false;
    this.reserved++;
    return true;
  }

  release(): void {
    if (this.reserved === 0) throw new Error('bug: SlotScheduler.release without a reservation');
    this.reserved--;
    this.waiters.shift()?.();
  }

  /** Resolves once a slot is free (not reserved: call `tryReserve` next). */
  async waitForFree(): Promise<void> {
    if (this.reserved < this.slots) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Wake every waiter (shutdown). */
  wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  get busy(): number { return this.reserved; }
}
