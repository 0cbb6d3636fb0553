/** What serving a job needs on a gpu-node, passed as one object. */
import type { SessionStore, SnapshotStore } from '@bamba/region';
import type { Engine, Slot } from '../engine/engine.js';
import type { ResidencyTable } from '../scheduler/residency-table.js';
import type { PendingSnapshots } from './pending-snapshots.js';

export interface ServingDeps {
  engine: Engine;
  nodeId: string;
  snapshots: SnapshotStore;
  sessions: SessionStore;
  /** Sessions kept in idle slots after their turn. */
  residency: ResidencyTable<Slot>;
  /** Store a snapshot after stateless chat requests too, for the exact-prefix cache. */
  prefixCache: boolean;
  /** Prefix-cache snapshots being written after their answer ended. */
  pendingSnapshots: PendingSnapshots;
  /** Queue a committed session turn for replication to another region (multi-region only). */
  replicate?: (sessionId: string, version: number) => Promise<void>;
  /** Fault injection for reliability tests: called right after a session turn committed. */
  afterCommit?: () => void;
  log: (message: string) => void;
}

/** A slot for a new job: a free one, else the least recently used resident session's. */
export async function acquireSlotEvicting(deps: ServingDeps): Promise<Slot> {
  const free = deps.engine.acquireSlot();
  if (free) return free;
  const evicted = deps.residency.evictLeastRecent();
  if (!evicted) throw new Error('bug: a job was started with no free slot and no resident to evict');
  // Its snapshot was written at commit, so Redis is never stale here: nothing to export.
  await deps.sessions.clearResidency(evicted.sessionId, deps.nodeId).catch(() => {});
  await deps.engine.releaseSlot(evicted.slot);
  const slot = deps.engine.acquireSlot();
  if (!slot) throw new Error('bug: no slot after evicting a resident session');
  return slot;
}

export function isPrefix(prefix: readonly number[], of: readonly number[]): boolean {
  if (prefix.length > of.length) return false;
  for (let index = 0; index < prefix.length; index++) if (prefix[index] !== of[index]) return false;
  return true;
}
