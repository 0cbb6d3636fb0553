/**
 * A running gpu-node: the engine, the intake pulling jobs when slots free, the event writer,
 * the heartbeat, and the cancellation listener, wired together.
 */
import {
  connectBulkBytes,
  connectRedis,
  isCancelled,
  NodeRegistry,
  RegionWorkQueue,
  regionKeys,
  SessionStore,
  SnapshotStore,
  TokenEventWriter,
} from '@bamba/region';
import { BambaError, DeadlineExceededError, errorToWire, generationJobSchema, ServerError, ServiceUnavailableError, type NodeStatus } from '@bamba/shared';
import type { GpuNodeConfig } from './config.js';
import type { Engine, Slot } from './engine/engine.js';
import { createLlamaEngine } from './engine/llama-engine.js';
import { interruptionOf } from './intake/interruption.js';
import { JobIntake, type IntakeOutcome, type JobContext } from './intake/job-intake.js';
import { HostTier } from './scheduler/host-tier.js';
import { StrandedJobSweeper } from './intake/stranded-jobs.js';
import { ReaderWatch, readerGone } from './intake/reader-watch.js';
import { Heartbeat } from './registry/heartbeat.js';
import { ResidencyTable } from './scheduler/residency-table.js';
import { SlotScheduler } from './scheduler/slot-scheduler.js';
import { bounded } from './util/bounded.js';
import { PendingSnapshots } from './serving/pending-snapshots.js';
import { runGeneration } from './serving/run-generation.js';
import type { ServingDeps } from './serving/serving-deps.js';

export interface RunningGpuNode {
  nodeId: string;
  engine: Engine;
  stop(): Promise<void>;
}

/** How long a stopping node waits for any one Redis step. */
const STOP_STEP_TIMEOUT_MS = 2000;

/** What a malformed job must still carry for its client to hear about the failure. */
const replyAddress = generationJobSchema.pick({ requestId: true, relayGroup: true, deadlineAtMs: true });
/** What a job says of the session turn it holds the lock of. */
const turnAddress = generationJobSchema.pick({ requestId: true, session: true });

export async function startGpuNode(config: GpuNodeConfig, log: (message: string) => void = (message) => process.stderr.write(`${message}\n`)): Promise<RunningGpuNode> {
  const engine = await createLlamaEngine({
    modelPath: config.modelPath,
    device: config.device,
    slots: config.slots,
    flashAttention: config.flashAttention,
    isolatePrompts: config.isolatePrompts,
    snapshotEncoding: config.snapshotEncoding,
    ...(config.stateDir ? { stateDir: config.stateDir } : {}),
    ...(config.contextSize ? { contextSize: config.contextSize } : {}),
    ...(config.threads ? { threads: config.threads } : {}),
  });
  const keys = regionKeys(config.region.prefix, config.region.region);
  const redis = connectRedis(config.region.redis, { role: `gpu-node:${config.nodeId}`, mode: 'queue' });
  const subscriber = connectRedis(config.region.redis, { role: `gpu-node-cancel:${config.nodeId}`, mode: 'queue' });
  const writer = new TokenEventWriter(redis, keys, config.nodeId, { flushIntervalMs: config.eventFlushMs, fingerprint: engine.info.fingerprint });
  const registry = new NodeRegistry(redis, keys);
  const scheduler = new SlotScheduler(config.slots);
  const snapshotBytes = connectBulkBytes(config.region.redis, { role: `gpu-node:${config.nodeId}`, mode: 'queue' });
  const snapshots = new SnapshotStore(redis, keys, config.snapshotBudgetBytes, snapshotBytes);
  const regionWork = config.replicateSessions ? new RegionWorkQueue(redis, keys) : null;
  const sessions = new SessionStore(redis, keys, snapshots);
  /**
   * A session turn that ended for good without a commit (refused, failed, cancelled) gives the
   * session back now. Its gateway does too, but it may be gone (killed, or cut off from Redis),
   * and the lock would hold every turn off until its TTL (the request deadline + 30 s).
   */
  const releaseTurn = async (job: unknown) => {
    const turn = turnAddress.safeParse(job);
    if (turn.success && turn.data.session) await sessions.unlockTurn(turn.data.session.sessionId, turn.data.requestId).catch(() => { /* its TTL ends it */ });
  };
  const serving: ServingDeps = {
    engine,
    nodeId: config.nodeId,
    snapshots,
    sessions,
    residency: new ResidencyTable<Slot>(Math.min(config.residentSessions, config.slots)),
    hostTier: new HostTier<Buffer>(config.hostTierBytes),
    systemCheckpointTokens: config.systemCheckpointTokens,
    prefixLookups: { systemHits: 0, turnHits: 0, misses: 0 },
    prefixCache: config.prefixCache,
    pendingSnapshots: new PendingSnapshots(),
    readerGone: (job) => readerGone(redis, keys, job),
    log,
    ...(regionWork ? { replicate: (sessionId: string, version: number) => regionWork.replicate(sessionId, version) } : {}),
    // Testing the one window a commit cannot close: the node dies after the commit, before the end event.
    ...(config.faultInjection === 'die-after-commit' ? { afterCommit: () => process.kill(process.pid, 'SIGKILL') } : {}),
    ...(config.faultInjection === 'die-after-end' ? { afterEnd: () => process.kill(process.pid, 'SIGKILL') } : {}),
  };
  const startedAtMs = Date.now();
  let accepting = true;

  const status = (): Omit<NodeStatus, 'v'> => ({
    nodeId: config.nodeId,
    region: config.region.region,
    device: engine.info.device,
    models: [{ id: config.modelId, contextSize: engine.info.contextSize, fingerprint: engine.info.fingerprint }],
    slots: config.slots,
    busySlots: intake.runningCount,
    maxBusySlots: intake.maxRunning,
    residentSessions: serving.residency.size,
    hostTierSessions: config.hostTierBytes > 0 ? serving.hostTier.size : null,
    hostTierBytes: config.hostTierBytes > 0 ? serving.hostTier.bytes : null,
    prefixLookups: { ...serving.prefixLookups },
    snapshotBudgetBytes: config.snapshotBudgetBytes,
    completedRequests: intake.completed,
    accepting,
    startedAtMs,
    heartbeatAtMs: Date.now(),
  });
  const heartbeat = new Heartbeat(registry, config.heartbeatMs, status, log);

  const intake: JobIntake = new JobIntake({
    connection: redis,
    keys,
    ownQueue: keys.nodeQueue(config.nodeId),
    scheduler,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    log,
    onSlotFreed: () => { heartbeat.beat().catch(() => {}); }, // show the freed slot now, not at the next beat
    whyCancelled: async (job) => ((await isCancelled(redis, keys, job.requestId)) ? 'client-gone' : (await readerGone(redis, keys, job)) ? 'reader-gone' : null),
    onRefused: async (data, reason, attempt) => {
      try {
        // Tell the waiting client, if the job says enough to find its stream.
        const address = replyAddress.safeParse(data);
        if (!address.success) return;
        const failure = reason instanceof BambaError ? reason : new ServerError(`the job failed for good: ${reason.message}`, { code: 'job_failed' });
        await writer.forRequest(address.data, attempt).error(errorToWire(failure));
      } finally {
        await releaseTurn(data);
      }
    },
    // Not for a retried or handed-back job (another attempt holds the turn), nor an abandoned one (another node runs it).
    onEndedForGood: (job) => releaseTurn(job),
    run: async (context): Promise<IntakeOutcome> => {
      const outcome = await runJob(context);
      // The job's lock was lost meanwhile: whatever this run concluded, the job is another node's now.
      if (outcome.kind !== 'finished' && interruptionOf(context.signal) === 'lock-lost') return { kind: 'abandoned' };
      return outcome;
    },
  });

  /** One run of a job, and what becomes of it; throws when BullMQ should retry it. */
  async function runJob({ job, attempt, isLastAttempt, signal }: JobContext): Promise<IntakeOutcome> {
    const events = writer.forRequest(job, attempt);
    const fail = async (error: ServerError | ServiceUnavailableError | DeadlineExceededError): Promise<IntakeOutcome> => {
      await events.error(errorToWire(error)).catch(() => {});
      return { kind: 'rejected', error };
    };
    let outcome;
    try {
      outcome = await runGeneration(serving, job, events, signal);
    } catch (error) {
      if (interruptionOf(signal) === 'lock-lost') return { kind: 'abandoned' };
      if (!isLastAttempt) throw error; // BullMQ retries it, maybe elsewhere
      return fail(new ServerError(`generation failed on node ${config.nodeId}`, { code: 'engine_error', cause: error }));
    }
    if (outcome.kind !== 'cancelled') return outcome;
    switch (interruptionOf(signal)) {
      case 'deadline': return fail(new DeadlineExceededError('the request did not finish before its deadline'));
      // Said on the stream: a reader that is still there after all (its presence was lost with Redis's data) hears why, rather than waiting for its deadline.
      case 'reader-gone': return fail(new ServiceUnavailableError('the gateway relaying this request went away, so the gpu-node stopped it; retry', { code: 'reader_gone' }));
      case 'lock-lost': return { kind: 'abandoned' }; // another node may be running it now
      case 'node-stopping':
        if (isLastAttempt) return fail(new ServiceUnavailableError('the gpu-node stopped before the request finished and it has no attempts left; retry', { code: 'node_stopping' }));
        await events.retry('node-stopping').catch(() => {});
        return { kind: 'handed-back' };
      default: return outcome; // the client went away
    }
  }

  const sweeper = new StrandedJobSweeper(redis, keys, registry, config.stalledIntervalMs, log);
  const readers = new ReaderWatch(redis, keys, intake, log);
  await subscriber.subscribe(keys.cancelChannel);
  subscriber.on('message', (_channel: string, requestId: string) => intake.cancel(requestId));
  await heartbeat.start();
  intake.start();
  sweeper.start();
  readers.start();
  log(`gpu-node ${config.nodeId}: serving ${config.modelId} on ${engine.info.device} with ${config.slots} slots (context ${engine.info.contextSize})`);

  return {
    nodeId: config.nodeId,
    engine,
    /** Drain (see JobIntake.stop), leave the registry, close. Redis steps are bounded, so an outage cannot hang it. */
    async stop() {
      accepting = false;
      readers.stop(); // a stopping node hands its jobs back instead
      // Independent steps run side by side, each bounded.
      await bounded(Promise.all([heartbeat.beat() /* no more affinity turns here */, sweeper.stop()]), STOP_STEP_TIMEOUT_MS);
      await intake.stop(config.drainTimeoutMs, STOP_STEP_TIMEOUT_MS);
      await bounded(Promise.all([heartbeat.stop(config.nodeId), writer.flush()]), STOP_STEP_TIMEOUT_MS);
      await regionWork?.close().catch(() => {});
      await snapshotBytes.close();
      subscriber.disconnect();
      redis.disconnect();
      await engine.close();
    },
  };
}
