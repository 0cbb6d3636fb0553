/**
 * Every live gpu-node sweeps now and then for jobs stranded in dead nodes' own queues (affinity
 * turns sent to a node that died) and moves them to the region queue (`rescueStrandedJobs`).
 */
import { rescueStrandedJobs, type NodeRegistry, type RegionKeys, type RegionRedis } from '@bamba/region';

export class StrandedJobSweeper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;

  constructor(
    private readonly redis: RegionRedis,
    private readonly keys: RegionKeys,
    private readonly registry: NodeRegistry,
    private readonly intervalMs: number,
    private readonly log: (message: string) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = this.sweep().finally(() => { this.sweeping = null; });
    }, this.intervalMs);
  }

  private async sweep(): Promise<void> {
    try {
      const moved = await rescueStrandedJobs(this.redis, this.keys, (nodeId) => this.registry.isAlive(nodeId), (error) => this.log(`stranded jobs: dropped a malformed job: ${(error as Error).message}`));
      if (moved > 0) this.log(`stranded jobs: moved ${moved} job(s) from dead nodes' queues to the region queue`);
    } catch (error) {
      this.log(`stranded jobs: ${(error as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sweeping;
  }
}
