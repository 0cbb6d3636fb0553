/** What serving a job needs on a gpu-node, passed as one object. */
import type { SessionStore, SnapshotStore } from '@bamba/region';
import type { GenerationJob } from '@bamba/shared';
import type { Engine, Slot } from '../engine/engine.js';
import type { HostTier } from '../scheduler/host-tier.js';
import type { ResidencyTable } from '../scheduler/residency-table.js';
import type { PendingSnapshots } from './pending-snapshots.js';

export interface ServingDeps {
  engine: Engine;
  nodeId: string;
  snapshots: SnapshotStore;
  sessions: SessionStore;
  /** Sessions kept in idle slots after their turn. */
  residency: ResidencyTable<Slot>;
  /** Sessions' saved states kept in host RAM after their turn (the second tier). */
  hostTier: HostTier<Buffer>;
  /** A system prompt of at least this many tokens gets its state saved for later conversations (0: never). */
  systemCheckpointTokens: number;
  /** Prefix-cache lookups since start, by the boundary found (for the node's status). */
  prefixLookups: { systemHits: number; turnHits: number; misses: number };
  /** Store a snapshot after stateless chat requests too, for the exact-prefix cache. */
  prefixCache: boolean;
  /** Snapshots being written after their answer ended (prefix-cache entries, session turns). */
  pendingSnapshots: PendingSnapshots;
  /** Whether the gateway reading a job's events is gone (asked before a session turn commits). */
  readerGone?: (job: GenerationJob) => Promise<boolean>;
  /** Queue a committed session turn for replication to another region (multi-region only). */
  replicate?: (sessionId: string, version: number) => Promise<void>;
  /** Fault injection for reliability tests: called right after a session turn committed. */
  afterCommit?: () => void;
  /** Fault injection: called right after a session turn's end event, before its snapshot is saved. */
  afterEnd?: () => void;
  log: (message: string) => void;
}

/** A slot for a new job: a free one, else the least recently used resident session's. */
export async function acquireSlotEvicting(deps: ServingDeps): Promise<Slot> {
  const free = deps.engine.acquireSlot();
  if (free) return free;
  const evicted = deps.residency.evictLeastRecent();
  if (!evicted) throw new Error('bug: a job was started with no free slot and no resident to evict');
  // Its snapshot was written after its turn, so Redis is never stale here: nothing to export.
  // Still held in host memory: its turns keep coming here.
  if (!deps.hostTier.has(evicted.sessionId)) await deps.sessions.clearResidency(evicted.sessionId, deps.nodeId).catch(() => {});
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
