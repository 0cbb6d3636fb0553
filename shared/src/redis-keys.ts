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
  /** Every gpu-node id that ever announced itself (SET): whose own queue may hold orphaned jobs. */
  knownNodes: string;
  /** BullMQ queue name of one gpu-node's own queue (affinity: turns of its resident sessions). */
  nodeQueue(nodeId: string): string;
  /** Session record (HASH): tenant, model, version, token count, snapshot id, resident node. */
  session(sessionId: string): string;
  /** Session transcript (LIST of JSON messages): the source of truth. */
  sessionTranscript(sessionId: string): string;
  /** One turn at a time: holds the request id of the running turn. */
  sessionLock(sessionId: string): string;
  /** Snapshot metadata (HASH): tenant, fingerprint, token count, token hash, bytes, chunk count. */
  snapshotMeta(snapshotId: string): string;
  /** One chunk of a snapshot's bytes (a few MiB at most per Redis command). */
  snapshotChunk(snapshotId: string, index: number): string;
  /** Sessions whose latest state this snapshot is (SET); such a snapshot is never evicted. */
  snapshotOwners(snapshotId: string): string;
  /** Snapshots by last use (ZSET, score = epoch ms): eviction order. */
  snapshotLru: string;
  /** Total snapshot bytes stored (counter). */
  snapshotBytes: string;
  /** Prefix cache: (tenant, fingerprint, token-sequence hash) → snapshot id. */
  prefixEntry(tenant: string, fingerprint: string, tokenHash: string): string;
}

/** Key templates for Lua scripts that derive snapshot and session keys from ids. */
export function snapshotKeyTemplates(keys: RedisKeys): [meta: string, chunk: string, owners: string, session: string] {
  return [keys.snapshotMeta('{id}'), keys.snapshotChunk('{id}', '{index}' as unknown as number), keys.snapshotOwners('{id}'), keys.session('{id}')];
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
    knownNodes: `${base}:known-nodes`,
    nodeQueue: (nodeId) => `generate-${region}-node-${nodeId}`,
    session: (sessionId) => `${base}:session:${sessionId}`,
    sessionTranscript: (sessionId) => `${base}:session:${sessionId}:transcript`,
    sessionLock: (sessionId) => `${base}:session:${sessionId}:lock`,
    snapshotMeta: (snapshotId) => `${base}:snapshot:${snapshotId}`,
    snapshotChunk: (snapshotId, index) => `${base}:snapshot:${snapshotId}:chunk:${index}`,
    snapshotOwners: (snapshotId) => `${base}:snapshot:${snapshotId}:owners`,
    snapshotLru: `${base}:snapshots:lru`,
    snapshotBytes: `${base}:snapshots:bytes`,
    prefixEntry: (tenant, fingerprint, tokenHash) => `${base}:prefix:${tenant}:${fingerprint}:${tokenHash}`,
  };
}
