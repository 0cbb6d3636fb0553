/**
 * The gateway side of the token relay: every open request stream of this process is read over
 * a small, fixed pool of blocking connections. Each connection runs one reader loop that does a
 * single `XREAD BLOCK` over all streams of its relay group (the streams' Cluster hash tag) and
 * hands what arrives to per-request queues without ever waiting for a consumer.
 *
 * - A new stream is read within a round trip: the reader also blocks on its group's wake-up
 *   stream, and subscribing while it blocks appends one entry there.
 * - A lost reader connection fails the requests it served with a retryable error (they never
 *   hang); the reader reconnects and serves new requests.
 * - A consumer that leaves events unread for `slowConsumerMs` is cut (its queue fails with
 *   `SlowClientError`); while it lags, its stream is not read, so it costs no memory here and
 *   never slows anyone else.
 * - Consecutive deltas that arrive in one read are merged into one event (one SSE write).
 */
import { randomBytes } from 'node:crypto';
import { decodeStreamEvent, mergeDeltaEvents, ServiceUnavailableError, SlowClientError, type StreamEvent } from '@bamba/shared';
import type { RedisTarget } from './config.js';
import { connectRedis, type RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';
import { DEFAULT_RELAY_PRESENCE_TTL_MS, RelayPresence } from './relay-presence.js';

export interface StreamRelayOptions {
  /** Blocking connections, one reader loop each. Default 4. */
  connections?: number;
  /** A blocking read returns at least this often even when nothing arrives (ms). Default 5000. */
  blockMs?: number;
  /** A consumer leaving events unread this long is cut (ms). Default 30000. */
  slowConsumerMs?: number;
  /** Entries read per stream and read. Default 512. */
  readCount?: number;
  /** How long the readers' presence keys live unrenewed (see relay-presence.ts; DEFAULT_RELAY_PRESENCE_TTL_MS). */
  presenceTtlMs?: number;
}

/** Batches a lagging consumer may have queued before its stream is paused (not read). */
const PAUSE_AFTER_BATCHES = 32;
const RECONNECT_WAIT_MS = 1000;
const WAKE_STREAM_TTL_SECONDS = 3600;

interface QueuedBatch {
  events: StreamEvent[];
  receivedAtMs: number;
}

/** One request's events as they arrive. Iterate it; `close()` when done with it. */
export class RelaySubscription implements AsyncIterable<StreamEvent> {
  private readonly queue: QueuedBatch[] = [];
  private pendingEvents: StreamEvent[] = [];
  private failure: Error | null = null;
  private closed = false;
  private waiter: (() => void) | null = null;
  lastId = '0';

  constructor(
    /** The relay group (part of the stream's key) the producer must write to. */
    readonly group: string,
    readonly streamKey: string,
    private readonly onClose: (subscription: RelaySubscription) => void,
    private readonly onDrained: (subscription: RelaySubscription) => void,
    /** Told at once when the relay gives up on this stream (the consumer may not be reading). */
    private readonly onFailure: (error: Error) => void,
  ) {}

  /** Called by the reader. */
  push(events: StreamEvent[], nowMs: number): void {
    if (this.closed || this.failure) return;
    this.queue.push({ events, receivedAtMs: nowMs });
    this.wake();
  }

  /** Called by the reader: no more events will come, the consumer gets `error` next. */
  fail(error: Error): void {
    if (this.closed || this.failure) return;
    this.failure = error;
    this.wake();
    this.onFailure(error);
  }

  get queuedBatches(): number {
    return this.queue.length;
  }

  /** Receive time of the oldest batch the consumer has not taken, or null. */
  get oldestQueuedAtMs(): number | null {
    return this.queue[0]?.receivedAtMs ?? null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.wake();
    this.onClose(this);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  async next(): Promise<IteratorResult<StreamEvent>> {
    for (;;) {
      const event = this.pendingEvents.shift();
      if (event) return { value: event, done: false };
      const batch = this.queue.shift();
      if (batch) {
        this.pendingEvents = batch.events;
        if (this.queue.length === 0) this.onDrained(this);
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.closed) return { value: undefined, done: true };
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    return { next: () => this.next(), return: async () => { this.close(); return { value: undefined, done: true }; } };
  }
}


type XreadReply = Array<[string, Array<[string, string[]]>]> | null;

class RelayReader {
  readonly subscriptions = new Map<string, RelaySubscription>();
  private readonly paused = new Set<RelaySubscription>();
  private readonly connection: RegionRedis;
  private readonly wakeKey: string;
  private wakeId = '0';
  private blocked = false;
  private idleWaiter: (() => void) | null = null;
  private closed = false;
  healthy = true;
  readonly loop: Promise<void>;

  constructor(
    readonly group: string,
    target: RedisTarget,
    private readonly keys: RegionKeys,
    private readonly control: RegionRedis,
    private readonly options: Required<StreamRelayOptions>,
  ) {
    this.connection = connectRedis(target, { role: `relay:${group}`, mode: 'relay' });
    this.wakeKey = keys.relayWake(group);
    this.loop = this.run();
  }

  subscribe(requestId: string, onFailure: (error: Error) => void): RelaySubscription {
    const streamKey = this.keys.requestStream(this.group, requestId);
    const subscription = new RelaySubscription(this.group, streamKey, (closed) => this.remove(closed), (drained) => this.resume(drained), onFailure);
    this.subscriptions.set(streamKey, subscription);
    this.nudge();
    return subscription;
  }

  private remove(subscription: RelaySubscription): void {
    if (this.subscriptions.get(subscription.streamKey) === subscription) this.subscriptions.delete(subscription.streamKey);
    this.paused.delete(subscription);
  }

  private resume(subscription: RelaySubscription): void {
    if (this.paused.delete(subscription)) this.nudge();
  }

  /** Make the reader include a changed set of streams now rather than after its block timeout. */
  private nudge(): void {
    if (this.idleWaiter) {
      const wake = this.idleWaiter;
      this.idleWaiter = null;
      wake();
    } else if (this.blocked) {
      void this.control.pipeline().xadd(this.wakeKey, 'MAXLEN', '1', '*', 'w', '1').expire(this.wakeKey, WAKE_STREAM_TTL_SECONDS).exec().catch(() => {});
    }
  }

  /** Cut consumers that left events unread too long. */
  sweep(nowMs: number): void {
    for (const subscription of this.subscriptions.values()) {
      const oldest = subscription.oldestQueuedAtMs;
      if (oldest !== null && nowMs - oldest > this.options.slowConsumerMs) {
        subscription.fail(new SlowClientError(nowMs - oldest));
        this.remove(subscription);
      }
    }
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const active = [...this.subscriptions.values()].filter((subscription) => !this.paused.has(subscription));
      if (active.length === 0) {
        await new Promise<void>((resolve) => { this.idleWaiter = resolve; });
        continue;
      }
      let reply: XreadReply;
      try {
        this.blocked = true;
        reply = (await this.connection.xread(
          'COUNT', this.options.readCount, 'BLOCK', this.options.blockMs,
          'STREAMS', this.wakeKey, ...active.map((subscription) => subscription.streamKey),
          this.wakeId, ...active.map((subscription) => subscription.lastId),
        )) as XreadReply;
      } catch (error) {
        this.blocked = false;
        if (this.closed) return;
        await this.recover(error as Error);
        continue;
      } finally {
        this.blocked = false;
      }
      if (reply) this.deliver(reply);
    }
  }

  private deliver(reply: NonNullable<XreadReply>): void {
    const nowMs = Date.now();
    for (const [key, entries] of reply) {
      if (entries.length === 0) continue;
      if (key === this.wakeKey) {
        this.wakeId = entries.at(-1)![0];
        continue;
      }
      const subscription = this.subscriptions.get(key);
      if (!subscription) continue; // closed while the read was on its way
      subscription.lastId = entries.at(-1)![0];
      let events: StreamEvent[];
      try {
        events = entries.map(([, fields]) => decodeStreamEvent(fields));
      } catch (error) {
        subscription.fail(error as Error);
        this.remove(subscription);
        continue;
      }
      subscription.push(mergeDeltaEvents(events), nowMs);
      if (subscription.queuedBatches >= PAUSE_AFTER_BATCHES) this.paused.add(subscription);
    }
  }

  /** The connection failed under a read: fail its requests, wait for it to come back. */
  private async recover(error: Error): Promise<void> {
    this.healthy = false;
    const lost = new ServiceUnavailableError(`the relay lost its Redis connection (${error.message}); retry the request`, { code: 'relay_lost', cause: error });
    for (const subscription of [...this.subscriptions.values()]) {
      subscription.fail(lost);
      this.remove(subscription);
    }
    while (!this.closed && this.connection.status !== 'ready') {
      await new Promise((resolve) => setTimeout(resolve, this.connection.status === 'end' ? RECONNECT_WAIT_MS : 20));
      if (this.connection.status === 'end') this.connection.connect().catch(() => {});
    }
    this.healthy = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subscription of [...this.subscriptions.values()]) subscription.close();
    this.idleWaiter?.();
    this.connection.disconnect();
    await this.loop;
  }
}

/** The multiplexed reader pool of one gateway process. */
export class StreamRelay {
  private readonly readers: RelayReader[];
  private readonly sweeper: NodeJS.Timeout;
  /** Tells the gpu-nodes these readers are alive: a job whose reader is gone stops. */
  private readonly presence: RelayPresence;

  constructor(target: RedisTarget, keys: RegionKeys, control: RegionRedis, options: StreamRelayOptions = {}) {
    const resolved: Required<StreamRelayOptions> = {
      connections: options.connections ?? 4,
      blockMs: options.blockMs ?? 5000,
      slowConsumerMs: options.slowConsumerMs ?? 30_000,
      readCount: options.readCount ?? 512,
      presenceTtlMs: options.presenceTtlMs ?? DEFAULT_RELAY_PRESENCE_TTL_MS,
    };
    // Group names are unique per process: two gateways never share a reader's streams.
    const instance = randomBytes(6).toString('hex');
    this.readers = Array.from({ length: resolved.connections }, (_, index) => new RelayReader(`${instance}-${index}`, target, keys, control, resolved));
    this.sweeper = setInterval(() => {
      const nowMs = Date.now();
      for (const reader of this.readers) reader.sweep(nowMs);
    }, Math.max(50, Math.min(1000, resolved.slowConsumerMs / 4)));
    this.sweeper.unref();
    this.presence = new RelayPresence(control, keys, this.readers.map((reader) => reader.group), resolved.presenceTtlMs);
  }

  /** Resolves once the readers' presence is written (queue no job before: its node would stop it). */
  get ready(): Promise<void> {
    return this.presence.ready;
  }

  /**
   * Start reading a request's stream (before its job is queued, so nothing is missed). The
   * request's job must carry the subscription's `group`. `onFailure` hears at once when the
   * relay gives up on the stream (lost connection, slow consumer, malformed event).
   */
  subscribe(requestId: string, onFailure: (error: Error) => void = () => {}): RelaySubscription {
    const healthy = this.readers.filter((reader) => reader.healthy);
    if (healthy.length === 0) throw new ServiceUnavailableError('the relay has no connection to Redis; try again shortly', { code: 'relay_lost' });
    const reader = healthy.reduce((least, candidate) => (candidate.subscriptions.size < least.subscriptions.size ? candidate : least));
    this.presence.touch(reader.group);
    return reader.subscribe(requestId, onFailure);
  }

  /** Requests being relayed now. */
  get openStreams(): number {
    return this.readers.reduce((sum, reader) => sum + reader.subscriptions.size, 0);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all(this.readers.map((reader) => reader.close()));
    await this.presence.close().catch(() => { /* Redis is away: the keys lapse by themselves */ });
  }
}
