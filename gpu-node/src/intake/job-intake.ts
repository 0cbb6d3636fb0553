/**
 * The only BullMQ code of the gpu-node. Pulls a generation job only once a slot is reserved
 * for it (manual fetching), keeps its lock alive while it runs, and lets BullMQ's stalled-job
 * check hand a dead node's jobs to another node. A job whose failure is the client's (or
 * otherwise permanent) fails with `UnrecoverableError`, so it is not retried.
 */
import { randomUUID } from 'node:crypto';
import type { RegionKeys, RegionRedis } from '@bamba/region';
import { parseGenerationJob, type GenerationJob } from '@bamba/shared';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { SlotScheduler } from '../scheduler/slot-scheduler.js';
import type { RunOutcome } from '../serving/run-generation.js';

export interface JobContext {
  job: GenerationJob;
  /** 1 for the first run of a job, higher when it is retried (another node died). */
  attempt: number;
  isLastAttempt: boolean;
  signal: AbortSignal;
}

export interface JobIntakeOptions {
  /** A connection in `queue` mode (BullMQ blocks on duplicates of it). */
  connection: RegionRedis;
  keys: RegionKeys;
  scheduler: SlotScheduler;
  /** BullMQ queue name of this node's own (affinity) queue. */
  ownQueue: string;
  lockDurationMs: number;
  stalledIntervalMs: number;
  run: (context: JobContext) => Promise<RunOutcome>;
  /** Whether the client already went away (checked before a queued job starts). */
  isCancelled: (requestId: string) => Promise<boolean>;
  /** A job whose data fails its schema: it is failed for good; this may tell its client. */
  onMalformed: (data: unknown, error: unknown) => Promise<void>;
  log: (message: string) => void;
  /** Called after a job's slot is free again (to publish node status at once). */
  onSlotFreed?: () => void;
}

const FETCH_RETRY_DELAY_MS = 500;

export class JobIntake {
  private readonly worker: Worker;
  /** This node's own queue: turns of sessions resident here (affinity). */
  private readonly ownWorker: Worker;
  private ownLoop: Promise<void> | null = null;
  private readonly running = new Map<string, AbortController>();
  private stopping = false;
  private loop: Promise<void> | null = null;
  completed = 0;
  /** Most jobs ever running at once (reservations waiting for a job do not count). */
  maxRunning = 0;

  constructor(private readonly options: JobIntakeOptions) {
    this.worker = this.manualWorker(options.keys.generationQueue);
    this.ownWorker = this.manualWorker(options.ownQueue);
  }

  /** A BullMQ worker without a processor: this class fetches, locks and completes jobs itself. */
  private manualWorker(queueName: string): Worker {
    const { options } = this;
    const worker = new Worker(queueName, null, {
      connection: options.connection,
      prefix: options.keys.bullPrefix,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 1,
      autorun: false,
      drainDelay: 1,
    });
    worker.on('error', (error) => options.log(`intake: ${error.message}`));
    return worker;
  }

  start(): void {
    void this.worker.startStalledCheckTimer();
    void this.ownWorker.startStalledCheckTimer();
    this.loop = this.pullJobs();
    this.ownLoop = this.pullOwnJobs();
  }

  /** Jobs running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Abort a running request (its client went away). */
  cancel(requestId: string): void {
    this.running.get(requestId)?.abort();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.options.scheduler.wakeAll();
    for (const controller of this.running.values()) controller.abort();
    await Promise.all([this.worker.close(), this.ownWorker.close()]);
    await Promise.all([this.loop, this.ownLoop]);
  }

  /**
   * Affinity jobs are sent here only while this node reports a free slot, so this loop fetches
   * first and reserves after (a short wait at most); reserving first would hold a slot idle
   * while blocked on a queue that is usually empty.
   */
  private async pullOwnJobs(): Promise<void> {
    const { scheduler, log } = this.options;
    while (!this.stopping) {
      const token = randomUUID();
      let job: Job | undefined;
      try {
        job = await this.ownWorker.getNextJob(token, { block: true });
      } catch (error) {
        if (!this.stopping) log(`intake: fetching an affinity job failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, FETCH_RETRY_DELAY_MS));
        continue;
      }
      if (!job) continue;
      while (!scheduler.tryReserve()) {
        if (this.stopping) return;
        await scheduler.waitForFree();
      }
      void this.handle(job, token).finally(() => {
        scheduler.release();
        this.options.onSlotFreed?.();
      });
    }
  }

  private async pullJobs(): Promise<void> {
    const { scheduler, log } = this.options;
    while (!this.stopping) {
      await scheduler.waitForFree();
      if (this.stopping) break;
      if (!scheduler.tryReserve()) continue;
      const token = randomUUID();
      let job: Job | undefined;
      try {
        job = await this.worker.getNextJob(token, { block: true });
      } catch (error) {
        scheduler.release();
        if (!this.stopping) log(`intake: fetching a job failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, FETCH_RETRY_DELAY_MS));
        continue;
      }
      if (!job) { scheduler.release(); continue; }
      void this.handle(job, token).finally(() => {
        scheduler.release();
        this.options.onSlotFreed?.();
      });
    }
  }

  private async handle(job: Job, token: string): Promise<void> {
    let data: GenerationJob;
    try {
      data = parseGenerationJob(job.data);
    } catch (error) {
      this.options.log(`intake: job ${job.id} is malformed: ${(error as Error).message}`);
      await this.options.onMalformed(job.data, error).catch(() => {});
      await job.moveToFailed(new UnrecoverableError((error as Error).message), token, false).catch(() => {});
      return;
    }
    const controller = new AbortController();
    this.running.set(data.requestId, controller);
    this.maxRunning = Math.max(this.maxRunning, this.running.size);
    const { lockDurationMs, log } = this.options;
    const renewLock = setInterval(() => {
      job.extendLock(token, lockDurationMs).catch((error: Error) => log(`intake: lock renewal for ${job.id} failed: ${error.message}`));
    }, Math.max(50, Math.floor(lockDurationMs / 3)));
    try {
      if (await this.options.isCancelled(data.requestId)) {
        await job.moveToCompleted({ outcome: 'client-gone' }, token, false);
        return;
      }
      const outcome = await this.options.run({
        job: data,
        attempt: (data.attemptOffset ?? 0) + job.attemptsStarted,
        isLastAttempt: job.attemptsStarted >= (job.opts.attempts ?? 1),
        signal: controller.signal,
      });
      if (outcome.kind === 'rejected') await job.moveToFailed(new UnrecoverableError(outcome.error.message), token, false);
      else await job.moveToCompleted({ outcome: outcome.kind }, token, false);
      this.completed++;
    } catch (error) {
      log(`intake: job ${job.id} failed: ${(error as Error).message}`);
      await job.moveToFailed(error as Error, token, false).catch((moveError: Error) => log(`intake: could not fail job ${job.id}: ${moveError.message}`));
    } finally {
      clearInterval(renewLock);
      this.running.delete(data.requestId);
    }
  }
}
