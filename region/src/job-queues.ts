/**
 * Generation jobs in BullMQ: the one place that knows queue names, job options and priorities.
 * Producers (the gateway, batch workers) submit and cancel through `JobProducer`; gpu-nodes
 * consume with their own intake and use `rescueStrandedJobs` to move jobs off dead nodes' own
 * queues. Every job crossing into a queue is validated by its schema first.
 */
import { generationJobSchema, parseGenerationJob, parseWire, type GenerationJob, type JobPriorityName } from '@bamba/shared';
import { Queue, type JobsOptions } from 'bullmq';
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';

/** BullMQ priorities: a lower number runs first. */
const BULL_PRIORITY: Record<JobPriorityName, number> = { interactive: 1, batch: 10 };
/** Finished jobs stay visible briefly (and deduplicate a rescued job's re-add), then go. */
const KEEP_COMPLETED_SECONDS = 300;
const KEEP_FAILED_SECONDS = 3600;
const CANCEL_MARKER_TTL_SECONDS = 600;
/** BullMQ's job name for generation jobs. */
const JOB_NAME = 'generate';
/** Open handles on gpu-nodes' own queues a producer keeps (a queue is cheap to open again). */
const NODE_QUEUES_KEPT = 64;

/**
 * The BullMQ options of a generation job. A batch job goes as soon as it finishes: its token
 * stream (kept a while after its end) is what a restarted workers process reads, and a job id
 * the queue still held after its stream expired would make queueing the request again a no-op.
 */
export function generationJobOptions(job: GenerationJob, attempts: number): JobsOptions {
  const batch = job.priority === 'batch';
  return {
    jobId: job.requestId,
    priority: BULL_PRIORITY[job.priority],
    attempts,
    removeOnComplete: batch ? true : { age: KEEP_COMPLETED_SECONDS },
    removeOnFail: batch ? true : { age: KEEP_FAILED_SECONDS },
  };
}

function openQueue(redis: RegionRedis, keys: RegionKeys, name: string): Queue {
  const queue = new Queue(name, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => { /* surfaced per call */ });
  return queue;
}

/** Jobs waiting in a queue (not yet taken by a node). */
async function waitingIn(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('wait', 'prioritized');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

export class JobProducer {
  private readonly regionQueue: Queue;
  private readonly batchQueue: Queue;
  /** Per-node queues for affinity, opened on first use. */
  private readonly nodeQueues = new Map<string, Queue>();

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    /** Runs a job gets before it fails for good (a dead node costs one). */
    private readonly attempts: number,
  ) {
    this.regionQueue = openQueue(redis, keys, keys.generationQueue);
    this.batchQueue = openQueue(redis, keys, keys.batchGenerationQueue);
  }

  private queueFor(nodeId: string | undefined): Queue {
    if (!nodeId) return this.regionQueue;
    let queue = this.nodeQueues.get(nodeId);
    if (queue) {
      this.nodeQueues.delete(nodeId); // most recently used last
    } else {
      queue = openQueue(this.redis, this.keys, this.keys.nodeQueue(nodeId));
      // Nodes come and go (every restart is a new id): keep the handles of recent ones only.
      for (const [oldNodeId, oldQueue] of this.nodeQueues) {
        if (this.nodeQueues.size < NODE_QUEUES_KEPT) break;
        this.nodeQueues.delete(oldNodeId);
        void oldQueue.close().catch(() => {});
      }
    }
    this.nodeQueues.set(nodeId, queue);
    return queue;
  }

  /**
   * Queue a job: to its affinity node's own queue when it names one, a batch job to the region's
   * batch queue, else to the region's queue.
   */
  async submit(job: GenerationJob): Promise<void> {
    const checked = parseWire(generationJobSchema, job, 'generation job');
    // The node may have died a moment ago: its queue must be one the rescue sweeps (set first).
    if (checked.affinityNode) await this.redis.hset(this.keys.knownNodes, checked.affinityNode, '0');
    const queue = checked.affinityNode || checked.priority === 'interactive' ? this.queueFor(checked.affinityNode) : this.batchQueue;
    await queue.add(JOB_NAME, checked, generationJobOptions(checked, this.attempts));
  }

  /** Whether a request's token stream exists (its job started, or finished a short while ago). */
  async hasStream(relayGroup: string, requestId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.requestStream(relayGroup, requestId))) === 1;
  }

  /** Interactive jobs queued in the region and not yet started (what admission limits, per request). */
  waitingJobs(): Promise<number> {
    return waitingIn(this.regionQueue);
  }

  /** Jobs queued in the region and not yet started, by priority. */
  async waitingByPriority(): Promise<Record<JobPriorityName, number>> {
    const [interactive, batch] = await Promise.all([waitingIn(this.regionQueue), waitingIn(this.batchQueue)]);
    return { interactive, batch };
  }

  /**
   * Take a job back if it has not started (a batch cancelled or expired): true when it was
   * still waiting and is gone now; false when it runs (it is left to finish) or never existed.
   */
  async withdraw(requestId: string): Promise<boolean> {
    return (await this.batchQueue.remove(requestId)) === 1;
  }

  /** The client went away: a queued job is dropped, a running one is told to stop. */
  async cancel(requestId: string, affinityNode?: string): Promise<void> {
    await this.redis.set(this.keys.cancelMarker(requestId), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
    await this.redis.publish(this.keys.cancelChannel, requestId);
    // Still queued? Then it never starts. A running (locked) job is not removed (0): the
    // published cancel stops it on its node instead.
    await this.queueFor(affinityNode).remove(requestId);
    if (affinityNode) await this.regionQueue.remove(requestId); // rescued off a dead node meanwhile
    await this.batchQueue.remove(requestId);
  }

  async close(): Promise<void> {
    await Promise.all([this.regionQueue, this.batchQueue, ...this.nodeQueues.values()].map((queue) => queue.close()));
  }
}

/** Whether a request's client went away (checked before a queued job starts). */
export async function isCancelled(redis: RegionRedis, keys: RegionKeys, requestId: string): Promise<boolean> {
  return (await redis.exists(keys.cancelMarker(requestId))) === 1;
}

/**
 * A dead node with an empty queue is forgotten only after this long: a gateway may still send
 * it an affinity turn for a moment after it died (it looked alive a heartbeat ago).
 */
const FORGET_DEAD_NODE_AFTER_MS = 10 * 60_000;

/**
 * Move the jobs stranded in dead gpu-nodes' own queues (affinity turns sent there, waiting or
 * marked active by the dead node) to the region queue. A job whose lock still lives is left for
 * later. Each job is added to the region queue before it is removed from the dead one, under
 * the same id, so a crash between the two steps loses nothing and a repeat adds nothing (BullMQ
 * keeps one job per id). Returns how many moved.
 */
export async function rescueStrandedJobs(redis: RegionRedis, keys: RegionKeys, isAlive: (nodeId: string) => Promise<boolean>, onMalformed: (error: unknown) => void): Promise<number> {
  let moved = 0;
  const regionQueue = openQueue(redis, keys, keys.generationQueue);
  try {
    for (const [nodeId, deadSince] of Object.entries(await redis.hgetall(keys.knownNodes))) {
      if (await isAlive(nodeId)) continue;
      const queue = openQueue(redis, keys, keys.nodeQueue(nodeId));
      try {
        const jobs = await queue.getJobs(['wait', 'prioritized', 'active', 'delayed']);
        if (jobs.length === 0) {
          if (deadSince === '0') await redis.hset(keys.knownNodes, nodeId, String(Date.now()));
          else if (Date.now() - Number(deadSince) > FORGET_DEAD_NODE_AFTER_MS) await redis.hdel(keys.knownNodes, nodeId);
          continue;
        }
        for (const job of jobs) {
          if ((await redis.exists(`${queue.toKey(job.id!)}:lock`)) === 1) continue; // not expired yet
          let data: GenerationJob;
          try {
            data = parseGenerationJob(job.data);
          } catch (error) {
            onMalformed(error);
            await queue.remove(job.id!);
            continue;
          }
          const rescued: GenerationJob = { ...data, affinityNode: undefined, attemptOffset: (data.attemptOffset ?? 0) + job.attemptsStarted };
          delete rescued.affinityNode;
          await regionQueue.add(JOB_NAME, rescued, generationJobOptions(rescued, job.opts.attempts ?? 1));
          await queue.remove(job.id!);
          moved++;
        }
      } finally {
        await queue.close();
      }
    }
  } finally {
    await regionQueue.close();
  }
  return moved;
}
