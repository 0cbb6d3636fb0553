/**
 * What the edge believes about each region's health, per isolate: a circuit breaker fed by the
 * hops themselves (a region that cannot be reached is skipped for `openMs`, then one request is
 * let through to try it: half-open), and `/readyz` read in the background at most every
 * `readyCacheMs` (a region that answers but is not ready, e.g. no gpu-node, is skipped for new
 * conversations). A `/readyz` that gets no answer at all (the region accepts connections but
 * hangs, or cannot be reached) counts as a failed hop: the breaker opens, and a session's turns
 * go to its backup instead of waiting on a region that will not answer. Unknown means healthy:
 * the first request finds out.
 */
import type { RegionMap } from '@bamba/shared';

export interface HealthOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  openMs: number;
  readyCacheMs: number;
}

export const DEFAULT_HEALTH_OPTIONS: HealthOptions = { failureThreshold: 1, openMs: 5_000, readyCacheMs: 2_000 };

interface RegionHealthState {
  failures: number;
  openUntilMs: number;
  /** A half-open trial is out: others wait for its verdict. */
  trialSinceMs: number;
  ready: boolean;
  readyAtMs: number;
  /** The reading under way, which a second `refresh` waits for too. */
  probing: Promise<void> | null;
}

export type HealthView = 'closed' | 'open' | 'half-open';

/** What a region's `/readyz` said: ready, answered but not ready (e.g. no gpu-node), or no answer in time. */
export type Readiness = 'ready' | 'not_ready' | 'unreachable';

export class RegionHealth {
  private readonly states = new Map<string, RegionHealthState>();

  constructor(
    private readonly map: RegionMap,
    /** What the region's `GET /readyz` says. */
    private readonly probe: (region: string) => Promise<Readiness>,
    private readonly nowMs: () => number,
    private readonly options: HealthOptions = DEFAULT_HEALTH_OPTIONS,
  ) {}

  private state(region: string): RegionHealthState {
    let state = this.states.get(region);
    if (!state) {
      state = { failures: 0, openUntilMs: 0, trialSinceMs: 0, ready: true, readyAtMs: Number.NEGATIVE_INFINITY, probing: null };
      this.states.set(region, state);
    }
    return state;
  }

  view(region: string): HealthView {
    const state = this.state(region);
    if (state.openUntilMs === 0) return 'closed';
    return this.nowMs() < state.openUntilMs ? 'open' : 'half-open';
  }

  /**
   * Whether a request may go to `region` now. `forNew`: a new conversation, which also wants the
   * region ready (an existing session goes home whenever home answers at all).
   */
  usable(region: string, forNew: boolean): boolean {
    const state = this.state(region);
    const view = this.view(region);
    if (view === 'open') return false;
    // Half-open: one trial at a time; a trial that never reported back is given up after `openMs`.
    if (view === 'half-open') return state.trialSinceMs === 0 || this.nowMs() - state.trialSinceMs >= this.options.openMs;
    return !forNew || state.ready;
  }

  /** A request is about to go to `region`: when half-open, it is the trial. */
  beginHop(region: string): void {
    if (this.view(region) === 'half-open') this.state(region).trialSinceMs = this.nowMs();
  }

  recordSuccess(region: string): void {
    const state = this.state(region);
    state.failures = 0;
    state.openUntilMs = 0;
    state.trialSinceMs = 0;
  }

  recordFailure(region: string): void {
    const state = this.state(region);
    state.failures += 1;
    state.trialSinceMs = 0;
    if (state.failures >= this.options.failureThreshold) state.openUntilMs = this.nowMs() + this.options.openMs;
  }

  /** Read every region's `/readyz` whose last reading is older than the cache (returns when done, readings already under way included). */
  async refresh(): Promise<void> {
    await Promise.all(this.map.regions.map(async ({ name }) => {
      const state = this.state(name);
      if (state.probing) return state.probing;
      if (this.nowMs() - state.readyAtMs < this.options.readyCacheMs) return;
      state.probing = (async () => {
        try {
          const readiness = await this.probe(name);
          state.ready = readiness === 'ready';
          state.readyAtMs = this.nowMs();
          if (readiness === 'unreachable') this.recordFailure(name);
        } finally {
          state.probing = null;
        }
      })();
      return state.probing;
    }));
  }

  /** Regions in `ranked` order, usable ones first (the rest stay as a last resort). */
  order(ranked: readonly string[], forNew: boolean): string[] {
    const usable = ranked.filter((region) => this.usable(region, forNew));
    return [...usable, ...ranked.filter((region) => !usable.includes(region))];
  }
}
