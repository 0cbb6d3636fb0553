/**
 * The workers process of a region: GPU-less, it runs the region's batches (and, later, the
 * other background work: replication, moves, expiry) from BullMQ queues. Wiring only; the work
 * is in the runners.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { randomSeed } from '@bamba/shared';
import { BatchStore, connectBulkBytes, connectRedis, FileStore, JobProducer, NodeRegistry, regionKeys, SessionStore, SessionTransfer, SnapshotStore, startBatchWorker, startRegionWorker, type RegionKeys, type RegionRedis } from '@bamba/region';
import type { WorkersConfig } from './config.js';
import { runBatch } from './batch-runner.js';
import { InFlightLimit } from './in-flight-limit.js';
import { moveSession } from './move-session.js';
import { RegionPeers } from './region-peers.js';
import { replicateSession } from './replicate-session.js';

export interface RunningWorkers {
  /** Stop taking work; running batches stop where they are and carry on in the next process. */
  stop(): Promise<void>;
}

/** How often this process reports its batch requests in flight. */
const IN_FLIGHT_REPORT_MS = 2000;
/** Live slots are read at most this often for the in-flight limit. */
const SLOTS_MAX_AGE_MS = 1000;

export async function startWorkers(config: WorkersConfig, log: (line: string) => void): Promise<RunningWorkers> {
  const keys = regionKeys(config.region.prefix, config.region.region);
  const redis = connectRedis(config.region.redis, { role: 'workers', mode: 'queue' });
  const producer = new JobProducer(redis, keys, config.jobAttempts);
  const registry = new NodeRegistry(redis, keys);
  const batches = new BatchStore(redis, keys);
  let slots = { count: 1, readAtMs: 0 };
  const inFlight = new InFlightLimit(async () => {
    if (config.batchMaxInFlight > 0) return config.batchMaxInFlight;
    if (Date.now() - slots.readAtMs > SLOTS_MAX_AGE_MS) {
      const nodes = await registry.liveNodes().catch(() => []);
      // One slot of every gpu-node stays free for interactive requests (a 1-slot node gives none).
      slots = { count: nodes.filter((node) => node.accepting).reduce((sum, node) => sum + node.slots - 1, 0), readAtMs: Date.now() };
    }
    return slots.count;
  });
  const deps = {
    redis,
    keys,
    producer,
    registry,
    batches,
    files: new FileStore(redis, keys, resolve(config.filesDir)),
    defaults: { maxTokens: config.defaultMaxTokens, maxMessages: config.maxMessages, randomSeed },
    maxLineBytes: config.maxLineBytes,
    inFlight,
    sharePrefixes: config.batchSharedPrefixes,
    log,
    onResult: (outcome: 'completed' | 'failed', completionTokens: number) => void batches.countRequest(outcome, completionTokens),
  };
  // The region's figures show batch requests in flight: each process reports its own.
  const processId = `${hostname()}-${process.pid}`;
  const report = setInterval(() => void batches.reportInFlight(processId, inFlight.inFlight), IN_FLIGHT_REPORT_MS);
  const worker = startBatchWorker(redis, keys, (job, signal) => runBatch(deps, job, signal), {
    concurrency: config.batchConcurrency,
    lockDurationMs: config.batchLockDurationMs,
    stalledIntervalMs: config.batchStalledIntervalMs,
    onError: (error) => log(`batch run stopped: ${error instanceof Error ? error.message : String(error)} (it runs again)`),
  });
  // Every gateway and workers process of the region must share this directory (uploads land there).
  log(`running batches (${config.batchConcurrency} at once; files in ${deps.files.directory})`);
  const regionWorker = config.crossRegion ? startCrossRegionWork(config, redis, keys, registry, log) : null;
  return {
    async stop() {
      clearInterval(report);
      await regionWorker?.close();
      await worker.close();
      await batches.forgetProcess(processId);
      await producer.close();
      redis.disconnect();
    },
  };
}

/** Replication and moves (a region with peers): one BullMQ worker on the region's work queue. */
function startCrossRegionWork(config: WorkersConfig, redis: RegionRedis, keys: RegionKeys, registry: NodeRegistry, log: (line: string) => void) {
  const { map, secret, concurrency } = config.crossRegion!;
  // The snapshot store is written here only by moves; the gpu-nodes own the budget (eviction).
  const snapshotBytes = connectBulkBytes(config.region.redis, { role: 'workers', mode: 'queue' });
  const snapshots = new SnapshotStore(redis, keys, Number.MAX_SAFE_INTEGER, snapshotBytes);
  const transfer = new SessionTransfer(redis, keys, snapshots);
  const peers = new RegionPeers(map, secret);
  const here = config.region.region;
  const replicateDeps = { here, map, transfer, peers };
  const moveDeps = { here, peers, transfer, sessions: new SessionStore(redis, keys, snapshots), snapshots, registry };
  const worker = startRegionWorker(redis, keys, {
    replicate: async (job) => {
      const outcome = await replicateSession(replicateDeps, job.sessionId);
      // Both regions committed a turn on the same history (a failover while home still served):
      // each keeps its own; say so, since only a person can merge them.
      if (outcome === 'conflict') log(`replication conflict: session ${job.sessionId} has turns here that its other region's copy lacks, and the other way round; neither was overwritten`);
    },
    move: async (job) => {
      const result = await moveSession(moveDeps, job);
      log(`moved session ${job.sessionId} here as ${result.newId} (${result.reason})`);
      return result;
    },
  }, { concurrency, onError: (error) => log(`cross-region work: ${error instanceof Error ? error.message : String(error)} (retried)`) });
  log(`replicating sessions and taking moves (regions: ${map.regions.map((entry) => entry.name).join(', ')})`);
  return {
    async close() {
      await worker.close();
      await snapshotBytes.close();
    },
  };
}
