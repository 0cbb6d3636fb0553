/**
 * The JSON of `GET /status.json`, which the status page reads: the region report (the figures
 * /metrics exports) and this gateway's recent activity, in the API's snake_case. `regions` is a
 * list so that an edge in front of several regions can answer with the same shape.
 */
import type { RecentActivityReport } from './recent-activity.js';
import type { RegionReport } from './region-report.js';

export function statusToWire(report: RegionReport, recent: RecentActivityReport, nowMs: number) {
  return {
    object: 'status',
    generated_at_ms: nowMs,
    regions: [{
      name: report.region,
      redis: report.redis,
      gpu_nodes: report.nodes.map((node) => ({
        id: node.nodeId,
        device: node.device,
        models: node.models.map((model) => model.id),
        slots: node.slots,
        busy_slots: node.busySlots,
        max_busy_slots: node.maxBusySlots,
        resident_sessions: node.residentSessions,
        // null says "no such tier" (a node without one), not "empty".
        host_tier_sessions: node.hostTierSessions,
        completed_requests: node.completedRequests,
        accepting: node.accepting,
        started_at_ms: node.startedAtMs,
        heartbeat_age_ms: Math.max(0, nowMs - node.heartbeatAtMs),
      })),
      queue: report.queue,
      sessions: report.sessions,
      snapshot_bytes: report.snapshotBytes,
      snapshot_budget_bytes: report.snapshotBudgetBytes,
      batches: report.batches && {
        by_status: report.batches.byStatus,
        requests_in_flight: report.batches.requestsInFlight,
        requests_completed: report.batches.requestsCompleted,
        requests_failed: report.batches.requestsFailed,
        completion_tokens: report.batches.completionTokens,
      },
    }],
    recent: {
      bucket_seconds: recent.bucketSeconds,
      bucket_starts_ms: recent.bucketStartsMs,
      tokens_per_second: recent.tokensPerSecond.map((rate) => Math.round(rate * 100) / 100),
      ttft_bounds_seconds: recent.ttftBoundsSeconds,
      ttft_counts: recent.ttftCounts,
    },
  };
}

/** The shape the status page parses. */
export type StatusWire = ReturnType<typeof statusToWire>;
