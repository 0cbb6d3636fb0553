/**
 * What the gateway app needs from its runtime, as interfaces. In a region (Node) they are
 * backed by the region's Redis (`dispatch/`); the edge (Workers) backs them by HTTP to regions.
 */
import type {
  ChatMessage,
  GenerationJobDraft,
  NodeStatus,
  SessionRecord,
  SessionStateLocation,
  StreamEvent,
  ValidatedCreateSession,
} from '@bamba/shared';

/** The one path generation takes. */
export interface GenerationPort {
  /**
   * Queue the job and yield its events in order. The iterable never ends by itself before a
   * `generation-end` or `generation-error`; stop iterating when done. Aborting `signal` (the
   * client went away) or stopping early cancels the job. At `job.deadlineAtMs` it throws
   * `DeadlineExceededError` and cancels the job; a lost relay throws a retryable error.
   */
  generate(job: GenerationJobDraft, signal: AbortSignal): AsyncIterable<StreamEvent>;
}

/** What the app reads about its region. */
export interface RegionState {
  /** Whether the region's Redis answers. */
  ping(): Promise<boolean>;
  /**
   * gpu-nodes whose heartbeat is current. `maxAgeMs`: an answer read this recently may be
   * reused (statuses refresh every heartbeat anyway); 0 (default) reads now.
   */
  liveNodes(maxAgeMs?: number): Promise<NodeStatus[]>;
  /** Jobs queued and not yet started. */
  waitingJobs(): Promise<number>;
}

export interface SessionView {
  session: SessionRecord;
  messages: ChatMessage[];
}

/** Server-side sessions as the gateway sees them. Another tenant's session reads as missing. */
export interface Sessions {
  create(tenant: string, request: ValidatedCreateSession): Promise<SessionView>;
  get(tenant: string, sessionId: string): Promise<SessionView | null>;
  delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'>;
  fork(tenant: string, sessionId: string): Promise<SessionView | 'not_found' | 'busy'>;
  /** Take the session's one-turn-at-a-time lock for a request. */
  lockTurn(tenant: string, sessionId: string, requestId: string, ttlMs: number): Promise<SessionRecord | 'not_found' | 'busy'>;
  /** Give the lock back if this request still holds it (the turn did not commit). */
  unlockTurn(sessionId: string, requestId: string): Promise<void>;
  /** Where the session's state lives, given the live gpu-nodes. */
  stateOf(session: SessionRecord, liveNodeIds: ReadonlySet<string>): Promise<SessionStateLocation>;
  /** What a tenant holds: live sessions, and the bytes of their saved states (never evicted). */
  usage(tenant: string): Promise<{ sessions: number; sessionBytes: number }>;
}

/** Time source (tests may pin it). */
export interface Clock {
  nowMs(): number;
}
