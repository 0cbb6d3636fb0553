/**
 * Announces this gpu-node in the region's registry every `intervalMs`; its status expires after
 * a few missed beats, so a node that dies simply disappears.
 */
import type { NodeRegistry } from '@bamba/region';
import type { NodeStatus } from '@bamba/shared';

/** A status outlives a few missed beats (GC pauses) but not a dead node. */
const EXPIRY_IN_BEATS = 3;

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly intervalMs: number,
    private readonly status: () => Omit<NodeStatus, 'v'>,
    private readonly log: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => { this.beat().catch((error: Error) => this.log(`heartbeat: ${error.message}`)); }, this.intervalMs);
  }

  /** Publish now (after a change worth showing at once, like a freed slot). */
  async beat(): Promise<void> {
    await this.registry.publish(this.status(), this.intervalMs * EXPIRY_IN_BEATS);
  }

  async stop(nodeId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.registry.remove(nodeId);
  }
}
