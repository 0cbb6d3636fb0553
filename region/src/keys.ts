/**
 * Every Redis key, queue and channel name of a region, in one place. `prefix` isolates
 * deployments (and tests), `region` isolates regions sharing one Redis.
 *
 * Redis Cluster: the part of a key in `{…}` (its hash tag) picks the slot. Keys that one Lua
 * script or one transaction touches share a tag:
 * - `{s:<family>}`: a session family (sessions, transcripts, turn locks, snapshot metadata and owners);
 * - `{snapshots}`: the snapshot index (LRU order, sizes, total bytes);
 * - `{nodes}`: the node registry;
 * - `{r:<group>}`: one gateway reader's request streams and its wake-up stream;
 * - BullMQ queue names are tagged themselves (`{generate-<region>}`), so each queue has a slot;
 * - `{c:<snapshot>:<index>}`: every snapshot chunk has its own tag, spreading bytes over shards;
 * - `{t:<tenant>}`: a tenant's usage (its sessions and their snapshot bytes) and its files;
 * - `{sessions}`: the region-wide live-session count; `{batches}`: batch counts by status.
 */
import { InternalInvariantError } from '@bamba/shared';
import { keyNamePattern } from './config.js';
import { isBatchId, isFileId, isResponseId, sessionFamily, snapshotFamily } from './ids.js';

export interface RegionKeys {
  /** BullMQ queue of the workers' cross-region work: replicating sessions, moving them in. */
  readonly regionWorkQueue: string;
  /** The region's name (`BAMBA_REGION`): the home in the ids it makes. */
  readonly region: string;
  /** BullMQ's own key prefix. */
  readonly bullPrefix: string;
  /** BullMQ queue of the region's interactive generation jobs. */
  readonly generationQueue: string;
  /**
   * BullMQ queue of the region's batch generation jobs: apart, so a gpu-node takes them only
   * into the slots batches may hold (all but one), never into the one kept for interactive ones.
   */
  readonly batchGenerationQueue: string;
  /** BullMQ queue of one gpu-node's own jobs (affinity: turns of sessions resident there). */
  nodeQueue(nodeId: string): string;
  /** Redis Stream of one request's token events, in its gateway reader's relay group. */
  requestStream(relayGroup: string, requestId: string): string;
  /** Stream a relay group's reader also blocks on, so a new request wakes it at once. */
  relayWake(relayGroup: string): string;
  /** Present (with a short TTL its gateway keeps renewing) while a relay group's reader is alive. */
  relayPresence(relayGroup: string): string;
  /** Marker that a request's client went away; checked before a queued job starts. */
  cancelMarker(requestId: string): string;
  /** Pub/sub channel announcing cancelled request ids to running gpu-nodes. */
  readonly cancelChannel: string;
  /** Set of gpu-node ids that announced themselves (their status keys expire). */
  readonly nodeSet: string;
  /** A gpu-node's status (JSON), expiring unless refreshed by its heartbeat. */
  nodeStatus(nodeId: string): string;
  /**
   * gpu-nodes whose own queue may hold jobs (HASH node id → '0', or the epoch ms since when it
   * was found dead with an empty queue): every node that announced itself or was sent a job.
   */
  readonly knownNodes: string;
  /** Session record (HASH, fields in `session-fields.ts`). */
  session(sessionId: string): string;
  /** Session transcript (LIST of JSON messages): the source of truth. */
  sessionTranscript(sessionId: string): string;
  /** One turn at a time: holds the request id of the running turn (or of a move exporting it). */
  sessionLock(sessionId: string): string;
  /** A moved session's forwarding record: its id in the region it moved to (expires with it). */
  sessionForward(sessionId: string): string;
  /** Every snapshot taken for the session's turns (SET), dropped with the session. */
  sessionSnapshots(sessionId: string): string;
  /** Snapshot metadata (HASH): tenant, fingerprint, token count and hash, bytes, chunks. */
  snapshotMeta(snapshotId: string): string;
  /** Session keys whose latest state this snapshot is (SET); such a snapshot is never evicted. */
  snapshotOwners(snapshotId: string): string;
  /** One chunk of a snapshot's bytes (1 MiB at most per Redis command). */
  snapshotChunk(snapshotId: string, index: number): string;
  /** Snapshots by last use (ZSET, score = epoch ms): eviction order. */
  readonly snapshotLru: string;
  /** Bytes of every stored snapshot (HASH id → bytes): what cleaning one up deletes. */
  readonly snapshotSizes: string;
  /** Total snapshot bytes stored (counter). */
  readonly snapshotBytes: string;
  /** Prefix cache: (tenant, fingerprint, token-sequence hash) → snapshot id. */
  prefixEntry(tenant: string, fingerprint: string, tokenHash: string): string;
  /** A stored response (HASH, fields in `response-store.ts`). */
  response(responseId: string): string;
  /** A tenant's live sessions (ZSET, score = expiry epoch ms): its session count. */
  tenantSessions(tenant: string): string;
  /** Bytes of each of a tenant's sessions' latest snapshot (HASH), and their total (field `total`). */
  tenantSessionBytes(tenant: string): string;
  /** Every tenant's live sessions (ZSET, score = expiry epoch ms): the region's session count. */
  readonly regionSessions: string;
  /** An uploaded file's record (HASH, fields in `file-store.ts`), in its tenant's slot. */
  file(tenant: string, fileId: string): string;
  /** A tenant's files (ZSET, score = created epoch ms): listing order. */
  tenantFiles(tenant: string): string;
  /** The running batches reading a file (SET of batch ids): it cannot be deleted meanwhile. */
  fileUsers(tenant: string, fileId: string): string;
  /** A batch's record (HASH, fields in `batch-store.ts`), in its tenant's slot. */
  batch(tenant: string, batchId: string): string;
  /** A batch's finished requests (HASH line → output line JSON) until it is finalized. */
  batchResults(tenant: string, batchId: string): string;
  /** A tenant's batches (ZSET, score = created epoch ms). */
  tenantBatches(tenant: string): string;
  /** BullMQ queue of batches for the workers. */
  readonly batchQueue: string;
  /** Batches by status across tenants (HASH status → count), for /metrics and /status. */
  readonly batchStatusCounts: string;
  /** Batch requests finished across tenants (HASH completed, failed, completion_tokens). */
  readonly batchRequestCounts: string;
  /** Each workers process's batch requests in flight (HASH process id → JSON {inFlight, atMs}). */
  readonly batchWorkers: string;
}

function checkName(what: string, value: string): string {
  if (!keyNamePattern.test(value)) throw new InternalInvariantError(`${what} '${value}' may not appear in a Redis key`);
  return value;
}

export function regionKeys(prefix: string, region: string): RegionKeys {
  checkName('prefix', prefix);
  checkName('region', region);
  const base = `${prefix}:${region}`;
  const family = (id: string, familyOf: (id: string) => string | null): string => {
    const found = familyOf(id);
    if (!found) throw new InternalInvariantError(`'${id.slice(0, 40)}' is not an id of ours; parse ids before building keys`);
    return `${base}:{s:${found}}`;
  };
  const session = (sessionId: string) => `${family(sessionId, sessionFamily)}:session:${sessionId}`;
  const snapshotMeta = (snapshotId: string) => `${family(snapshotId, snapshotFamily)}:snapshot:${snapshotId}`;
  const relay = (group: string) => `${base}:{r:${checkName('relay group', group)}}`;
  return {
    region,
    bullPrefix: prefix,
    generationQueue: `{generate-${region}}`,
    batchGenerationQueue: `{generate-batch-${region}}`,
    nodeQueue: (nodeId) => `{generate-${region}-node-${checkName('node id', nodeId)}}`,
    requestStream: (group, requestId) => `${relay(group)}:stream:${requestId}`,
    relayWake: (group) => `${relay(group)}:wake`,
    relayPresence: (group) => `${relay(group)}:alive`,
    cancelMarker: (requestId) => `${base}:cancelled:${requestId}`,
    cancelChannel: `${base}:cancel`,
    nodeSet: `${base}:{nodes}:set`,
    nodeStatus: (nodeId) => `${base}:{nodes}:node:${nodeId}`,
    knownNodes: `${base}:{nodes}:known`,
    session,
    sessionTranscript: (sessionId) => `${session(sessionId)}:transcript`,
    sessionLock: (sessionId) => `${session(sessionId)}:lock`,
    sessionForward: (sessionId) => `${session(sessionId)}:moved-to`,
    sessionSnapshots: (sessionId) => `${session(sessionId)}:snapshots`,
    snapshotMeta,
    snapshotOwners: (snapshotId) => `${snapshotMeta(snapshotId)}:owners`,
    snapshotChunk: (snapshotId, index) => `${base}:{c:${snapshotId}:${index}}`,
    snapshotLru: `${base}:{snapshots}:lru`,
    snapshotSizes: `${base}:{snapshots}:sizes`,
    snapshotBytes: `${base}:{snapshots}:bytes`,
    prefixEntry: (tenant, fingerprint, tokenHash) => `${base}:prefix:${tenant}:${fingerprint}:${tokenHash}`,
    response: (responseId) => {
      if (!isResponseId(responseId)) throw new InternalInvariantError(`'${responseId.slice(0, 40)}' is not a response id; parse ids before building keys`);
      return `${base}:response:${responseId}`;
    },
    tenantSessions: (tenant) => `${base}:{t:${checkName('tenant', tenant)}}:sessions`,
    tenantSessionBytes: (tenant) => `${base}:{t:${checkName('tenant', tenant)}}:session-bytes`,
    regionSessions: `${base}:{sessions}:live`,
    file: (tenant, fileId) => {
      if (!isFileId(fileId)) throw new InternalInvariantError(`'${fileId.slice(0, 40)}' is not a file id; parse ids before building keys`);
      return `${base}:{t:${checkName('tenant', tenant)}}:file:${fileId}`;
    },
    tenantFiles: (tenant) => `${base}:{t:${checkName('tenant', tenant)}}:files`,
    fileUsers: (tenant, fileId) => `${base}:{t:${checkName('tenant', tenant)}}:file-users:${fileId}`,
    batch: (tenant, batchId) => {
      if (!isBatchId(batchId)) throw new InternalInvariantError(`'${batchId.slice(0, 40)}' is not a batch id; parse ids before building keys`);
      return `${base}:{t:${checkName('tenant', tenant)}}:batch:${batchId}`;
    },
    batchResults: (tenant, batchId) => `${base}:{t:${checkName('tenant', tenant)}}:batch:${batchId}:results`,
    tenantBatches: (tenant) => `${base}:{t:${checkName('tenant', tenant)}}:batches`,
    batchQueue: `{batches-${region}}`,
    regionWorkQueue: `{region-work-${region}}`,
    batchStatusCounts: `${base}:{batches}:by-status`,
    batchRequestCounts: `${base}:{batches}:requests`,
    batchWorkers: `${base}:{batches}:workers`,
  };
}
