/**
 * The only BullMQ code of the gpu-node. Pulls a generation job only once a slot is reserved for
 * it (manual fetching), keeps its lock alive from the moment it is fetched, and lets BullMQ's
 * stalled-job check hand a dead node's jobs to another node. A job runs at most once at a time:
 * a run whose lock cannot be renewed is stopped (another node may have it now), and a job that
 * stalled more often than allowed fails for good. A job whose failure is the client's (or
 * otherwise permanent) fails with `UnrecoverableError`, so it is not retried.
 *
 * Three queues: the region's interactive queue (a slot reserved first, then a job awaited), this
 * node's own queue (affinity turns) and the region's batch queue (a job awaited first, then a
 * slot a batch may take: never the last free one, which stays for interactive requests).
 *
 * Stopping drains: no new jobs are taken, running ones may finish within the drain time, the
 * rest are interrupted and handed back to the queue for another node.
 */
import { randomUUID } from 'node:crypto';
import type { RegionKeys, RegionRedis } from '@bamba/region';
import { parseGenerationJob, ServerError, type GenerationJob } from '@bamba/shared';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { SlotKind, SlotScheduler } from '../scheduler/slot-scheduler.js';
import type { RunOutcome } from '../serving/run-generation.js';
import { bounded } from '../util/bounded.js';
import { RunInterrupted, type CancelReason } from './interruption.js';

export interface JobContext {
  job: GenerationJob;
  /** 1 for the first run of a job, higher when it is retried (another node died). */
  attempt: number;
  isLastAttempt: boolean;
  /** Aborted with a `RunInterrupted` reason when the run must stop early. */
  signal: AbortSignal;
}

/** What became of a run, for the queue. */
export type IntakeOutcome =
  | RunOutcome
  /** Interrupted by a stopping node: back to the queue for another attempt. */
  | { kind: 'handed-back' }
  /** The lock was lost: the job is someone else's now; leave it alone. */
  | { kind: 'abandoned' };

export interface JobIntakeOptions {
  /** A connection in `queue` mode (BullMQ blocks on duplicates of it). */
  connection: RegionRedis;
  keys: RegionKeys;
  scheduler: SlotScheduler;
  /** BullMQ queue name of this node's own (affinity) queue. */
  ownQueue: string;
  lockDurationMs: number;
  stalledIntervalMs: number;
  run: (context: JobContext) => Promise<IntakeOutcome>;
  /** Whether the client already went away, or its reader did (checked beside a queued job's start); null when neither. */
  whyCancelled: (job: GenerationJob) => Promise<CancelReason | null>;
  /**
   * A job whose data fails its schema, or that stalled too often: it fails for good; tell its
   * client, numbering the error event `attempt` (this fetch's: readers drop an older attempt's).
   */
  onRefused: (data: unknown, reason: Error, attempt: number) => Promise<void>;
  /** A job that ended without an answer (refused, failed or cancelled) is marked so in the queue: it never runs again. */
  onEndedForGood?: (job: GenerationJob) => Promise<void>;
  log: (message: string) => void;
  /** Called after a job's slot is free again (to publish node status at once). */
  onSlotFreed?: () => void;
}

const FETCH_RETRY_DELAY_MS = 500;
/** Seconds a blocking fetch waits on an empty queue: how long a stopping node's loops take to notice. */
const FETCH_BLOCK_SECONDS = 1;

/**
 * The attempt a fetch of `job` runs as: BullMQ's count of its starts (this one included) plus
 * what a rescue from a dead node's queue carried over (`attemptOffset`). Every event of the run,
 * a refusal's included, carries it: readers drop events older than the newest start they saw.
 */
function attemptOf(job: Job, attemptOffset: number | undefined): number {
  return (attemptOffset ?? 0) + job.attemptsStarted;
}

export class JobIntake {
  private readonly worker: Worker;
  /** This node's own queue: turns of sessions resident here (affinity). */
  private readonly ownWorker: Worker;
  /**
   * The region's batch queue: a job fetched from it waits for a slot a batch may take (never the
   * last free one), so the loop holds no slot while the batch queue is empty.
   */
  private readonly batchWorker: Worker;
  private readonly running = new Map<string, { job: GenerationJob; controller: AbortController; done: Promise<void> }>();
  private stopping = false;
  private loops: Array<Promise<void>> = [];
  completed = 0;
  /** Most jobs ever running at once (reservations waiting for a job do not count). */
  maxRunning = 0;

  constructor(private readonly options: JobIntakeOptions) {
    this.worker = this.manualWorker(options.keys.generationQueue);
    this.ownWorker = this.manualWorker(options.ownQueue);
    this.batchWorker = this.manualWorker(options.keys.batchGenerationQueue);
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
      drainDelay: FETCH_BLOCK_SECONDS,
    });
    worker.on('error', (error) => options.log(`intake: ${error.message}`));
    return worker;
  }

  start(): void {
    void this.worker.startStalledCheckTimer();
    void this.ownWorker.startStalledCheckTimer();
    void this.batchWorker.startStalledCheckTimer();
    this.loops = [this.pullJobs(this.worker, 'reserve-first'), this.pullJobs(this.ownWorker, 'fetch-first'), this.pullJobs(this.batchWorker, 'fetch-first', 'batch')];
  }

  /** Jobs running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** The jobs running now. */
  runningJobs(): GenerationJob[] {
    return [...this.running.values()].map((run) => run.job);
  }

  /** Abort a running request (its client went away, or the gateway reading it did). */
  cancel(requestId: string, reason: CancelReason = 'client-gone'): void {
    this.running.get(requestId)?.controller.abort(new RunInterrupted(reason));
  }

  /**
   * Stop taking jobs, give running ones `drainMs` to finish, interrupt the rest (they are handed
   * back to the queue), then close.
   */
  async stop(drainMs: number, stepLimitMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.stopping = true;
    this.options.scheduler.wakeAll();
    await bounded(Promise.all([...this.running.values()].map((run) => run.done)), drainMs);
    for (const run of this.running.values()) run.controller.abort(new RunInterrupted('node-stopping'));
    // Each step is bounded: with Redis gone, a hand-back or a blocking fetch could wait for ever.
    await bounded(Promise.all([...this.running.values()].map((run) => run.done)), stepLimitMs);
    await bounded(Promise.all([...this.loops, this.worker.close(), this.ownWorker.close(), this.batchWorker.close()]), stepLimitMs);
  }

  /**
   * `reserve-first` (the region queue): hold a free slot, then wait for a job. `fetch-first`
   * (this node's own queue, usually empty): wait for a job, then for a slot; affinity jobs come
   * here only while this node reports a free slot, so that wait is short, and the job's lock is
   * renewed from the moment it is fetched, so it never looks stalled meanwhile.
   */
  private async pullJobs(worker: Worker, order: 'reserve-first' | 'fetch-first', kind: SlotKind = 'any'): Promise<void> {
    const { scheduler, log } = this.options;
    while (!this.stopping) {
      if (order === 'reserve-first' && !(await scheduler.reserve(kind))) break; // woken without a slot: stopping
      const token = randomUUID();
      let job: Job | undefined;
      // The region loop's reservation, while it waits, is the slot kept for interactive requests.
      const awaiting = order === 'reserve-first' && kind === 'any';
      if (awaiting) scheduler.awaitingJob(1);
      try {
        job = await worker.getNextJob(token, { block: true });
      } catch (error) {
        if (order === 'reserve-first') scheduler.release();
        if (!this.stopping) log(`intake: fetching a job failed: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, FETCH_RETRY_DELAY_MS));
        continue;
      } finally {
        if (awaiting) scheduler.awaitingJob(-1);
      }
      if (!job) {
        if (order === 'reserve-first') scheduler.release();
        continue;
      }
      const lock = this.keepLocked(job, token);
      const reserved = order === 'reserve-first' || (await scheduler.reserve(kind));
      if (this.stopping || !reserved) {
        // Taken while stopping: straight back to the queue, for another node.
        lock.stop();
        await job.moveToWait(token).catch((error: Error) => log(`intake: could not hand back ${job.id}: ${error.message}`));
        if (reserved) scheduler.release();
        break;
      }
      const done = this.handle(job, token, lock).finally(() => {
        scheduler.release();
        this.options.onSlotFreed?.();
      });
      void done;
    }
  }

  /** Renew a job's lock every third of its duration; `lost` aborts when renewal fails. */
  private keepLocked(job: Job, token: string): { lost: AbortController; stop(): void } {
    const { lockDurationMs, log } = this.options;
    const lost = new AbortController();
    const timer = setInterval(() => {
      job.extendLock(token, lockDurationMs).then(
        (renewed) => { if (!renewed) lost.abort(new RunInterrupted('lock-lost')); },
        (error: Error) => {
          log(`intake: lock renewal for ${job.id} failed: ${error.message}`);
          lost.abort(new RunInterrupted('lock-lost'));
        },
      );
    }, Math.max(50, Math.floor(lockDurationMs / 3)));
    return { lost, stop: () => clearInterval(timer) };
  }

  private async handle(job: Job, token: string, lock: { lost: AbortController; stop(): void }): Promise<void> {
    const { log } = this.options;
    const refuse = async (reason: Error, attemptOffset?: number) => {
      await this.options.onRefused(job.data, reason, attemptOf(job, attemptOffset)).catch(() => {});
      await job.moveToFailed(new UnrecoverableError(reason.message), token, false).catch(() => {});
    };
    let data: GenerationJob;
    try {
      data = parseGenerationJob(job.data);
    } catch (error) {
      log(`intake: job ${job.id} is malformed: ${(error as Error).message}`);
      lock.stop();
      await refuse(error as Error);
      return;
    }
    if (job.deferredFailure) {
      // BullMQ found it stalled more often than maxStalledCount: a job that keeps killing or
      // stalling its node must not be retried forever. Said as what happened, not in BullMQ's words.
      lock.stop();
      log(`intake: job ${job.id} is not run again: ${job.deferredFailure}`);
      await refuse(new ServerError('the gpu-nodes running this request stopped twice before it finished, so it is not run a third time (in case the request itself brings nodes down); retry it, and report it if it fails the same way again', { code: 'repeated_node_failure' }), data.attemptOffset);
      return;
    }
    const controller = new AbortController();
    const onLockLost = () => controller.abort(lock.lost.signal.reason);
    lock.lost.signal.addEventListener('abort', onLockLost, { once: true });
    const deadline = setTimeout(() => controller.abort(new RunInterrupted('deadline')), Math.max(0, data.deadlineAtMs - Date.now()));
    let finish!: () => void;
    this.running.set(data.requestId, { job: data, controller, done: new Promise<void>((resolve) => { finish = resolve; }) });
    this.maxRunning = Math.max(this.maxRunning, this.running.size);
    try {
      // A client that left while its job was queued: checked beside the run, not before it, so
      // the common case does not wait for the answer (the run stops once it arrives).
      void this.options.whyCancelled(data).then(
        (reason) => { if (reason) controller.abort(new RunInterrupted(reason)); },
        () => {},
      );
      const outcome = await this.options.run({
        job: data,
        attempt: attemptOf(job, data.attemptOffset),
        isLastAttempt: job.attemptsStarted >= (job.opts.attempts ?? 1),
        signal: controller.signal,
      });
      switch (outcome.kind) {
        case 'rejected': await job.moveToFailed(new UnrecoverableError(outcome.error.message), token, false); break;
        case 'handed-back': await job.moveToFailed(new Error('handed back by a stopping gpu-node'), token, false); break;
        case 'abandoned': break; // not ours any more
        default: await job.moveToCompleted({ outcome: outcome.kind }, token, false);
      }
      this.completed++;
      // Only once the queue says so (a move that threw leaves the job to be retried).
      if (outcome.kind === 'rejected' || outcome.kind === 'cancelled') await this.options.onEndedForGood?.(data).catch(() => {});
    } catch (error) {
      log(`intake: job ${job.id} failed: ${(error as Error).message}`);
      await job.moveToFailed(error as Error, token, false).catch((moveError: Error) => log(`intake: could not fail job ${job.id}: ${moveError.message}`));
    } finally {
      clearTimeout(deadline);
      lock.stop();
      lock.lost.signal.removeEventListener('abort', onLockLost);
      this.running.delete(data.requestId);
      finish();
    }
  }
}
