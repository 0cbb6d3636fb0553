/**
 * The queue of batches the workers run (BullMQ, one job per batch, the batch id as job id so a
 * batch is queued once). A batch job is not retried for failing: it is the record in Redis that
 * holds the progress, so a run that stops (the workers process stopped or died, Redis went away)
 * is simply run again, by whichever workers process takes it next, and carries on from there.
 */
import { parseWire, wireVersionField, WIRE_VERSION } from '@bamba/shared';
import { Queue, Worker } from 'bullmq';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { isBatchId } from './ids.js';
import type { RegionKeys } from './keys.js';

const batchJobSchema = z.object({
  ...wireVersionField,
  batchId: z.string().refine(isBatchId, 'not a batch id'),
  tenant: z.string().min(1),
});
export type BatchJob = Omit<z.infer<typeof batchJobSchema>, 'v'>;

/** A stopped or failed run is run again after this long, as often as it takes. */
const RERUN_DELAY_MS = 1000;
const RERUNS = 1_000_000;
const KEEP_FINISHED_SECONDS = 3600;

export class BatchQueue {
  private readonly queue: Queue;

  constructor(redis: RegionRedis, keys: RegionKeys) {
    this.queue = new Queue(keys.batchQueue, { connection: redis, prefix: keys.bullPrefix });
    this.queue.on('error', () => { /* surfaced per call */ });
  }

  async submit(job: BatchJob): Promise<void> {
    const data = parseWire(batchJobSchema, { ...job, v: WIRE_VERSION }, 'batch job');
    await this.queue.add('batch', data, {
      jobId: job.batchId,
      attempts: RERUNS,
      backoff: { type: 'fixed', delay: RERUN_DELAY_MS },
      removeOnComplete: { age: KEEP_FINISHED_SECONDS },
      removeOnFail: { age: KEEP_FINISHED_SECONDS },
    });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export interface BatchWorkerOptions {
  /** Batches run at once by this process. */
  concurrency: number;
  /** A run's lock; a process that died releases its batches after this long. */
  lockDurationMs: number;
  /** How often this process looks for batches whose process died. */
  stalledIntervalMs: number;
  onError: (error: unknown) => void;
}

export interface BatchWorker {
  /** Stop taking batches; the ones running are told to stop (`signal`) and run again later. */
  close(): Promise<void>;
}

/**
 * Run batches from the queue with `run`. `run` returns when the batch is finished (or needs
 * nothing more); it throws to be run again later, and is told to stop through `signal`.
 */
export function startBatchWorker(connection: RegionRedis, keys: RegionKeys, run: (job: BatchJob, signal: AbortSignal) => Promise<void>, options: BatchWorkerOptions): BatchWorker {
  const stopping = new AbortController();
  const worker = new Worker(keys.batchQueue, async (job) => {
    const data = parseWire(batchJobSchema, job.data, 'batch job');
    await run({ batchId: data.batchId, tenant: data.tenant }, stopping.signal);
    if (stopping.signal.aborted) throw new Error('the workers process is stopping; the batch runs again');
  }, {
    connection,
    prefix: keys.bullPrefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    // A process that died mid-batch leaves it stalled: it is taken up again, however often.
    maxStalledCount: RERUNS,
  });
  worker.on('error', options.onError);
  worker.on('failed', (_job, error) => { if (!stopping.signal.aborted) options.onError(error); });
  return {
    async close() {
      stopping.abort();
      await worker.close();
    },
  };
}
