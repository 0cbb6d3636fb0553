/**
 * What the app records for Prometheus. The Node entry backs it with prom-client
 * (`observability/prom-metrics.ts`); metric names are listed in the README.
 */
import type { NodeStatus } from '@bamba/shared';

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
  render(scrape: { waitingJobs: number | null; nodes: NodeStatus[] }): Promise<string>;
  /** The Content-Type of `render`'s text. */
  readonly contentType: string;
}
