/**
 * The gateway's ports in a region, backed by the region's Redis: jobs go through BullMQ
 * (`JobProducer`), token events come back through the multiplexed relay (`StreamRelay`), the
 * node registry answers what is alive.
 */
import type { JobProducer, NodeRegistry, RegionRedis, SessionStore, StreamRelay } from '@bamba/region';
import {
  DeadlineExceededError,
  WIRE_VERSION,
  type GenerationJob,
  type GenerationJobDraft,
  type NodeStatus,
  type SessionRecord,
  type SessionStateLocation,
  type StreamEvent,
  type ValidatedCreateSession,
} from '@bamba/shared';
import type { GenerationPort, RegionState, Sessions, SessionView } from '../ports.js';

export class RegionDispatch implements RegionState, GenerationPort {
  constructor(
    private readonly redis: RegionRedis,
    private readonly producer: JobProducer,
    private readonly relay: StreamRelay,
    private readonly registry: NodeRegistry,
  ) {}

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

  async *generate(draft: GenerationJobDraft, signal: AbortSignal): AsyncGenerator<StreamEvent, void, undefined> {
    if (signal.aborted) return;
    let cancelled = false;
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      void this.producer.cancel(draft.requestId, draft.affinityNode).catch(() => { /* the job's deadline ends it */ });
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
    const onAbort = () => subscription.close();
    signal.addEventListener('abort', onAbort, { once: true });
    const deadline = setTimeout(() => subscription.fail(new DeadlineExceededError('the request did not finish before its deadline')), Math.max(0, job.deadlineAtMs - Date.now()));
    let ended = false;
    try {
      for await (const event of subscription) {
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
  constructor(private readonly store: SessionStore, private readonly ttlSeconds: number, private readonly maxSessionsPerTenant: number) {}

  create(tenant: string, request: ValidatedCreateSession): Promise<SessionView> {
    return this.store.create(tenant, request, this.ttlSeconds, this.maxSessionsPerTenant);
  }
  usage(tenant: string): Promise<{ sessions: number; sessionBytes: number }> {
    return this.store.usage(tenant);
  }
  get(tenant: string, sessionId: string): Promise<SessionView | null> {
    return this.store.get(tenant, sessionId);
  }
  delete(tenant: string, sessionId: string): Promise<'deleted' | 'not_found' | 'busy'> {
    return this.store.delete(tenant, sessionId);
  }
  fork(tenant: string, sessionId: string): Promise<SessionView | 'not_found' | 'busy'> {
    return this.store.fork(tenant, sessionId, this.maxSessionsPerTenant);
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
}
