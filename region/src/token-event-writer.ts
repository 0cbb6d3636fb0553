/**
 * Writes token events into each request's Redis Stream (the gpu-node side of the relay).
 * Deltas are coalesced: a request's first delta goes out at once (time to first token), later
 * ones at most every `flushIntervalMs`, and everything pending for every request goes out in one
 * pipeline per flush, so many streaming slots of a fast model cost a few round trips, not one
 * per token each (one pipeline per relay group: a group's streams share a Cluster slot). Every
 * stream gets a TTL with its first write. A failed write fails the
 * request's run (retryable): tokens are never silently dropped, so a stream never has a gap.
 */
import { encodeStreamEvent, ServiceUnavailableError, type GenerationEndEvent, type ResumePath, type StreamEventBody, type TokenLogprob, type WireError } from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';

/** A stream outlives its request by this long, for late readers and debugging. */
export const STREAM_TTL_AFTER_END_SECONDS = 300;

/** The events of one request's run, as generation code writes them. */
export interface TokenEvents {
  start(promptTokens: number, cachedTokens: number, resume: ResumePath): void;
  /**
   * Queue a delta (with its tokens' log probabilities, when the job asked for them); throws the
   * write error when an earlier flush of this request failed.
   */
  delta(text: string, tokens: number, logprobs?: readonly TokenLogprob[]): void;
  /** Flush pending deltas, write the end event, and resolve once Redis has it. */
  end(summary: Omit<GenerationEndEvent, 'type' | 'attempt' | 'v'>): Promise<void>;
  /** Flush pending deltas, write the error event, and resolve once Redis has it. */
  error(error: WireError): Promise<void>;
  /** This attempt gives the job back to the queue (`generation-retry`); resolves once Redis has it. */
  retry(reason: string): Promise<void>;
}

export interface TokenEventWriterOptions {
  /** Later deltas of a request are written at most this often (ms). */
  flushIntervalMs: number;
  /** The node's model fingerprint, sent with each start. */
  fingerprint?: string;
}

interface PendingRequest {
  stream: string;
  /** Streams of one relay group share a Cluster slot, so they can share a pipeline. */
  group: string;
  attempt: number;
  /** Seconds the stream lives from its first write (until the request's deadline, and then some). */
  ttlSeconds: number;
  events: StreamEventBody[];
  delta: { text: string; tokens: number; logprobs: TokenLogprob[] };
  /** Nothing written yet: the next flush sets the stream's TTL too. */
  firstWrite: boolean;
  /** A delta was written already: later ones may wait for the interval. */
  deltaSent: boolean;
  failure: Error | null;
}

export class TokenEventWriter {
  private dirty = new Set<PendingRequest>();
  private urgentFlush = false;
  private timedFlush: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys, private readonly nodeId: string, private readonly options: TokenEventWriterOptions) {}

  /** The events of one run of a job (attempt), written to its relay group's stream. */
  forRequest(request: { requestId: string; relayGroup: string; deadlineAtMs: number }, attempt: number): TokenEvents {
    const pending: PendingRequest = {
      stream: this.keys.requestStream(request.relayGroup, request.requestId),
      group: request.relayGroup,
      attempt,
      ttlSeconds: Math.max(60, Math.ceil((request.deadlineAtMs - Date.now()) / 1000)) + STREAM_TTL_AFTER_END_SECONDS,
      events: [],
      delta: { text: '', tokens: 0, logprobs: [] },
      firstWrite: true,
      deltaSent: false,
      failure: null,
    };
    const queue = (event: StreamEventBody, urgent: boolean) => {
      if (pending.failure) throw pending.failure;
      this.takeDelta(pending);
      pending.events.push(event);
      this.markDirty(pending, urgent);
    };
    const finish = async (event: StreamEventBody) => {
      queue(event, true);
      await this.flush();
      if (pending.failure) throw pending.failure;
      await this.redis.expire(pending.stream, STREAM_TTL_AFTER_END_SECONDS);
    };
    return {
      start: (promptTokens, cachedTokens, resume) => queue({ type: 'generation-start', attempt, nodeId: this.nodeId, promptTokens, cachedTokens, resume, ...(this.options.fingerprint ? { fingerprint: this.options.fingerprint } : {}) }, true),
      delta: (text, tokens, logprobs) => {
        if (pending.failure) throw pending.failure;
        pending.delta.text += text;
        pending.delta.tokens += tokens;
        if (logprobs) pending.delta.logprobs.push(...logprobs);
        this.markDirty(pending, !pending.deltaSent);
      },
      end: (summary) => finish({ type: 'generation-end', attempt, ...summary }),
      error: (error) => finish({ type: 'generation-error', attempt, error }),
      retry: (reason) => finish({ type: 'generation-retry', attempt, reason }),
    };
  }

  /** Move a request's pending delta into its event list (keeps start, deltas, end in order). */
  private takeDelta(pending: PendingRequest): void {
    const { text, tokens, logprobs } = pending.delta;
    if (tokens === 0 && text === '') return;
    pending.events.push({ type: 'token-delta', attempt: pending.attempt, text, tokens, ...(logprobs.length > 0 ? { logprobs } : {}) });
    pending.delta = { text: '', tokens: 0, logprobs: [] };
    pending.deltaSent = true;
  }

  private markDirty(pending: PendingRequest, urgent: boolean): void {
    this.dirty.add(pending);
    if (urgent && !this.urgentFlush) {
      this.urgentFlush = true;
      // After this turn of the event loop: every slot's decode step goes in one pipeline.
      setImmediate(() => { void this.flush().catch(() => { /* recorded per request */ }); });
    } else if (!this.timedFlush) {
      this.timedFlush = setTimeout(() => { void this.flush().catch(() => {}); }, this.options.flushIntervalMs);
    }
  }

  /** Write everything pending in one pipeline; resolves when it (and any earlier flush) landed. */
  flush(): Promise<void> {
    this.urgentFlush = false;
    if (this.timedFlush) clearTimeout(this.timedFlush);
    this.timedFlush = null;
    const batch = [...this.dirty];
    this.dirty = new Set();
    // Flushes run one after another, so a stream's events land in the order they were made.
    this.inFlight = this.inFlight.then(() => this.write(batch));
    return this.inFlight;
  }

  /** One pipeline per relay group (one Cluster slot each), all sent at once. */
  private async write(batch: PendingRequest[]): Promise<void> {
    const groups = new Map<string, PendingRequest[]>();
    for (const pending of batch) {
      const members = groups.get(pending.group);
      if (members) members.push(pending);
      else groups.set(pending.group, [pending]);
    }
    await Promise.all([...groups.values()].map((members) => this.writeGroup(members)));
  }

  private async writeGroup(batch: PendingRequest[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    const written: Array<{ pending: PendingRequest; commands: number }> = [];
    for (const pending of batch) {
      this.takeDelta(pending);
      if (pending.events.length === 0 || pending.failure) continue;
      for (const event of pending.events) pipeline.xadd(pending.stream, '*', ...encodeStreamEvent(event));
      if (pending.firstWrite) pipeline.expire(pending.stream, pending.ttlSeconds);
      written.push({ pending, commands: pending.events.length + (pending.firstWrite ? 1 : 0) });
      pending.firstWrite = false;
      pending.events = [];
    }
    if (written.length === 0) return;
    let results: Array<[Error | null, unknown]>;
    try {
      results = (await pipeline.exec()) ?? [];
    } catch (error) {
      results = [];
      for (const { commands } of written) for (let index = 0; index < commands; index++) results.push([error as Error, null]);
    }
    // Each request's commands are consecutive in the pipeline: any failure among them fails it.
    let offset = 0;
    for (const { pending, commands } of written) {
      const replies = results.slice(offset, offset + commands);
      offset += commands;
      const cause = replies.length < commands ? new Error('Redis answered fewer commands than sent') : replies.find(([error]) => error)?.[0];
      if (cause) pending.failure = new ServiceUnavailableError(`writing token events to Redis failed: ${cause.message}`, { code: 'event_write_failed', cause });
    }
  }
}
