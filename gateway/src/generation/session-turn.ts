/**
 * A session turn holds the session's one-turn-at-a-time lock from admission until the gpu-node
 * commits it (the commit releases the lock) or the request ends without a commit (released here).
 */
import { ANY_MODEL, ConflictError, homeRegionOf, InvalidRequestError, NotFoundError, QuotaExceededError, type BambaError, type NodeStatus, type SessionTurn } from '@bamba/shared';
import type { Sessions } from '../ports.js';

/** A session lock outlives the request's deadline a little, in case the gateway dies mid-turn. */
const SESSION_LOCK_MARGIN_MS = 30_000;

export const sessionNotFound = (sessionId: string) => new NotFoundError(`session '${sessionId}' does not exist`, { param: 'session_id', code: 'session_not_found' });
export const sessionBusy = (sessionId: string) => new ConflictError(`session '${sessionId}' is running a turn; retry when it ends`, { code: 'session_busy' });

/** A session that moved to another region: its id there travels in `x-bamba-moved-to` (the edge follows it). */
export class SessionMovedError extends ConflictError {
  constructor(sessionId: string, readonly movedTo: string) {
    super(`session '${sessionId}' moved to region '${homeRegionOf(movedTo) ?? '?'}' as '${movedTo}'; use that id (through the edge, the old one keeps working)`, { param: 'session_id', code: 'session_moved', retryable: false });
  }
}

/**
 * Not found here: because it moved away (409 naming its new id), or because there is no such
 * session (`notFound`, by default the session's 404; a conversation says so in its own words).
 */
export async function sessionMissing(sessions: Sessions, tenant: string, sessionId: string, notFound: (id: string) => BambaError = sessionNotFound): Promise<BambaError> {
  const movedTo = await sessions.movedTo(tenant, sessionId);
  return movedTo ? new SessionMovedError(sessionId, movedTo) : notFound(sessionId);
}

/**
 * A session lives in the region named in its id. Another region may hold a replica of it, which
 * serves only when the edge says (signed) that the home region is down: anything else would fork
 * the conversation's history.
 */
export function checkSessionHome(sessionId: string, here: string, replicaAllowed: boolean): void {
  const home = homeRegionOf(sessionId);
  if (home === null || home === here || replicaAllowed) return;
  throw new ConflictError(`session '${sessionId}' lives in region '${home}', not '${here}'; send its requests there (the edge does this)`, { param: 'session_id', code: 'session_elsewhere', retryable: false });
}

export interface LockedTurn {
  turn: SessionTurn;
  /** The gpu-node holding the session's state, when it has a free slot for the turn. */
  affinityNode: string | undefined;
  /** Give the lock back (no-op once the turn committed: the commit released it). */
  release(): Promise<void>;
}

export async function lockSessionTurn(sessions: Sessions, tenant: string, sessionId: string, model: string, requestId: string, deadlineMs: number, nodes: NodeStatus[], maxSessionBytes: number): Promise<LockedTurn> {
  // (The caller checked the session's home region first.)
  // Both at once (one round trip): the lock, and the tenant's usage, because a session's saved
  // state is never evicted, so a tenant at its limit adds no more until it frees some.
  const [lockResult, usageResult] = await Promise.allSettled([sessions.lockTurn(tenant, sessionId, requestId, deadlineMs + SESSION_LOCK_MARGIN_MS), sessions.usage(tenant)]);
  const release = () => sessions.unlockTurn(sessionId, requestId).catch(() => {});
  if (lockResult.status === 'rejected') throw lockResult.reason;
  const locked = lockResult.value;
  if (locked === 'not_found') throw await sessionMissing(sessions, tenant, sessionId);
  if (locked === 'busy') throw sessionBusy(sessionId);
  if (usageResult.status === 'rejected') {
    await release(); // taken a moment ago: never leave it behind on an error
    throw usageResult.reason;
  }
  const usage = usageResult.value;
  if (usage.sessionBytes >= maxSessionBytes) {
    await release();
    throw new QuotaExceededError(`this tenant's sessions hold ${usage.sessionBytes} bytes of saved state, its limit is ${maxSessionBytes}; delete sessions or let idle ones expire`, { param: 'session_id' });
  }
  if (locked.model !== model && locked.model !== ANY_MODEL) {
    await release();
    throw new InvalidRequestError(`session '${sessionId}' uses model '${locked.model}', not '${model}'`, { param: 'model', code: 'model_mismatch' });
  }
  const holder = nodes.find((node) => node.nodeId === locked.residentNode);
  return {
    turn: { sessionId, expectedVersion: locked.version },
    affinityNode: holder && holder.accepting && holder.busySlots < holder.slots ? holder.nodeId : undefined,
    release,
  };
}
