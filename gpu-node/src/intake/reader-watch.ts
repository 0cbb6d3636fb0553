/**
 * Stops jobs that generate for nobody: a job marked `endsWithReader` whose gateway reader is gone
 * (the gateway was killed, or lost Redis, so its presence keys lapsed) is stopped, which frees
 * the slot and leaves a session turn uncommitted; the stream ends with a retryable `reader_gone`
 * error, in case a reader is there after all. A read that fails stops nothing: unknown is not gone.
 */
import { absentRelayGroups, type RegionKeys, type RegionRedis } from '@bamba/region';
import type { GenerationJob } from '@bamba/shared';
import type { CancelReason } from './interruption.js';

/** How often running jobs' readers are checked: one EXISTS per reader group, side by side. */
export const READER_CHECK_MS = 2_000;

/** Whether a job's gateway reader is gone (only a job marked `endsWithReader` has one that matters). */
export async function readerGone(redis: RegionRedis, keys: RegionKeys, job: GenerationJob): Promise<boolean> {
  return job.endsWithReader === true && (await absentRelayGroups(redis, keys, [job.relayGroup])).size > 0;
}

export interface ReaderWatchTarget {
  runningJobs(): GenerationJob[];
  cancel(requestId: string, reason: CancelReason): void;
}

export class ReaderWatch {
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    private readonly target: ReaderWatchTarget,
    private readonly log: (message: string) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => { void this.check(); }, READER_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    if (this.checking) return; // a slow Redis: one check at a time
    this.checking = true;
    try {
      const bound = this.target.runningJobs().filter((job) => job.endsWithReader);
      if (bound.length === 0) return;
      const absent = await absentRelayGroups(this.redis, this.keys, bound.map((job) => job.relayGroup));
      for (const job of bound) {
        if (!absent.has(job.relayGroup)) continue;
        this.log(`stopping ${job.requestId}: its gateway's reader is gone`);
        this.target.cancel(job.requestId, 'reader-gone');
      }
    } catch {
      // Redis is away: checked again on the next tick.
    } finally {
      this.checking = false;
    }
  }
}
