/**
 * Slot accounting for intake: a job is pulled from the queue only after a slot is reserved for
 * it, so a node never holds a job it cannot start. A released slot goes straight to the
 * longest-waiting reservation that may take it (handed over, not freed), so one waiter can never
 * keep taking a slot back from another (the region queue's loop from an affinity job, say).
 * A batch reservation never takes the last free slot (of a node with more than one): there is
 * always a slot for the next interactive request, which then waits for no batch request at all.
 * A reservation held by a loop waiting for an interactive job is that slot (`awaitingJob`).
 * Plain TypeScript: no queue, no engine.
 */
export type SlotKind = 'any' | 'batch';

export class SlotScheduler {
  private reserved = 0;
  /** Reservations held by loops waiting for an interactive job: the slot kept for one. */
  private awaiting = 0;
  private waiters: Array<{ kind: SlotKind; resolve: (granted: boolean) => void }> = [];

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
  }

  private fits(kind: SlotKind): boolean {
    if (this.reserved >= this.slots) return false;
    if (kind === 'batch' && this.slots > 1) return this.reserved - Math.min(this.awaiting, 1) < this.slots - 1;
    return true;
  }

  /** Reserve a slot now; `false` when none may be taken (capacity is a return value). */
  tryReserve(kind: SlotKind = 'any'): boolean {
    if (!this.fits(kind)) return false;
    this.reserved++;
    return true;
  }

  /** Wait for a slot and hold it; `false` when woken by `wakeAll` (stopping) without one. */
  async reserve(kind: SlotKind = 'any'): Promise<boolean> {
    if (this.tryReserve(kind)) return true;
    return new Promise<boolean>((resolve) => this.waiters.push({ kind, resolve }));
  }

  /** Give a reservation back: to the first waiter that may take it, else to the pool. */
  release(): void {
    if (this.reserved === 0) throw new Error('bug: SlotScheduler.release without a reservation');
    this.reserved--;
    this.grantWaiters();
  }

  /**
   * A held reservation starts (+1) or stops (−1) waiting for an interactive job. While it waits it
   * is the slot kept for interactive requests, so batch reservations may use the others.
   */
  awaitingJob(delta: 1 | -1): void {
    this.awaiting += delta;
    if (delta === 1) this.grantWaiters();
  }

  private grantWaiters(): void {
    for (let index = this.waiters.findIndex((waiter) => this.fits(waiter.kind)); index !== -1; index = this.waiters.findIndex((waiter) => this.fits(waiter.kind))) {
      const [next] = this.waiters.splice(index, 1);
      this.reserved++; // handed over: reserved again, now by the waiter
      next!.resolve(true);
    }
  }

  /** Wake every waiter without a slot (shutdown). */
  wakeAll(): void {
    for (const waiter of this.waiters.splice(0)) waiter.resolve(false);
  }

  get busy(): number { return this.reserved; }
}
