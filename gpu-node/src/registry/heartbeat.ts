/**
 * Announces this gpu-node in Redis: its status under a key that expires unless refreshed, and
 * its id in the region's node set. A node that dies simply stops refreshing and disappears.
 */
import type { NodeStatus, RedisKeys } from '@bamba/shared';
import type { Redis } from 'ioredis';

/** A status outlives a few missed beats (GC pauses) but not a dead node. */
const EXPIRY_IN_BEATS = 3;

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly intervalMs: number,
    private readonly status: () => NodeStatus,
    private readonly log: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => { this.beat().catch((error: Error) => this.log(`heartbeat: ${error.message}`)); }, this.intervalMs);
  }

  /** Publish now (after a change worth showing at once, like a freed slot). */
  async beat(): Promise<void> {
    const status = this.status();
    await this.redis
      .multi()
      .set(this.keys.nodeStatus(status.nodeId), JSON.stringify(status), 'PX', this.intervalMs * EXPIRY_IN_BEATS)
      .sadd(this.keys.nodeSet, status.nodeId)
      .sadd(this.keys.knownNodes, status.nodeId)
      .exec();
  }

  async stop(nodeId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.multi().del(this.keys.nodeStatus(nodeId)).srem(this.keys.nodeSet, nodeId).exec();
  }
}
