/**
 * What the gateway app needs from its runtime, as interfaces. In a region (Node) they are
 * backed by the region's Redis (`dispatch/`); the edge (Workers) backs them by HTTP to regions.
 */
import type {
  BatchRecord,
  ChatMessage,
  CreatedWindow,
  FilePurpose,
  FileRecord,
  GenerationJobDraft,
  JobPriorityName,
  NewResponse,
  ResponseOutcome,
  ResponseRecord,
  NodeStatus,
  SessionRecord,
  SessionStateLocation,
  StreamEvent,
  ValidatedCreateBatch,
  ValidatedCreateSession,
  WireError,
} from '@bamba/shared';

/** The one path generation takes. */
export interface GenerationPort {
  /**
   * Queue the job and yield its events in order. The iterable never ends by itself before a
   * `generation-end` or `generation-error`; stop iterating when done. Aborting `signal` (the
   * client went away) or stopping early cancels the job. At `job.deadlineAtMs` it throws
   * `DeadlineExceededError` and cancels the job; a lost relay throws a retryable error.
   */
  generate(job: GenerationJobDraft, signal: AbortSignal, onQueued?: (relayGroup: string) => void): AsyncIterable<StreamEvent>;
  /**
   * The events of a request queued by someone else (its stream is in `relayGroup`), from the
   * start, then live until its end; past `untilMs` it throws `DeadlineExceededError`.
   */
  follow(relayGroup: string, requestId: string, untilMs: number, signal: AbortSignal): AsyncIterable<StreamEvent>;
  /** Cancel a request queued by someone else: dropped if still queued, stopped if running. */
  cancel(requestId: string): Promise<void>;
  /** End a request's stream here for every reader (`generation-cancelled`, failed with `error` if given); its job is stopped apart (`cancel`). */
  markCancelled(relayGroup: string, requestId: string, error?: WireError): Promise<void>;
  /** Whether someone cancelled the request (`cancel` leaves a marker that outlives its job). */
  cancelRequested(requestId: string): Promise<boolean>;
  /** Whether the gateway reading `relayGroup` is gone (its presence lapsed); a failed read says no. */
  readerGone(relayGroup: string): Promise<boolean>;
}

/** Stored responses (the Responses API). Another tenant's response reads as missing. */
export interface ResponseRecords {
  /** A new response id (also its job's request id). */
  newId(): string;
  create(record: NewResponse): Promise<void>;
  get(tenant: string, responseId: string): Promise<ResponseRecord | null>;
  /** Its job is queued, with where its token events go. False when it is no longer active. */
  queued(responseId: string, relayGroup: string): Promise<boolean>;
  /** A gpu-node started it: queued → in progress. False when it is no longer active. */
  running(responseId: string): Promise<boolean>;
  /** Record how it ended, unless it ended already. */
  finish(responseId: string, outcome: ResponseOutcome): Promise<boolean>;
  delete(tenant: string, responseId: string): Promise<boolean>;
}

/** Region-wide figures for /metrics and the status page. */
export interface RegionFigures {
  /** Jobs waiting in the region queue, by priority. */
  queue: Record<JobPriorityName, number>;
  /** Live sessions, every tenant's. */
  sessions: number;
  /** Bytes of stored snapshots. */
  snapshotBytes: number;
  batches: BatchFiguresView;
}

/** The region's batches: how many in each status, and their requests. */
export interface BatchFiguresView {
  byStatus: Record<string, number>;
  requestsCompleted: number;
  requestsFailed: number;
  /** Completion tokens of finished batch requests. */
  completionTokens: number;
  /** Batch requests queued or running now. */
  requestsInFlight: number;
}

/** What the app reads about its region. */
export interface RegionState {
  /** The region's name (`BAMBA_REGION`). */
  readonly name: string;
  /** Whether the region's Redis answers. */
  ping(): Promise<boolean>;
  /**
   * gpu-nodes whose heartbeat is current. `maxAgeMs`: an answer read this recently may be
   * reused (statuses refresh every heartbeat anyway); 0 (default) reads now.
   */
  liveNodes(maxAgeMs?: number): Promise<NodeStatus[]>;
  /** Jobs queued and not yet started. */
  waitingJobs(): Promise<number>;
  figures(): Promise<RegionFigures>;
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
  /** Fork the whole session, or after its first `keepMessages` messages (no saved state then). */
  fork(tenant: string, sessionId: string, keepMessages: number | null): Promise<SessionView | 'not_found' | 'busy' | 'too_few_messages'>;
  /** Take the session's one-turn-at-a-time lock for a request. */
  lockTurn(tenant: string, sessionId: string, requestId: string, ttlMs: number): Promise<SessionRecord | 'not_found' | 'busy'>;
  /** Give the lock back if this request still holds it (the turn did not commit). */
  unlockTurn(sessionId: string, requestId: string): Promise<void>;
  /** Add a conversation's items (not while a turn runs). */
  /** `checkedAgainst`: the transcript the items were checked against; `changed` when it is no longer the session's (nothing appended). */
  appendItems(tenant: string, sessionId: string, messages: ChatMessage[], checkedAgainst?: readonly ChatMessage[]): Promise<'appended' | 'changed' | 'not_found' | 'busy'>;
  /** Remove one of a conversation's items by id (not while a turn runs). */
  /** A message by its id, or (`callId`) that call of a message; the answers of calls removed go too. */
  deleteItem(tenant: string, sessionId: string, itemId: string, callId?: string): Promise<'deleted' | 'item_not_found' | 'not_found' | 'busy'>;
  setMetadata(tenant: string, sessionId: string, metadata: Record<string, string>): Promise<'updated' | 'not_found'>;
  /** A new item id for a message added to a conversation. */
  newItemId(): string;
  /** Where the session's state lives, given the live gpu-nodes. */
  stateOf(session: SessionRecord, liveNodeIds: ReadonlySet<string>): Promise<SessionStateLocation>;
  /** What a tenant holds: live sessions, and the bytes of their saved states (never evicted). */
  usage(tenant: string): Promise<{ sessions: number; sessionBytes: number }>;
  /** The id the tenant's moved session has now (it left this region), or null. */
  movedTo(tenant: string, sessionId: string): Promise<string | null>;
}

/** What a move brought into this region. */
export interface MovedHere {
  newId: string;
  /** Whether its saved state came along (else its next turn replays), and why not. */
  snapshotMoved: boolean;
  reason: string;
}

/**
 * Sessions crossing regions: replicas from other regions, this region's side of a move out
 * (export, chunks, commit), and moves in (run by the workers, waited for here).
 */
export interface Transfers {
  /** Keep another region's copy of a session unless ours is as new; 400 for a malformed copy. */
  applyReplica(sessionId: string, body: unknown): Promise<'applied' | 'stale' | 'moved' | 'busy' | 'conflict'>;
  /** Drop this region's copy of another region's session (never one of this region's own). */
  /** `movedTo`: the session moved there (its old id forwards), rather than being deleted. */
  dropReplica(sessionId: string, movedTo?: { tenant: string; to: string } | null): Promise<'dropped' | 'not_found' | 'busy'>;
  /** Lock the tenant's session for a move and describe it (JSON for the target). */
  exportForMove(sessionId: string, tenant: string, moveId: string, lockTtlMs: number): Promise<object | 'not_found' | 'busy'>;
  snapshotChunk(snapshotId: string, index: number): Promise<Uint8Array | null>;
  commitMove(sessionId: string, moveId: string, newId: string): Promise<'moved' | 'lost'>;
  releaseMove(sessionId: string, moveId: string): Promise<void>;
  /** Bring the tenant's session from its home region here; resolves once it lives here. */
  moveHere(tenant: string, sessionId: string, deadlineAtMs: number): Promise<MovedHere>;
}

/** Uploaded files (the Files API). Another tenant's file reads as missing. */
export interface Files {
  put(tenant: string, file: { filename: string; purpose: FilePurpose; content: Uint8Array }): Promise<FileRecord>;
  get(tenant: string, fileId: string): Promise<FileRecord | null>;
  /** The file's bytes (checked against its checksum), or null. */
  content(tenant: string, fileId: string): Promise<Uint8Array | null>;
  list(tenant: string, query: { after: string | null; limit: number; order: 'asc' | 'desc'; purpose: string | null; window: CreatedWindow }): Promise<{ files: FileRecord[]; hasMore: boolean }>;
  /** `in_use` while a running batch reads it. */
  delete(tenant: string, fileId: string): Promise<'deleted' | 'not_found' | 'in_use'>;
}

/** Batches (the Batch API); the workers run them. Another tenant's batch reads as missing. */
export interface Batches {
  /** Record the batch and queue it for the workers; 400 when the input file is not the tenant's batch input. */
  create(tenant: string, request: ValidatedCreateBatch): Promise<BatchRecord>;
  get(tenant: string, batchId: string): Promise<BatchRecord | null>;
  list(tenant: string, query: { after: string | null; limit: number; window: CreatedWindow }): Promise<{ batches: BatchRecord[]; hasMore: boolean }>;
  /** Ask the workers to stop it: the batch as it is now, or null when there is no such batch. */
  cancel(tenant: string, batchId: string): Promise<BatchRecord | null>;
}

/** The pages' browser scripts (compiled from `gateway/browser/`), by file name. */
export interface PageScripts {
  /** The script's text, or null when there is no such script. */
  get(name: string): string | null;
}

/** Time source (tests may pin it). */
export interface Clock {
  nowMs(): number;
}
