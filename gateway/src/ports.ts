/**
 * What the gateway app needs from its runtime, as interfaces. The Node entry wires Redis and
 * BullMQ behind `Dispatcher`; tests and the Workers entry wire their own.
 */
import type { GenerationJob, NodeStatus, StreamEvent } from '@bamba/shared';

export interface SubmitOptions {
  /** BullMQ priority: lower runs first (`JobPriority`). */
  priority: number;
  /** Runs allowed before the job fails for good (a dead node costs one). */
  attempts: number;
}

export interface Dispatcher {
  /** Whether the region's Redis answers. */
  ping(): Promise<boolean>;
  /** gpu-nodes whose heartbeat is current. */
  liveNodes(): Promise<NodeStatus[]>;
  /** Jobs queued and not yet started. */
  waitingJobs(): Promise<number>;
  submit(job: GenerationJob, options: SubmitOptions): Promise<void>;
  /**
   * The request's token events in order, ending after `generation-end` or `generation-error`.
   * Throws `DeadlineExceededError` at `deadlineAtMs`; returns early when `signal` aborts.
   */
  events(requestId: string, deadlineAtMs: number, signal: AbortSignal): AsyncIterable<StreamEvent>;
  /** The client went away: drop the job if queued, stop it if running. */
  cancel(requestId: string): Promise<void>;
}

/** Time source (tests may pin it). */
export interface Clock {
  nowMs(): number;
}
