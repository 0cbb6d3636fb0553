/**
 * What the gateway app needs from its runtime, as interfaces. The Node entry wires Redis and
 * BullMQ behind `Dispatcher`; tests and the Workers entry wire their own.
 */
import type { ChatMessage, GenerationJob, NodeStatus, SessionRecord, StreamEvent, ValidatedCreateSession } from '@bamba/shared';

export interface SubmitOptions {
  /** BullMQ priority: lower runs first (`JobPriority`). */
  priority: number;
  /** Runs allowed before the job fails for good (a dead node costs one). */
  attempts: number;
  /** Send to this gpu-node's own queue (affinity) instead of the region queue. */
  nodeId?: string;
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
  snapshotExists(snapshotId: string): Promise<boolean>;
}

export interface Dispatcher {
  /** Whether the region's Redis answers. */
  ping(): Promise<boolean>;
  /** gpu-nodes whose heartbeat is current. */
  liveNodes(): Promise<NodeStatus[]>;
  /** Jobs queued and not yet started. */
  waitingJobs(): Promise<number>;
  submit(job: GenerationJob, options: SubmitOptions): Promise<void>;
  /**
   * The request's token events in order, ending after `generation-end` or `generation-error`.
   * Throws `DeadlineExceededError` at `deadlineAtMs`; returns early when `signal` aborts.
   */
  events(requestId: string, deadlineAtMs: number, signal: AbortSignal): AsyncIterable<StreamEvent>;
  /** The client went away: drop the job if queued, stop it if running. */
  cancel(requestId: string): Promise<void>;
}

/** Time source (tests may pin it). */
export interface Clock {
  nowMs(): number;
}
