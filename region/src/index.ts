/**
 * @bamba/region: everything that talks to a region's Redis (Node only; the only importer of
 * ioredis, and with the gpu-node's intake the only user of BullMQ). Key names, Lua scripts,
 * record fields and job options are each written once, here.
 */
export { regionEnvShape, drainEnvShape, filesEnvShape, jobEnvShape, logLevelEnvShape, replicationEnvShape, regionConfigFrom, parseEnvironment, keyNamePattern, type RegionConfig, type RedisTarget } from './config.js';
export { connectRedis, isCluster, type RegionRedis, type ConnectOptions } from './connection.js';
export { connectBulkBytes, ioredisBulkBytes, BULK_CONNECTIONS_DEFAULT, type BulkBytes, type BulkBytesOptions } from './bulk-bytes.js';
export { regionKeys, type RegionKeys } from './keys.js';
export { newSessionId, isSessionId, sessionFamily, movedSessionId, newSnapshotId, isSnapshotId, newResponseId, isResponseId, newItemId, newFileId, isFileId, newBatchId, isBatchId, batchFileId } from './ids.js';
export { ResponseStore } from './response-store.js';
export { followRequestStream, markCancelled } from './request-stream-reader.js';
export { SessionStore, KEEP_SNAPSHOT, TurnCommitRefused, type ForkRefusal, type SessionView, type TurnCommit, type CommitOutcome } from './session-store.js';
export type { CommittedTurn } from './session-fields.js';
export { SnapshotStore, SNAPSHOT_CHUNK_BYTES, type SnapshotInfo, type PutSnapshotOptions, type ForgetOutcome } from './snapshot-store.js';
export { JobProducer, generationJobOptions, isCancelled, rescueStrandedJobs } from './job-queues.js';
export { TokenEventWriter, type TokenEvents, type TokenEventWriterOptions } from './token-event-writer.js';
export { StreamRelay, RelaySubscription, type StreamRelayOptions } from './stream-relay.js';
export { absentRelayGroups, DEFAULT_RELAY_PRESENCE_TTL_MS, MIN_RELAY_PRESENCE_TTL_MS } from './relay-presence.js';
export { NodeRegistry } from './node-registry.js';
export { redisOutageError } from './outage.js';
export { TenantUsage, type TenantUsageFigures } from './tenant-usage.js';
export { FileStore, type NewFile, type FilePage } from './file-store.js';
export { BatchStore, type BatchFigures, type NewBatch } from './batch-store.js';
export { BatchQueue, startBatchWorker, type BatchJob, type BatchWorker, type BatchWorkerOptions } from './batch-queue.js';
export { SessionTransfer, sessionCopySchema, sessionExportSchema, exportedSnapshotSchema, type SessionCopy, type SessionExport, type ReplicaOutcome } from './session-transfer.js';
export { RegionWorkQueue, startRegionWorker, MoveRefused, moveResultSchema, type MoveJob, type MoveResult, type ReplicateJob, type RegionWorkHandlers } from './region-work-queue.js';
