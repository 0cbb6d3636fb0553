/**
 * Every Redis key and channel name in one place. `prefix` isolates deployments (and tests);
 * `region` isolates regions sharing one Redis.
 */
export interface RedisKeys {
  /** BullMQ's own key prefix. */
  bullPrefix: string;
  /** BullMQ queue name for generation jobs (BullMQ forbids ':' in names). */
  generationQueue: string;
  /** Redis Stream of one request's token events. */
  requestStream(requestId: string): string;
  /** Marker that a request's client went away; checked before a queued job starts. */
  cancelMarker(requestId: string): string;
  /** Pub/sub channel announcing cancelled request ids to running gpu-nodes. */
  cancelChannel: string;
  /** Set of gpu-node ids that have announced themselves. */
  nodeSet: string;
  /** A gpu-node's status (JSON), expiring unless refreshed by its heartbeat. */
  nodeStatus(nodeId: string): string;
}

export function redisKeys(prefix: string, region: string): RedisKeys {
  if (/[:\s]/.test(region) || region === '') throw new TypeError(`region must be a non-empty name without ':' or spaces, got '${region}'`);
  const base = `${prefix}:${region}`;
  return {
    bullPrefix: prefix,
    generationQueue: `generate-${region}`,
    requestStream: (requestId) => `${base}:stream:${requestId}`,
    cancelMarker: (requestId) => `${base}:cancelled:${requestId}`,
    cancelChannel: `${base}:cancel`,
    nodeSet: `${base}:nodes`,
    nodeStatus: (nodeId) => `${base}:node:${nodeId}`,
  };
}
