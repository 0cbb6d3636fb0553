/**
 * What the edge believes about each region's health, per isolate: a circuit breaker fed by the
 * hops themselves and by `/readyz`, read in the background at most every `readyCacheMs` (a
 * region that answers but is not ready, e.g. no gpu-node, is skipped for new conversations). A
 * region that cannot be reached, or whose `/readyz` gets no answer at all (it accepts
 * connections but hangs), opens the breaker: it is skipped for `openMs`, and after that until a
 * `/readyz` read answers again (half-open). The trial is always that read, never a client's
 * request: a hung region would hold such a request for as long as its client waits (the edge
 * sets no limit on a region's answer, since a long generation answers late). A session's turns
 * meanwhile go to its backup. A reading older than 5 cache periods, or none (a new isolate), is no
 * reading: the request that finds it waits for a new one (at most the `/readyz` timeout), so a
 * region that hung during a quiet spell gets nothing.
 */
import type { RegionMap } from '@bamba/shared';

export interface HealthOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  openMs: number;
  readyCacheMs: number;
}

/** Readings older than this many cache periods are not trusted (a busy edge reads in the background long before). */
const STALE_READING_PERIODS = 5;

export const DEFAULT_HEALTH_OPTIONS: HealthOptions = { failureThreshold: 1, openMs: 5_000, readyCacheMs: 2_000 };

interface RegionHealthState {
  failures: number;
  /** 0: closed; else open until then, and half-open (waiting for a `/readyz` answer) after. */
  openUntilMs: number;
  ready: boolean;
  readyAtMs: number;
  /** The reading under way, which a second `refresh` waits for too. */
  probing: Promise<void> | null;
  /** Its last `/readyz` got no answer in time: a request sent there would wait as long as its client does. */
  hung: boolean;
}

export type HealthView = 'closed' | 'open' | 'half-open';

/**
 * What a region's `/readyz` said: ready, answered but not ready (e.g. no gpu-node), took the
 * connection but gave no answer in time (`hung`), or could not be reached.
 */
export type Readiness = 'ready' | 'not_ready' | 'hung' | 'unreachable';

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
      state = { failures: 0, openUntilMs: 0, ready: true, readyAtMs: Number.NEGATIVE_INFINITY, probing: null, hung: false };
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
    if (state.openUntilMs !== 0) return false; // open or half-open: only a /readyz answer closes it
    return !forNew || state.ready;
  }

  /**
   * Whether the region's breaker is open because it hangs (as opposed to refusing connections,
   * which answers a request at once): what only it can serve is refused rather than sent there.
   */
  hung(region: string): boolean {
    const state = this.state(region);
    return state.hung && state.openUntilMs !== 0;
  }

  recordSuccess(region: string): void {
    const state = this.state(region);
    state.failures = 0;
    state.openUntilMs = 0;
    state.hung = false;
  }

  recordFailure(region: string): void {
    const state = this.state(region);
    state.failures += 1;
    if (state.failures >= this.options.failureThreshold) state.openUntilMs = this.nowMs() + this.options.openMs;
  }

  /** Whether some region has no recent reading (5 cache periods): a request should wait for `refresh` before it is routed. */
  stale(): boolean {
    const now = this.nowMs();
    return this.map.regions.some(({ name }) => now - this.state(name).readyAtMs >= this.options.readyCacheMs * STALE_READING_PERIODS);
  }

  /** Read every region's `/readyz` whose last reading is older than the cache (returns when done, readings already under way included). */
  async refresh(): Promise<void> {
    await Promise.all(this.map.regions.map(async ({ name }) => {
      const state = this.state(name);
      if (state.probing) return state.probing;
      if (this.nowMs() - state.readyAtMs < this.options.readyCacheMs) return;
      state.probing = (async () => {
        try {
          const startedMs = this.nowMs();
          const readiness = await this.probe(name);
          state.ready = readiness === 'ready';
          state.readyAtMs = this.nowMs();
          state.hung = readiness === 'hung';
          if (readiness === 'unreachable' || readiness === 'hung') this.recordFailure(name);
          // The half-open trial: an answer to a read begun once the open period was over.
          else if (state.openUntilMs !== 0 && startedMs >= state.openUntilMs) this.recordSuccess(name);
        } finally {
          state.probing = null;
        }
      })();
      return state.probing;
    }));
  }

  /**
   * The regions to try, in `ranked` order: the usable ones; when none is usable, the first ranked
   * alone as a last resort (never an unusable one after a usable one: a hung region would hold
   * the request for as long as its client waits).
   */
  order(ranked: readonly string[], forNew: boolean): string[] {
    const usable = ranked.filter((region) => this.usable(region, forNew));
    return usable.length > 0 ? usable : ranked.slice(0, 1);
  }
}
