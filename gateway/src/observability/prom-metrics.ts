/**
 * The gateway's metrics in prom-client. Request, token and time-to-first-token figures are
 * counted in this process; queue depth and node figures are read from the region at scrape time.
 * Node only (prom-client); the app sees the `GatewayMetrics` interface.
 */
import type { NodeStatus } from '@bamba/shared';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayMetrics } from '../metrics.js';

const TTFT_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class PromMetrics implements GatewayMetrics {
  private readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'bamba_requests_total', help: 'HTTP requests by route and status.', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  private readonly timeToFirstToken = new Histogram({ name: 'bamba_time_to_first_token_seconds', help: 'From request arrival to the first token relayed.', buckets: TTFT_BUCKETS_SECONDS, registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'bamba_tokens_generated_total', help: 'Completion tokens relayed to clients.', registers: [this.registry] });
  private readonly activeStreams = new Gauge({ name: 'bamba_active_streams', help: 'Requests currently relaying tokens.', registers: [this.registry] });
  private readonly queueDepth = new Gauge({ name: 'bamba_queue_depth', help: 'Generation jobs waiting in the region queue.', registers: [this.registry] });
  private readonly busySlots = new Gauge({ name: 'bamba_node_busy_slots', help: 'Slots running a request, per live gpu-node.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly slots = new Gauge({ name: 'bamba_node_slots', help: 'Slots per live gpu-node.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly maxBusySlots = new Gauge({ name: 'bamba_node_max_busy_slots', help: 'Highest busy-slot count a live gpu-node has seen.', labelNames: ['node'] as const, registers: [this.registry] });

  readonly contentType = this.registry.contentType;

  countRequest(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }

  observeTimeToFirstToken(seconds: number): void {
    this.timeToFirstToken.observe(seconds);
  }

  countTokens(tokens: number): void {
    this.tokens.inc(tokens);
  }

  changeActiveStreams(delta: number): void {
    this.activeStreams.inc(delta);
  }

  async render(scrape: { waitingJobs: number | null; nodes: NodeStatus[] }): Promise<string> {
    // Region figures are a snapshot of now: nodes that left must not linger as stale series.
    for (const gauge of [this.busySlots, this.slots, this.maxBusySlots]) gauge.reset();
    for (const node of scrape.nodes) {
      this.busySlots.set({ node: node.nodeId }, node.busySlots);
      this.slots.set({ node: node.nodeId }, node.slots);
      this.maxBusySlots.set({ node: node.nodeId }, node.maxBusySlots);
    }
    this.queueDepth.reset();
    if (scrape.waitingJobs !== null) this.queueDepth.set(scrape.waitingJobs);
    return this.registry.metrics();
  }
}
