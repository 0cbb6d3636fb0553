/**
 * How many batch requests may be queued or running at once, across every batch this process
 * runs. Batch jobs already queue behind interactive ones (BullMQ priority); keeping no more of
 * them in the queue than the gpu-nodes have slots means an interactive request waits for at most
 * one batch request per slot, and a cancel has little to take back.
 */
export class InFlightLimit {
  private held = 0;
  private readonly waiters: Array<() => void> = [];

  /** `capacity()` is asked again whenever a place may be free (it follows the live slots). */
  constructor(private readonly capacity: () => Promise<number>) {}

  get inFlight(): number {
    return this.held;
  }

  /** Wait for a place; resolves to its release function, or null when `signal` aborts first. */
  async acquire(signal: AbortSignal): Promise<(() => void) | null> {
    for (;;) {
      if (signal.aborted) return null;
      if (this.held < Math.max(1, await this.capacity())) {
        this.held++;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.held--;
          this.waiters.splice(0).forEach((wake) => wake());
        };
      }
      // Woken by a release, by the signal, or after a while (the live slots may have grown).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
