/**
 * One reading of the region as /metrics and /status show it: the same figures for both, read
 * at request time. A figure the region cannot answer now (Redis down) is null, never a guess.
 */
import type { JobPriorityName, NodeStatus } from '@bamba/shared';
import type { BatchFiguresView, RegionState } from '../ports.js';

export interface RegionReport {
  /** The region's name. */
  region: string;
  /** Whether the region's Redis answered. */
  redis: boolean;
  /** gpu-nodes whose heartbeat is current. */
  nodes: NodeStatus[];
  /** Jobs waiting in the region queue, by priority. */
  queue: Record<JobPriorityName, number> | null;
  /** Live sessions, every tenant's. */
  sessions: number | null;
  /** Bytes of stored snapshots (session states and prefix-cache entries). */
  snapshotBytes: number | null;
  /** The snapshot budget the gpu-nodes evict towards (the largest any live node announces). */
  snapshotBudgetBytes: number | null;
  batches: BatchFiguresView | null;
}

export async function readRegionReport(region: RegionState): Promise<RegionReport> {
  const redis = await region.ping();
  const [nodes, figures] = redis
    ? await Promise.all([region.liveNodes().catch(() => []), region.figures().catch(() => null)])
    : [[], null];
  const budgets = nodes.map((node) => node.snapshotBudgetBytes).filter((budget): budget is number => budget !== null);
  return {
    region: region.name,
    redis,
    nodes,
    queue: figures?.queue ?? null,
    sessions: figures?.sessions ?? null,
    snapshotBytes: figures?.snapshotBytes ?? null,
    snapshotBudgetBytes: budgets.length > 0 ? Math.max(...budgets) : null,
    batches: figures?.batches ?? null,
  };
}
