/**
 * The region's gpu-node registry: each node publishes its status under a key that expires
 * unless refreshed (its heartbeat), and the gateway reads the live ones. A node that dies simply
 * stops refreshing and disappears.
 */
import { nodeStatusSchema, parseNodeStatus, parseWire, WIRE_VERSION, type NodeStatus } from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';

export class NodeRegistry {
  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    /** Hears about a status that fails its schema (that node is left out). */
    private readonly onMalformed: (nodeId: string, error: unknown) => void = () => {},
  ) {}

  /** Publish a node's status for `ttlMs`. */
  async publish(status: Omit<NodeStatus, 'v'>, ttlMs: number): Promise<void> {
    const checked = parseWire(nodeStatusSchema, { v: WIRE_VERSION, ...status }, 'node status');
    const results = await this.redis
      .multi()
      .set(this.keys.nodeStatus(checked.nodeId), JSON.stringify(checked), 'PX', ttlMs)
      .sadd(this.keys.nodeSet, checked.nodeId)
      .hset(this.keys.knownNodes, checked.nodeId, '0')
      .exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  /** The node stopped: it disappears at once instead of after its status expires. */
  async remove(nodeId: string): Promise<void> {
    await this.redis.multi().del(this.keys.nodeStatus(nodeId)).srem(this.keys.nodeSet, nodeId).exec();
  }

  /** gpu-nodes whose status is current (malformed statuses are left out and reported). */
  async liveNodes(): Promise<NodeStatus[]> {
    const nodeIds = await this.redis.smembers(this.keys.nodeSet);
    if (nodeIds.length === 0) return [];
    const statuses = await this.redis.mget(...nodeIds.map((nodeId) => this.keys.nodeStatus(nodeId)));
    const gone = nodeIds.filter((_, index) => statuses[index] === null);
    if (gone.length > 0) await this.redis.srem(this.keys.nodeSet, ...gone); // expired heartbeats
    return statuses.flatMap((text, index) => {
      if (text === null) return [];
      try {
        return [parseNodeStatus(text)];
      } catch (error) {
        this.onMalformed(nodeIds[index]!, error);
        return [];
      }
    });
  }

  /** Whether the node's status is current. */
  async isAlive(nodeId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.nodeStatus(nodeId))) === 1;
  }
}
