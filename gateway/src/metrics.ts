/**
 * What the app records for Prometheus. The Node entry backs it with prom-client
 * (`observability/prom-metrics.ts`); metric names are listed in the README.
 */
import type { RegionReport } from './status/region-report.js';

/** Upper bounds (seconds) of the time-to-first-token histogram, in /metrics and on /status. */
export const TTFT_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface GatewayMetrics {
  /** One finished HTTP request (route = the matched pattern, never the raw path). */
  countRequest(route: string, status: number): void;
  /** From request arrival to the first token relayed. */
  observeTimeToFirstToken(seconds: number): void;
  /** Completion tokens relayed to clients. */
  countTokens(tokens: number): void;
  /** A request started (+1) or stopped (−1) relaying tokens. */
  changeActiveStreams(delta: number): void;
  /** Prometheus text exposition, with region figures read at scrape time. */
  render(region: RegionReport): Promise<string>;
  /** The Content-Type of `render`'s text. */
  readonly contentType: string;
}
