/**
 * Replicate one session to the region that should hold a copy: a region's own session goes to
 * its backup region; a session of another region that this region served during a failover goes
 * back home; a session deleted or moved away takes its replica with it. The whole transcript travels (it is small), so a later job covers an earlier one
 * that was lost, and the receiver keeps it only if it is newer.
 */
import type { SessionTransfer } from '@bamba/region';
import { backupOf, homeRegionOf, type RegionMap } from '@bamba/shared';
import { z } from 'zod';
import type { RegionPeers } from './region-peers.js';

const replicaAnswerSchema = z.object({ outcome: z.enum(['applied', 'stale', 'moved', 'conflict']) });

export interface ReplicateDeps {
  here: string;
  map: RegionMap;
  transfer: SessionTransfer;
  peers: RegionPeers;
}

/** Where a copy of `sessionId` goes from region `here`, or null (no other region). */
export function replicaTarget(map: RegionMap, here: string, sessionId: string): string | null {
  const home = homeRegionOf(sessionId);
  if (home !== null && home !== here) return map.get(home) ? home : null;
  return backupOf(map, here);
}

/** Returns what the receiver did; throws (to be retried) when it could not be delivered. */
export async function replicateSession(deps: ReplicateDeps, sessionId: string): Promise<'applied' | 'stale' | 'moved' | 'conflict' | 'dropped' | 'no-target'> {
  const target = replicaTarget(deps.map, deps.here, sessionId);
  if (!target) return 'no-target';
  const found = await deps.transfer.copyOf(sessionId);
  if (!found) {
    // Deleted, expired or moved since: the copy there goes too (404: it had none). A moved one
    // leaves its new id there, so the old id still leads to it when this region is down.
    const moved = await deps.transfer.movedAway(sessionId);
    const query = moved ? `?${new URLSearchParams({ moved_to: moved.to, tenant: moved.tenant })}` : '';
    const response = await deps.peers.call(target, 'DELETE', `/internal/v1/replicas/${sessionId}${query}`);
    if (!response.ok && response.status !== 404) throw new Error(`dropping the replica at region '${target}': HTTP ${response.status}`);
    return 'dropped';
  }
  const answer = replicaAnswerSchema.parse(await deps.peers.json(target, 'PUT', `/internal/v1/replicas/${sessionId}`, found.copy));
  return answer.outcome;
}
