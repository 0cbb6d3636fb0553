/**
 * Why a running job was stopped before it finished. The intake aborts a run's signal with one
 * of these as the reason, and whoever wrote the run's events decides what the client hears.
 */
export type InterruptionReason =
  /** The client went away: nothing more to say to anyone. */
  | 'client-gone'
  /** The gateway reading the job's events is gone (killed, or cut off from Redis): said on the stream, in case a reader remains. */
  | 'reader-gone'
  /** The request's deadline passed: the client gets a 504 (it may have given up already). */
  | 'deadline'
  /** This node is stopping and its drain time is up: the job goes back to the queue. */
  | 'node-stopping'
  /** The job's lock could not be renewed: another node may run it now, so this run must stop. */
  | 'lock-lost';

/** Why a job is stopped from outside its run: its client hung up, or its gateway reader is gone. */
export type CancelReason = Extract<InterruptionReason, 'client-gone' | 'reader-gone'>;

export class RunInterrupted extends Error {
  constructor(readonly reason: InterruptionReason) {
    super(`run interrupted: ${reason}`);
    this.name = 'RunInterrupted';
  }
}

/** The reason `signal` was aborted with, if it was a `RunInterrupted`. */
export function interruptionOf(signal: AbortSignal): InterruptionReason | null {
  return signal.aborted && signal.reason instanceof RunInterrupted ? signal.reason.reason : null;
}
