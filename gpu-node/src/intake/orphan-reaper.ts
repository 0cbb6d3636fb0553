/**
 * Rescues jobs stranded in the own queue of a gpu-node that died: affinity turns sent to it,
 * waiting or still marked active by the dead node. Every live node sweeps now and then; a job is
 * removed from the dead queue first (atomic, refused while its lock lives) and then re-added to
 * the region queue, so two sweepers never both re-add it. A crash between the two steps loses
 * the job; its request then ends at its deadline instead of hanging.
 */
import type { GenerationJob, RedisKeys } from '@bamba/shared';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export class OrphanReaper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  private readonly regionQueue: Queue;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly intervalMs: number,
    private readonly log: (message: string) => void,
  ) {
    this.regionQueue = new Queue(keys.generationQueue, { connection: redis, prefix: keys.bullPrefix });
    this.regionQueue.on('error', () => {});
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      this.sweep().catch((error: Error) => this.log(`reaper: ${error.message}`)).finally(() => { this.sweeping = false; });
    }, this.intervalMs);
  }

  /** Move jobs of dead nodes' own queues to the region queue. Returns how many moved. */
  async sweep(): Promise<number> {
    let moved = 0;
    for (const nodeId of await this.redis.smembers(this.keys.knownNodes)) {
      if ((await this.redis.exists(this.keys.nodeStatus(nodeId))) === 1) continue;
      const queue = new Queue(this.keys.nodeQueue(nodeId), { connection: this.redis, prefix: this.keys.bullPrefix });
      queue.on('error', () => {});
      try {
        const jobs = await queue.getJobs(['wait', 'prioritized', 'active', 'delayed']);
        if (jobs.length === 0) {
          await this.redis.srem(this.keys.knownNodes, nodeId);
          continue;
        }
        for (const job of jobs) {
          try {
            await job.remove();
          } catch {
            continue; // still locked: the dead node's lock has not expired yet
          }
          const data = job.data as GenerationJob;
          await this.regionQueue.add(job.name, { ...data, attemptOffset: (data.attemptOffset ?? 0) + job.attemptsStarted }, {
            jobId: job.id!,
            ...(job.opts.priority !== undefined ? { priority: job.opts.priority } : {}),
            attempts: job.opts.attempts ?? 1,
            ...(job.opts.removeOnComplete !== undefined ? { removeOnComplete: job.opts.removeOnComplete } : {}),
            ...(job.opts.removeOnFail !== undefined ? { removeOnFail: job.opts.removeOnFail } : {}),
          });
          moved++;
        }
      } finally {
        await queue.close();
      }
    }
    if (moved > 0) this.log(`reaper: moved ${moved} job(s) from dead nodes' queues to the region queue`);
    return moved;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.regionQueue.close();
  }
}
