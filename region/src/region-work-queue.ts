/**
 * The workers' cross-region work, in BullMQ: replicating a session's transcript to the region
 * that backs it up (one job per committed turn, its id naming the turn, so a commit queued
 * twice runs once; running it again changes nothing), and moving a session into this region
 * (one job per move, its id the move's). Jobs are retried until they succeed or, for a move,
 * until its deadline passes; a workers process that dies leaves them to the next one.
 */
import { MOVE_ID_PATTERN, parseWire, wireVersionField, WIRE_VERSION, REGION_NAME_PATTERN } from '@bamba/shared';
import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { isSessionId } from './ids.js';
import type { RegionKeys } from './keys.js';

const replicateJobSchema = z.object({ ...wireVersionField, kind: z.literal('replicate'), sessionId: z.string().refine(isSessionId, 'not a session id') });
const moveJobSchema = z.object({
  ...wireVersionField,
  kind: z.literal('move'),
  moveId: z.string().regex(MOVE_ID_PATTERN),
  sessionId: z.string().refine(isSessionId, 'not a session id'),
  /** Where the session lives now (this region pulls it from there). */
  source: z.string().regex(REGION_NAME_PATTERN),
  /** The tenant asking: only its own session moves. */
  tenant: z.string().min(1),
  deadlineAtMs: z.number().int().positive(),
});
const regionWorkSchema = z.discriminatedUnion('kind', [replicateJobSchema, moveJobSchema]);
export type ReplicateJob = Omit<z.infer<typeof replicateJobSchema>, 'v'>;
export type MoveJob = Omit<z.infer<typeof moveJobSchema>, 'v'>;
export type RegionWork = ReplicateJob | MoveJob;

/** What a finished move says: the session's id in this region, and whether its state came along. */
export const moveResultSchema = z.object({ newId: z.string().refine(isSessionId), snapshotMoved: z.boolean(), reason: z.string() });
export type MoveResult = z.infer<typeof moveResultSchema>;

/** BullMQ priorities: moves (a client waits) before replication (nobody waits). */
const PRIORITY = { move: 1, replicate: 10 } as const;
/** A replica that cannot be delivered (the peer is down) is tried again this often, for a day. */
const REPLICATE_RETRY_MS = 1000;
const REPLICATE_ATTEMPTS = 86_400;
const MOVE_ATTEMPTS = 3;
const KEEP_FINISHED_SECONDS = 600;

/** A move that cannot succeed (no such session, wrong tenant, …): not retried. */
export class MoveRefused extends Error {
  constructor(readonly code: 'session_not_found' | 'session_busy' | 'region_unknown' | 'expired', message: string) {
    super(message);
  }
}

export class RegionWorkQueue {
  private readonly queue: Queue;

  constructor(redis: RegionRedis, keys: RegionKeys) {
    this.queue = new Queue(keys.regionWorkQueue, { connection: redis, prefix: keys.bullPrefix });
    this.queue.on('error', () => { /* surfaced per call */ });
  }

  /**
   * Replicate the session as of turn `version` (queued once per turn), or, with 'gone', its
   * absence: it was deleted or moved away, so its replica goes too.
   */
  async replicate(sessionId: string, version: number | 'gone'): Promise<void> {
    const data = parseWire(replicateJobSchema, { v: WIRE_VERSION, kind: 'replicate', sessionId }, 'replicate job');
    await this.queue.add('replicate', data, {
      jobId: `replicate-${sessionId}-${version}`,
      priority: PRIORITY.replicate,
      attempts: REPLICATE_ATTEMPTS,
      backoff: { type: 'fixed', delay: REPLICATE_RETRY_MS },
      removeOnComplete: true,
      removeOnFail: { age: KEEP_FINISHED_SECONDS },
    });
  }

  /** Queue a move and wait for its outcome until its deadline. Throws the move's error (a `MoveRefused` keeps its code). */
  async move(job: MoveJob): Promise<MoveResult> {
    const data = parseWire(moveJobSchema, { ...job, v: WIRE_VERSION }, 'move job');
    await this.queue.add('move', data, {
      jobId: job.moveId,
      priority: PRIORITY.move,
      attempts: MOVE_ATTEMPTS,
      backoff: { type: 'fixed', delay: 200 },
      removeOnComplete: { age: KEEP_FINISHED_SECONDS },
      removeOnFail: { age: KEEP_FINISHED_SECONDS },
    });
    for (;;) {
      // The state first, then the job: a job read before it finished holds no return value yet,
      // even when its state, read a moment later, says completed.
      const state = await this.queue.getJobState(job.moveId);
      if (state === 'unknown') throw new Error('the move job vanished');
      if (state === 'completed' || state === 'failed') {
        const found = await Job.fromId(this.queue, job.moveId);
        if (!found) throw new Error('the move job vanished');
        if (state === 'completed') return moveResultSchema.parse(found.returnvalue);
        if (found.attemptsMade >= MOVE_ATTEMPTS || found.failedReason.startsWith('refused:')) throw refusalFrom(found.failedReason);
      }
      if (Date.now() > job.deadlineAtMs) throw new Error('the move did not finish in time; it may still complete');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

function refusalFrom(reason: string): Error {
  const match = /^refused:(session_not_found|session_busy|region_unknown|expired):(.*)$/s.exec(reason);
  return match ? new MoveRefused(match[1] as MoveRefused['code'], match[2]!) : new Error(reason);
}

export interface RegionWorkHandlers {
  replicate(job: ReplicateJob): Promise<void>;
  move(job: MoveJob): Promise<MoveResult>;
}

/** Run the region's work queue with `handlers` (the workers process). */
export function startRegionWorker(connection: RegionRedis, keys: RegionKeys, handlers: RegionWorkHandlers, options: { concurrency: number; onError: (error: unknown) => void }): { close(): Promise<void> } {
  const worker = new Worker(keys.regionWorkQueue, async (job) => {
    const data = parseWire(regionWorkSchema, job.data, 'region work job');
    if (data.kind === 'replicate') return handlers.replicate({ kind: 'replicate', sessionId: data.sessionId });
    const { v: _version, ...move } = data;
    try {
      return await handlers.move(move);
    } catch (error) {
      // A refusal is final: no retry can change it.
      if (error instanceof MoveRefused) throw new UnrecoverableError(`refused:${error.code}:${error.message}`);
      throw error;
    }
  }, { connection, prefix: keys.bullPrefix, concurrency: options.concurrency });
  worker.on('error', options.onError);
  worker.on('failed', (_job, error) => options.onError(error));
  return { close: () => worker.close() };
}
