/**
 * A running gpu-node: the engine, the intake pulling jobs when slots free, the event writer,
 * the heartbeat, and the cancellation listener, wired together.
 */
import { errorToWire, redisKeys, ServerError, type NodeStatus } from '@bamba/shared';
import { Redis } from 'ioredis';
import type { GpuNodeConfig } from './config.js';
import type { Engine, Slot } from './engine/engine.js';
import { createLlamaEngine } from './engine/llama-engine.js';
import { RedisEventWriter } from './events/redis-event-writer.js';
import { JobIntake } from './intake/job-intake.js';
import { OrphanReaper } from './intake/orphan-reaper.js';
import { Heartbeat } from './registry/heartbeat.js';
import { SlotScheduler } from './scheduler/slot-scheduler.js';
import { ResidencyTable } from './scheduler/residency-table.js';
import { runGeneration, type RunOutcome } from './serving/run-generation.js';
import type { ServingDeps } from './serving/serving-deps.js';
import { SessionStore } from './state/session-store.js';
import { SnapshotStore } from './state/snapshot-store.js';

export interface RunningGpuNode {
  nodeId: string;
  engine: Engine;
  stop(): Promise<void>;
}

export async function startGpuNode(config: GpuNodeConfig, log: (message: string) => void = (message) => process.stderr.write(`${message}\n`)): Promise<RunningGpuNode> {
  const engine = await createLlamaEngine({
    modelPath: config.modelPath,
    device: config.device,
    slots: config.slots,
    flashAttention: config.flashAttention,
    ...(config.contextSize ? { contextSize: config.contextSize } : {}),
    ...(config.threads ? { threads: config.threads } : {}),
  });
  const keys = redisKeys(config.redisPrefix, config.region);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const writer = new RedisEventWriter(redis, keys, config.nodeId);
  const scheduler = new SlotScheduler(config.slots);
  const serving: ServingDeps = {
    engine,
    nodeId: config.nodeId,
    snapshots: new SnapshotStore(redis, keys, config.snapshotBudgetBytes),
    sessions: new SessionStore(redis, keys, config.sessionTtlSeconds),
    residency: new ResidencyTable<Slot>(Math.min(config.residentSessions, config.slots)),
    prefixCache: config.prefixCache,
    log,
  };
  const startedAtMs = Date.now();

  const status = (): NodeStatus => ({
    nodeId: config.nodeId,
    region: config.region,
    device: engine.info.device,
    models: [{ id: config.modelId, contextSize: engine.info.contextSize, fingerprint: engine.info.fingerprint }],
    slots: config.slots,
    busySlots: intake.runningCount,
    maxBusySlots: intake.maxRunning,
    completedRequests: intake.completed,
    startedAtMs,
    heartbeatAtMs: Date.now(),
  });
  const heartbeat = new Heartbeat(redis, keys, config.heartbeatMs, status, log);

  const intake: JobIntake = new JobIntake({
    connection: redis,
    keys,
    ownQueue: keys.nodeQueue(config.nodeId),
    scheduler,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    log,
    onSlotFreed: () => { heartbeat.beat().catch(() => {}); }, // show the freed slot now, not at the next beat
    isCancelled: async (requestId) => (await redis.exists(keys.cancelMarker(requestId))) === 1,
    run: async ({ job, attempt, isLastAttempt, signal }): Promise<RunOutcome> => {
      const events = writer.forRequest(job.requestId, attempt);
      try {
        return await runGeneration(serving, job, events, signal);
      } catch (error) {
        if (!isLastAttempt) throw error; // BullMQ retries it, maybe elsewhere
        const failure = new ServerError(`generation failed on node ${config.nodeId}`, { code: 'engine_error', cause: error });
        await events.error(errorToWire(failure));
        return { kind: 'rejected', error: failure };
      }
    },
  });

  const reaper = new OrphanReaper(redis, keys, config.stalledIntervalMs, log);
  await subscriber.subscribe(keys.cancelChannel);
  subscriber.on('message', (_channel: string, requestId: string) => intake.cancel(requestId));
  await heartbeat.start();
  intake.start();
  reaper.start();
  log(`gpu-node ${config.nodeId}: serving ${config.modelId} on ${engine.info.device} with ${config.slots} slots (context ${engine.info.contextSize})`);

  return {
    nodeId: config.nodeId,
    engine,
    async stop() {
      await reaper.stop();
      await intake.stop();
      await heartbeat.stop(config.nodeId);
      await writer.flush();
      subscriber.disconnect();
      redis.disconnect();
      await engine.close();
    },
  };
}
