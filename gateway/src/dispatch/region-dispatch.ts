/**
 * The gateway's ports in a region, backed by the region's Redis: jobs go through BullMQ
 * (`JobProducer`), token events come back through the multiplexed relay (`StreamRelay`), the
 * node registry answers what is alive.
 */
import { absentRelayGroups, followRequestStream, isCancelled, isSessionId, markCancelled, MoveRefused, sessionCopySchema, type RegionWorkQueue, type ReplicaOutcome, type SessionTransfer, TenantUsage, type BatchQueue, type BatchStore, type FileStore, type ForkRefusal, type SnapshotStore, newItemId, newResponseId, type JobProducer, type NodeRegistry, type RegionKeys, type RegionRedis, type ResponseStore, type SessionStore, type StreamRelay } from '@bamba/region';
import {
  BambaError,
  ConflictError,
  DeadlineExceededError,
  homeRegionOf,
  InvalidRequestError,
  newMoveId,
  NotFoundError,
  ServiceUnavailableError,
  inputFileNotFound,
  type BatchRecord,
  type CreatedWindow,
  type ValidatedCreateBatch,
  WIRE_VERSION,
  type GenerationJob,
  type GenerationJobDraft,
  type ChatMessage,
  type NewResponse,
  type NodeStatus,
  type ResponseOutcome,
  type ResponseRecord,
  type SessionRecord,
  type SessionStateLocation,
  type StreamEvent,
  type ValidatedCreateSession,
  type WireError,
} from '@bamba/shared';
import { NODE_WATCH_MS, withNodeWatch } from './node-watch.js';
import type { Batches, GenerationPort, MovedHere, RegionFigures, RegionState, ResponseRecords, Sessions, SessionView, Transfers } from '../ports.js';

export class RegionDispatch implements RegionState, GenerationPort {
  private readonly tenants: TenantUsage;

  constructor(
    readonly name: string,
    private readonly redis: RegionRedis,
    private readonly producer: JobProducer,
    private readonly relay: StreamRelay,
    private readonly registry: NodeRegistry,
    private readonly keys: RegionKeys,
    private readonly snapshots: SnapshotStore,
    private readonly batches: BatchStore,
  ) {
    this.tenants = new TenantUsage(redis, keys);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  private cachedNodes: { nodes: NodeStatus[]; readAtMs: number } | null = null;

  async liveNodes(maxAgeMs = 0): Promise<NodeStatus[]> {
    const cached = this.cachedNodes;
    // An empty answer is never reused: a node that just came up must be seen at once.
    if (cached && cached.nodes.length > 0 && maxAgeMs > 0 && Date.now() - cached.readAtMs <= maxAgeMs) return cached.nodes;
    const nodes = await this.registry.liveNodes();
    this.cachedNodes = { nodes, readAtMs: Date.now() };
    return nodes;
  }

  waitingJobs(): Promise<number> {
    return this.producer.waitingJobs();
  }

  async figures(): Promise<RegionFigures> {
    const [queue, sessions, snapshotBytes, batches] = await Promise.all([this.producer.waitingByPriority(), this.tenants.regionSessions(), this.snapshots.storedBytes(), this.batches.figures()]);
    return { queue, sessions, snapshotBytes, batches };
  }

  /** Cancels on their way to Redis (a stopping gateway waits for them). */
  private readonly cancelling = new Set<Promise<void>>();

  async settleCancels(): Promise<void> {
    await Promise.all([...this.cancelling]);
  }

  /** Whether a node is in the registry: the shared cached read first, then a fresh one (it may be newer than the cache). */
  private readonly nodeLive = async (nodeId: string): Promise<boolean> => {
    const has = (nodes: NodeStatus[]) => nodes.some((node) => node.nodeId === nodeId);
    return has(await this.liveNodes(NODE_WATCH_MS)) || has(await this.liveNodes());
  };

  /** A request's events from its token stream, for a reader that did not start it; watched like `generate`'s. */
  follow(relayGroup: string, requestId: string, untilMs: number, signal: AbortSignal): AsyncIterable<StreamEvent> {
    return withNodeWatch(followRequestStream(this.redis, this.keys, relayGroup, requestId, untilMs, signal), this.nodeLive);
  }

  async cancel(requestId: string): Promise<void> {
    await this.producer.cancel(requestId);
  }

  async markCancelled(relayGroup: string, requestId: string, error?: WireError): Promise<void> {
    await markCancelled(this.redis, this.keys, relayGroup, requestId, error);
  }

  cancelRequested(requestId: string): Promise<boolean> {
    return isCancelled(this.redis, this.keys, requestId);
  }

  async readerGone(relayGroup: string): Promise<boolean> {
    return (await absentRelayGroups(this.redis, this.keys, [relayGroup]).catch(() => new Set<string>())).has(relayGroup);
  }

  async *generate(draft: GenerationJobDraft, signal: AbortSignal, onQueued?: (relayGroup: string) => void): AsyncGenerator<StreamEvent, void, undefined> {
    if (signal.aborted) return;
    let cancelled = false;
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      const sent = this.producer.cancel(draft.requestId, draft.affinityNode).catch(() => { /* the job's deadline ends it */ });
      this.cancelling.add(sent);
      void sent.finally(() => this.cancelling.delete(sent));
    };
    // Read before queueing, so no event can be missed; a relay that gives up cancels the job at once.
    const subscription = this.relay.subscribe(draft.requestId, cancel);
    const job: GenerationJob = { ...draft, v: WIRE_VERSION, relayGroup: subscription.group };
    try {
      await this.producer.submit(job);
    } catch (error) {
      subscription.close();
      throw error;
    }
    onQueued?.(subscription.group);
    const onAbort = () => subscription.close();
    // Aborted while it was being queued (a listener added now would never fire): cancelled at once.
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const deadline = setTimeout(() => subscription.fail(new DeadlineExceededError('the request did not finish before its deadline')), Math.max(0, job.deadlineAtMs - Date.now()));
    let ended = false;
    try {
      for await (const event of withNodeWatch(subscription, this.nodeLive)) {
        // Not isFinalEvent: a reader that leaves at a cancellation mark must still cancel the job.
        if (event.type === 'generation-end' || event.type === 'generation-error') ended = true;
        yield event;
      }
    } finally {
      clearTimeout(deadline);
      signal.removeEventListener('abort', onAbort);
      subscription.close();
      if (!ended) cancel();
    }
  }
}

/** Sessions in the region's Redis; new sessions get the gateway's TTL and count against the tenant's limit. */
export class RegionSessions implements Sessions {
  constructor(
    private readonly store: SessionStore,
    private readonly transfer: SessionTransfer,
    private readonly ttlSeconds: number,
    private readonly maxSessionsPerTenant: number,
    /** Set when sessions are replicated to other regions: a deleted session's replica goes too. */
    private readonly work: RegionWorkQueue | null,
  ) {}

  movedTo(tenant: string, sessionId: string): Promise<string | null> {
    return this.transfer.forwardOf(tenant, sessionId);
  }

  async create(tenant: string, request: ValidatedCreateSession): Promise<SessionView> {
    const view = await this.store.create(tenant, request, this.ttlSeconds, this.maxSessionsPerTenant);
    await this.replicate(view.session.id, view.session.version);
    return view;
  }

  /** Queue the session's replication (best effort: its next commit queues it again). */
  private async replicate(sessionId: string, version: number | 'gone'): Promise<void> {
    await this.work?.replicate(sessionId, version).catch(() => { /* caught up by its next change, or its TTL */ });
  }
  usage(tenant: string): Promise<{ sessions: number; sessionBytes: number }> {
    return this.store.usage(tenant);
  }
  get(tenant: string, sessionId: string): Promise<SessionView | null> {
    return this.store.get(tenant, sessionId);
  }
  async delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'> {
    const outcome = await this.store.delete(tenant, sessionId);
    if (outcome === 'deleted') await this.replicate(sessionId, 'gone');
    return outcome;
  }
  async fork(tenant: string, sessionId: string, keepMessages: number | null): Promise<SessionView | ForkRefusal> {
    const outcome = await this.store.fork(tenant, sessionId, keepMessages, this.maxSessionsPerTenant);
    if (typeof outcome !== 'string') await this.replicate(outcome.session.id, outcome.session.version);
    return outcome;
  }
  lockTurn(tenant: string, sessionId: string, requestId: string, ttlMs: number): Promise<SessionRecord | 'not_found' | 'busy'> {
    return this.store.lockTurn(tenant, sessionId, requestId, ttlMs);
  }
  unlockTurn(sessionId: string, requestId: string): Promise<void> {
    return this.store.unlockTurn(sessionId, requestId);
  }
  stateOf(session: SessionRecord, liveNodeIds: ReadonlySet<string>): Promise<SessionStateLocation> {
    return this.store.stateOf(session, liveNodeIds);
  }
  appendItems(tenant: string, sessionId: string, messages: ChatMessage[], checkedAgainst?: readonly ChatMessage[]): Promise<'appended' | 'changed' | 'not_found' | 'busy'> {
    return this.store.appendItems(tenant, sessionId, messages, checkedAgainst);
  }
  deleteItem(tenant: string, sessionId: string, itemId: string, callId?: string): Promise<'deleted' | 'item_not_found' | 'not_found' | 'busy'> {
    return this.store.deleteItem(tenant, sessionId, itemId, callId);
  }
  setMetadata(tenant: string, sessionId: string, metadata: Record<string, string>): Promise<'updated' | 'not_found'> {
    return this.store.setMetadata(tenant, sessionId, metadata);
  }
  newItemId(): string {
    return newItemId();
  }
}

/** Stored responses in the region's Redis, kept for the gateway's stored-response TTL. */
export class RegionResponses implements ResponseRecords {
  constructor(private readonly store: ResponseStore, private readonly ttlSeconds: number, private readonly region: string) {}

  newId(): string {
    return newResponseId(this.region);
  }
  create(record: NewResponse): Promise<void> {
    return this.store.create(record, this.ttlSeconds);
  }
  get(tenant: string, responseId: string): Promise<ResponseRecord | null> {
    return this.store.get(tenant, responseId);
  }
  queued(responseId: string, relayGroup: string): Promise<boolean> {
    return this.store.queued(responseId, relayGroup);
  }
  running(responseId: string): Promise<boolean> {
    return this.store.running(responseId);
  }
  finish(responseId: string, outcome: ResponseOutcome): Promise<boolean> {
    return this.store.finish(responseId, outcome);
  }
  delete(tenant: string, responseId: string): Promise<boolean> {
    return this.store.delete(tenant, responseId);
  }
}

/** Batches in the region's Redis, queued for the region's workers. */
export class RegionBatches implements Batches {
  constructor(private readonly store: BatchStore, private readonly queue: BatchQueue, private readonly files: FileStore, private readonly windowMs: number) {}

  async create(tenant: string, request: ValidatedCreateBatch): Promise<BatchRecord> {
    const input = await this.files.get(tenant, request.inputFileId);
    if (!input || input.purpose !== 'batch') throw inputFileNotFound(request.inputFileId);
    const batch = await this.store.create(tenant, { endpoint: request.endpoint, inputFileId: request.inputFileId, metadata: request.metadata, expiresAtMs: Date.now() + this.windowMs });
    try {
      // The input may not be deleted while the batch runs (its workers read it again after a restart).
      if (!(await this.files.use(tenant, request.inputFileId, batch.id))) {
        await this.store.advance(tenant, batch.id, 'failed', ['validating'], { errors: JSON.stringify([{ code: 'input_file_missing', message: 'the input file was deleted', param: 'input_file_id', line: null }]) });
        throw inputFileNotFound(request.inputFileId);
      }
      await this.queue.submit({ batchId: batch.id, tenant });
    } catch (error) {
      if (error instanceof BambaError) throw error;
      await this.files.release(tenant, request.inputFileId, batch.id).catch(() => {});
      // Not queued, it would never run: it fails now rather than wait for ever.
      await this.store.advance(tenant, batch.id, 'failed', ['validating'], { errors: JSON.stringify([{ code: 'not_queued', message: 'the batch could not be queued', param: null, line: null }]) }).catch(() => {});
      throw error;
    }
    return batch;
  }

  get(tenant: string, batchId: string): Promise<BatchRecord | null> {
    return this.store.get(tenant, batchId);
  }

  list(tenant: string, query: { after: string | null; limit: number; window: CreatedWindow }): Promise<{ batches: BatchRecord[]; hasMore: boolean }> {
    return this.store.list(tenant, query);
  }

  async cancel(tenant: string, batchId: string): Promise<BatchRecord | null> {
    const batch = await this.store.get(tenant, batchId);
    if (!batch) return null;
    await this.store.advance(tenant, batchId, 'cancelling', ['validating', 'in_progress']);
    return this.store.get(tenant, batchId);
  }
}

/** Sessions crossing regions, in the region's Redis; moves in are run by the workers (waited for here). */
export class RegionTransfers implements Transfers {
  constructor(
    private readonly transfer: SessionTransfer,
    private readonly sessions: SessionStore,
    private readonly snapshots: SnapshotStore,
    private readonly work: RegionWorkQueue,
    /** Sessions are replicated: one moved away takes its replica with it. */
    private readonly replicating: boolean,
    /** This region has peers (a shared secret): sessions may move here. */
    private readonly hasPeers: boolean,
  ) {}

  dropReplica(sessionId: string, movedTo: { tenant: string; to: string } | null = null): Promise<'dropped' | 'not_found' | 'busy'> {
    return this.transfer.dropReplica(sessionId, this.sessions, movedTo);
  }

  async applyReplica(sessionId: string, body: unknown): Promise<ReplicaOutcome> {
    const copy = sessionCopySchema.safeParse(body);
    if (!copy.success) throw new InvalidRequestError(`malformed session replica: ${copy.error.issues[0]?.message ?? 'invalid'}`, { code: 'invalid_value' });
    if (copy.data.id !== sessionId) throw new InvalidRequestError('the replica is of another session than the path names', { code: 'invalid_value' });
    return this.transfer.applyReplica(copy.data);
  }
  exportForMove(sessionId: string, tenant: string, moveId: string, lockTtlMs: number) {
    return this.transfer.exportForMove(sessionId, tenant, moveId, lockTtlMs);
  }
  snapshotChunk(snapshotId: string, index: number): Promise<Uint8Array | null> {
    return this.snapshots.readChunk(snapshotId, index);
  }
  async commitMove(sessionId: string, moveId: string, newId: string): Promise<'moved' | 'lost'> {
    if (!isSessionId(newId)) throw new InvalidRequestError('newId is not a session id', { code: 'invalid_value' });
    const outcome = await this.transfer.commitMove(sessionId, moveId, newId);
    if (outcome === 'moved' && this.replicating) await this.work.replicate(sessionId, 'gone').catch(() => { /* the replica expires with its TTL */ });
    return outcome;
  }
  releaseMove(sessionId: string, moveId: string): Promise<void> {
    return this.transfer.releaseMove(sessionId, moveId);
  }
  async moveHere(tenant: string, sessionId: string, deadlineAtMs: number): Promise<MovedHere> {
    if (!this.hasPeers) throw new InvalidRequestError('this region has no other regions (BAMBA_EDGE_SECRET is not set), so no session can move here', { param: 'region', code: 'invalid_value' });
    const source = homeRegionOf(sessionId);
    if (!source) throw new InvalidRequestError(`session '${sessionId}' names no home region, so it cannot move`, { param: 'session_id', code: 'invalid_value' });
    try {
      const moved = await this.work.move({ kind: 'move', moveId: newMoveId(), sessionId, source, tenant, deadlineAtMs });
      if (this.replicating) {
        // The session now lives here: its backup gets a copy at once, not only with its next turn.
        const view = await this.sessions.get(tenant, moved.newId).catch(() => null);
        if (view) await this.work.replicate(moved.newId, view.session.version).catch(() => { /* its next turn replicates it */ });
      }
      return moved;
    } catch (error) {
      if (error instanceof MoveRefused) {
        if (error.code === 'session_not_found') throw new NotFoundError(`session '${sessionId}' does not exist`, { param: 'session_id', code: 'session_not_found' });
        if (error.code === 'session_busy') throw new ConflictError(`session '${sessionId}' is running a turn; retry the move when it ends`, { code: 'session_busy' });
        if (error.code === 'expired') throw new ServiceUnavailableError('the move was not started in time; try again', { code: 'move_failed', retryAfterSeconds: 2 });
        throw new InvalidRequestError(error.message, { param: 'region', code: 'invalid_value' });
      }
      throw new ServiceUnavailableError(`the move did not complete: ${error instanceof Error ? error.message : String(error)}`, { code: 'move_failed', retryAfterSeconds: 2, cause: error });
    }
  }
}
