/**
 * The last minutes of this gateway's traffic, for the status page: tokens relayed and
 * time-to-first-token counts in fixed time buckets. Prometheus keeps totals since start; a
 * person looking at a page wants "now", so this keeps a short ring of buckets instead.
 * Runtime-neutral, fed by the same calls as the metrics (`withRecentActivity`).
 */
import { TTFT_BUCKETS_SECONDS, type GatewayMetrics } from '../metrics.js';
import type { Clock } from '../ports.js';

/** Width of one time bucket. */
export const ACTIVITY_BUCKET_SECONDS = 10;
/** Buckets kept: ten minutes. */
export const ACTIVITY_BUCKETS = 60;

interface Bucket {
  /** Which bucket of time this is (epoch ms ÷ bucket width); a stale slot is reused. */
  index: number;
  tokens: number;
  /** Time-to-first-token counts per histogram bucket (the last one: above every bound). */
  ttftCounts: number[];
}

export interface RecentActivityReport {
  bucketSeconds: number;
  /** Start of each bucket (epoch ms), oldest first, the current (partial) bucket last. */
  bucketStartsMs: number[];
  /** Completion tokens per second in each bucket (the current one over its elapsed part). */
  tokensPerSecond: number[];
  /** Upper bounds (seconds) of the time-to-first-token buckets. */
  ttftBoundsSeconds: readonly number[];
  /** Requests per time-to-first-token bucket over the whole window; one more entry than bounds. */
  ttftCounts: number[];
}

export class RecentActivity {
  private readonly buckets: Bucket[] = [];

  constructor(private readonly clock: Clock) {}

  private current(): Bucket {
    const index = Math.floor(this.clock.nowMs() / (ACTIVITY_BUCKET_SECONDS * 1000));
    const slot = index % ACTIVITY_BUCKETS;
    let bucket = this.buckets[slot];
    if (!bucket || bucket.index !== index) {
      bucket = { index, tokens: 0, ttftCounts: new Array<number>(TTFT_BUCKETS_SECONDS.length + 1).fill(0) };
      this.buckets[slot] = bucket;
    }
    return bucket;
  }

  recordTokens(tokens: number): void {
    this.current().tokens += tokens;
  }

  recordTimeToFirstToken(seconds: number): void {
    const at = TTFT_BUCKETS_SECONDS.findIndex((bound) => seconds <= bound);
    this.current().ttftCounts[at === -1 ? TTFT_BUCKETS_SECONDS.length : at]! += 1;
  }

  report(): RecentActivityReport {
    const nowMs = this.clock.nowMs();
    const bucketMs = ACTIVITY_BUCKET_SECONDS * 1000;
    const newest = Math.floor(nowMs / bucketMs);
    const ttftCounts = new Array<number>(TTFT_BUCKETS_SECONDS.length + 1).fill(0);
    const bucketStartsMs: number[] = [];
    const tokensPerSecond: number[] = [];
    for (let index = newest - ACTIVITY_BUCKETS + 1; index <= newest; index++) {
      const bucket = this.buckets[index % ACTIVITY_BUCKETS];
      const live = bucket?.index === index ? bucket : null;
      const elapsedSeconds = index === newest ? Math.max(1, (nowMs - index * bucketMs) / 1000) : ACTIVITY_BUCKET_SECONDS;
      bucketStartsMs.push(index * bucketMs);
      tokensPerSecond.push((live?.tokens ?? 0) / elapsedSeconds);
      live?.ttftCounts.forEach((count, at) => { ttftCounts[at]! += count; });
    }
    return { bucketSeconds: ACTIVITY_BUCKET_SECONDS, bucketStartsMs, tokensPerSecond, ttftBoundsSeconds: TTFT_BUCKETS_SECONDS, ttftCounts };
  }
}

/** Metrics that also feed `recent`: one call site records both. */
export function withRecentActivity(metrics: GatewayMetrics, recent: RecentActivity): GatewayMetrics {
  return {
    countRequest: (route, status) => metrics.countRequest(route, status),
    observeTimeToFirstToken: (seconds) => {
      metrics.observeTimeToFirstToken(seconds);
      recent.recordTimeToFirstToken(seconds);
    },
    countTokens: (tokens) => {
      metrics.countTokens(tokens);
      recent.recordTokens(tokens);
    },
    changeActiveStreams: (delta) => metrics.changeActiveStreams(delta),
    render: (region) => metrics.render(region),
    get contentType() { return metrics.contentType; },
  };
}
