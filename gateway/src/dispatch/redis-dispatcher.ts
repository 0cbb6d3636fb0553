/**
 * The region dispatcher on Node: BullMQ for jobs, Redis Streams for token events, a key per
 * live gpu-node for the registry. Blocking stream reads each need their own connection, so
 * those come from a small pool instead of being opened per request.
 */
import {
  DeadlineExceededError,
  decodeStreamEvent,
  type GenerationJob,
  type NodeStatus,
  type RedisKeys,
  type StreamEvent,
} from '@bamba/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Dispatcher, SubmitOptions } from '../ports.js';

/** A blocking read returns at least this often, to notice aborts and deadlines. */
const READ_BLOCK_MS = 500;
const READ_BATCH = 256;
const IDLE_READERS_KEPT = 16;
const CANCEL_MARKER_TTL_SECONDS = 600;
/** Finished jobs stay visible briefly for debugging, then BullMQ removes them. */
const KEEP_COMPLETED_SECONDS = 300;
const KEEP_FAILED_SECONDS = 3600;

export class RedisDispatcher implements Dispatcher {
  private readonly redis: Redis;
  private readonly queue: Queue;
  /** Per-node queues for affinity, opened on first use. */
  private readonly nodeQueues = new Map<string, Queue>();
  private readonly idleReaders: Redis[] = [];
  private readonly busyReaders = new Set<Redis>();

  constructor(private readonly redisUrl: string, private readonly keys: RedisKeys) {
    // Fail fast instead of queueing commands forever while Redis is down: requests get a 503.
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
    this.redis.on('error', () => { /* surfaced per command; avoid unhandled 'error' events */ });
    this.queue = new Queue(keys.generationQueue, { connection: this.redis, prefix: keys.bullPrefix });
    this.queue.on('error', () => {});
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async liveNodes(): Promise<NodeStatus[]> {
    const nodeIds = await this.redis.smembers(this.keys.nodeSet);
    if (nodeIds.length === 0) return [];
    const statuses = await this.redis.mget(...nodeIds.map((nodeId) => this.keys.nodeStatus(nodeId)));
    const gone = nodeIds.filter((_, index) => statuses[index] === null);
    if (gone.length > 0) await this.redis.srem(this.keys.nodeSet, ...gone); // expired heartbeats
    return statuses.flatMap((status) => (status === null ? [] : [JSON.parse(status) as NodeStatus]));
  }

  async waitingJobs(): Promise<number> {
    const counts = await this.queue.getJobCounts('wait', 'prioritized');
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  /** The Redis connection, shared with the session store. */
  get connection(): Redis {
    return this.redis;
  }

  private queueFor(nodeId: string | undefined): Queue {
    if (!nodeId) return this.queue;
    let queue = this.nodeQueues.get(nodeId);
    if (!queue) {
      queue = new Queue(this.keys.nodeQueue(nodeId), { connection: this.redis, prefix: this.keys.bullPrefix });
      queue.on('error', () => {});
      this.nodeQueues.set(nodeId, queue);
    }
    return queue;
  }

  async submit(job: GenerationJob, options: SubmitOptions): Promise<void> {
    await this.queueFor(options.nodeId).add('generate', job, {
      jobId: job.requestId,
      priority: options.priority,
      attempts: options.attempts,
      removeOnComplete: { age: KEEP_COMPLETED_SECONDS },
      removeOnFail: { age: KEEP_FAILED_SECONDS },
    });
  }

  async *events(requestId: string, deadlineAtMs: number, signal: AbortSignal): AsyncGenerator<StreamEvent> {
    const reader = this.takeReader();
    let healthy = true;
    const stream = this.keys.requestStream(requestId);
    let lastId = '0';
    try {
      while (!signal.aborted) {
        const remainingMs = deadlineAtMs - Date.now();
        if (remainingMs <= 0) throw new DeadlineExceededError('the request did not finish before its deadline');
        const reply = (await reader.xread('COUNT', READ_BATCH, 'BLOCK', Math.max(1, Math.min(READ_BLOCK_MS, remainingMs)), 'STREAMS', stream, lastId)) as
          | Array<[string, Array<[string, string[]]>]>
          | null;
        if (!reply) continue;
        for (const [, entries] of reply) {
          for (const [id, fields] of entries) {
            lastId = id;
            const event = decodeStreamEvent(fields);
            if (!event) continue;
            yield event;
            if (event.type === 'generation-end' || event.type === 'generation-error') return;
          }
        }
      }
    } catch (error) {
      healthy = false;
      throw error;
    } finally {
      this.returnReader(reader, healthy);
    }
  }

  async cancel(requestId: string): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.cancelMarker(requestId), '1', 'EX', CANCEL_MARKER_TTL_SECONDS)
      .publish(this.keys.cancelChannel, requestId)
      .exec();
    // Still queued? Then it never starts. A running (locked) job cannot be removed: the
    // published cancel stops it on its node instead.
    for (const queue of [this.queue, ...this.nodeQueues.values()]) {
      try {
        await queue.remove(requestId);
      } catch {
        /* locked by a running node */
      }
    }
  }

  async close(): Promise<void> {
    for (const reader of [...this.idleReaders.splice(0), ...this.busyReaders]) reader.disconnect();
    await Promise.all([this.queue, ...this.nodeQueues.values()].map((queue) => queue.close()));
    this.redis.disconnect();
  }

  private takeReader(): Redis {
    const reader = this.idleReaders.pop() ?? new Redis(this.redisUrl, { maxRetriesPerRequest: 1 });
    reader.on('error', () => {});
    this.busyReaders.add(reader);
    return reader;
  }

  private returnReader(reader: Redis, healthy: boolean): void {
    this.busyReaders.delete(reader);
    reader.removeAllListeners('error');
    if (healthy && this.idleReaders.length < IDLE_READERS_KEPT) this.idleReaders.push(reader);
    else reader.disconnect();
  }
}
