/**
 * The gateway's metrics in prom-client. Request, token and time-to-first-token figures are
 * counted in this process; queue depth and node figures are read from the region at scrape time.
 * Node only (prom-client); the app sees the `GatewayMetrics` interface.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TTFT_BUCKETS_SECONDS, type GatewayMetrics } from '../metrics.js';
import type { RegionReport } from '../status/region-report.js';

export class PromMetrics implements GatewayMetrics {
  private readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'bamba_requests_total', help: 'HTTP requests by route and status.', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  private readonly timeToFirstToken = new Histogram({ name: 'bamba_time_to_first_token_seconds', help: 'From request arrival to the first token relayed.', buckets: [...TTFT_BUCKETS_SECONDS], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'bamba_tokens_generated_total', help: 'Completion tokens relayed to clients.', registers: [this.registry] });
  private readonly activeStreams = new Gauge({ name: 'bamba_active_streams', help: 'Requests currently relaying tokens.', registers: [this.registry] });
  private readonly queueDepth = new Gauge({ name: 'bamba_queue_depth', help: 'Generation jobs waiting in the region queue, by priority.', labelNames: ['priority'] as const, registers: [this.registry] });
  private readonly sessions = new Gauge({ name: 'bamba_sessions', help: 'Live sessions in the region, every tenant\'s.', registers: [this.registry] });
  private readonly snapshotBytes = new Gauge({ name: 'bamba_snapshot_bytes', help: 'Bytes of snapshots stored in the region.', registers: [this.registry] });
  private readonly snapshotBudgetBytes = new Gauge({ name: 'bamba_snapshot_budget_bytes', help: 'Snapshot byte budget the gpu-nodes evict towards.', registers: [this.registry] });
  private readonly batches = new Gauge({ name: 'bamba_batches', help: 'Batches in the region by status.', labelNames: ['status'] as const, registers: [this.registry] });
  private readonly batchRequestsInFlight = new Gauge({ name: 'bamba_batch_requests_in_flight', help: 'Batch requests queued or running now.', registers: [this.registry] });
  private readonly batchRequestsFinished = new Gauge({ name: 'bamba_batch_requests_finished', help: 'Batch requests finished in the region since its Redis began, by outcome.', labelNames: ['outcome'] as const, registers: [this.registry] });
  private readonly batchCompletionTokens = new Gauge({ name: 'bamba_batch_completion_tokens', help: 'Completion tokens of finished batch requests in the region since its Redis began.', registers: [this.registry] });
  private readonly residentSessions = new Gauge({ name: 'bamba_node_resident_sessions', help: 'Sessions whose state a live gpu-node keeps in a slot.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly busySlots = new Gauge({ name: 'bamba_node_busy_slots', help: 'Slots running a request, per live gpu-node.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly slots = new Gauge({ name: 'bamba_node_slots', help: 'Slots per live gpu-node.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly hostTierSessions = new Gauge({ name: 'bamba_node_host_tier_sessions', help: 'Sessions whose state a live gpu-node keeps in host memory.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly hostTierBytes = new Gauge({ name: 'bamba_node_host_tier_bytes', help: 'Bytes of session states a live gpu-node keeps in host memory.', labelNames: ['node'] as const, registers: [this.registry] });
  private readonly prefixLookups = new Gauge({ name: 'bamba_prefix_cache_lookups', help: 'Prefix-cache lookups of the live gpu-nodes since they started, by the boundary found (system prompt, turn) or a miss.', labelNames: ['boundary', 'outcome'] as const, registers: [this.registry] });
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

  async render(region: RegionReport): Promise<string> {
    // Region figures are a snapshot of now: nodes that left must not linger as stale series, and
    // a figure the region could not answer now is reset, not left at its last value.
    for (const gauge of [this.busySlots, this.slots, this.maxBusySlots, this.residentSessions, this.hostTierSessions, this.hostTierBytes, this.prefixLookups, this.queueDepth, this.sessions, this.snapshotBytes, this.snapshotBudgetBytes, this.batches, this.batchRequestsInFlight, this.batchRequestsFinished, this.batchCompletionTokens]) gauge.reset();
    for (const node of region.nodes) {
      this.busySlots.set({ node: node.nodeId }, node.busySlots);
      this.slots.set({ node: node.nodeId }, node.slots);
      this.maxBusySlots.set({ node: node.nodeId }, node.maxBusySlots);
      this.residentSessions.set({ node: node.nodeId }, node.residentSessions);
      if (node.hostTierSessions !== null) this.hostTierSessions.set({ node: node.nodeId }, node.hostTierSessions);
      if (node.hostTierBytes !== null) this.hostTierBytes.set({ node: node.nodeId }, node.hostTierBytes);
    }
    const lookups = region.nodes.reduce((sum, node) => ({ systemHits: sum.systemHits + node.prefixLookups.systemHits, turnHits: sum.turnHits + node.prefixLookups.turnHits, misses: sum.misses + node.prefixLookups.misses }), { systemHits: 0, turnHits: 0, misses: 0 });
    this.prefixLookups.set({ boundary: 'system', outcome: 'hit' }, lookups.systemHits);
    this.prefixLookups.set({ boundary: 'turn', outcome: 'hit' }, lookups.turnHits);
    this.prefixLookups.set({ boundary: 'any', outcome: 'miss' }, lookups.misses);
    for (const [priority, waiting] of Object.entries(region.queue ?? {})) this.queueDepth.set({ priority }, waiting);
    if (region.sessions !== null) this.sessions.set(region.sessions);
    if (region.snapshotBytes !== null) this.snapshotBytes.set(region.snapshotBytes);
    if (region.snapshotBudgetBytes !== null) this.snapshotBudgetBytes.set(region.snapshotBudgetBytes);
    if (region.batches) {
      for (const [status, count] of Object.entries(region.batches.byStatus)) this.batches.set({ status }, count);
      this.batchRequestsInFlight.set(region.batches.requestsInFlight);
      this.batchRequestsFinished.set({ outcome: 'completed' }, region.batches.requestsCompleted);
      this.batchRequestsFinished.set({ outcome: 'failed' }, region.batches.requestsFailed);
      this.batchCompletionTokens.set(region.batches.completionTokens);
    }
    return this.registry.metrics();
  }
}
