/**
 * Keeps served output independent of load. llama.cpp evaluates a hybrid model's batch in
 * pieces holding the same number of tokens per sequence, so a prompt evaluated while other
 * slots decode is cut into one-token pieces, and its state differs in float rounding from the
 * same prompt evaluated alone; a random model's greedy output then flips at a near-tie, and a
 * request's answer would depend on what else was running. Decode steps (one token per sequence)
 * do not have this problem. So multi-token evaluations (prompts, the turn-boundary tokens) take
 * the gate exclusively, and decode steps share it: decodes still batch across slots, and every
 * prompt is evaluated exactly as it would be alone. Waiting exclusives go first, so a stream of
 * decode steps never starves a new request's prompt; among them an urgent one (an interactive
 * request's prompt) goes before the others (batch requests' prompts), so a busy batch costs an
 * interactive request at most the evaluation running when it arrived.
 */
export class EvaluationGate {
  private sharedHolders = 0;
  private exclusiveHeld = false;
  private readonly exclusiveWaiters: Array<{ wake: () => void; urgent: boolean }> = [];
  private sharedWaiters: Array<() => void> = [];

  /** Run a decode step (one token for one sequence); others may run at the same time. */
  async shared<T>(step: () => Promise<T>): Promise<T> {
    if (this.exclusiveHeld || this.exclusiveWaiters.length > 0) await new Promise<void>((resolve) => this.sharedWaiters.push(resolve));
    else this.sharedHolders++; // a woken waiter was counted by the hand-over
    try {
      return await step();
    } finally {
      this.sharedHolders--;
      this.handOver();
    }
  }

  /** Run a multi-token evaluation with nothing else evaluating; `urgent` ones wait ahead of the others. */
  async exclusive<T>(evaluation: () => Promise<T>, urgent = false): Promise<T> {
    if (this.exclusiveHeld || this.sharedHolders > 0 || this.exclusiveWaiters.length > 0) {
      await new Promise<void>((resolve) => {
        const at = urgent ? this.exclusiveWaiters.findIndex((waiter) => !waiter.urgent) : -1;
        this.exclusiveWaiters.splice(at === -1 ? this.exclusiveWaiters.length : at, 0, { wake: resolve, urgent });
      });
    } else {
      this.exclusiveHeld = true; // a woken waiter was given the gate by the hand-over
    }
    try {
      return await evaluation();
    } finally {
      this.exclusiveHeld = false;
      this.handOver();
    }
  }

  private handOver(): void {
    if (this.exclusiveHeld || this.sharedHolders > 0) return;
    const nextExclusive = this.exclusiveWaiters.shift();
    if (nextExclusive) {
      this.exclusiveHeld = true; // taken on its behalf, so nothing slips in before it runs
      nextExclusive.wake();
      return;
    }
    const waiting = this.sharedWaiters;
    this.sharedWaiters = [];
    this.sharedHolders += waiting.length; // counted now, so an exclusive arriving meanwhile waits
    for (const wake of waiting) wake();
  }
}
