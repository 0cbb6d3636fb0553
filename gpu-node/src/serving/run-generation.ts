/**
 * Runs one generation job on the engine: tokenize, take the reserved slot, generate, relay
 * tokens as events, free the slot. Knows nothing of queues or Redis: the intake decides what a
 * result or an error means for the job.
 */
import { BambaError, DeadlineExceededError, errorToWire, type GenerationJob } from '@bamba/shared';
import type { Engine } from '../engine/engine.js';
import type { RequestEvents } from '../events/request-events.js';

export type RunOutcome =
  | { kind: 'finished'; completionTokens: number }
  | { kind: 'cancelled' }
  /** The client's fault or otherwise permanent: reported to the client, never retried. */
  | { kind: 'rejected'; error: BambaError };

export function promptTokensFor(engine: Engine, job: GenerationJob): number[] {
  return job.input.kind === 'chat' ? engine.tokenizeChat(job.input.messages) : engine.tokenize(job.input.prompt);
}

/**
 * Throws only for failures worth retrying on another attempt (engine faults); anything the
 * client caused is returned as `rejected` after its error event is written.
 */
export async function runGeneration(engine: Engine, job: GenerationJob, events: RequestEvents, signal: AbortSignal, nowMs = Date.now): Promise<RunOutcome> {
  if (nowMs() > job.deadlineAtMs) {
    const error = new DeadlineExceededError('the request waited in the queue past its deadline');
    await events.error(errorToWire(error));
    return { kind: 'rejected', error };
  }
  const slot = engine.acquireSlot();
  if (!slot) throw new Error('bug: intake started a job without a free engine slot');
  try {
    let stream;
    let promptTokens: number[];
    try {
      promptTokens = promptTokensFor(engine, job);
      stream = engine.generate(slot, promptTokens, job.params, signal);
    } catch (error) {
      if (error instanceof BambaError && !error.retryable) {
        await events.error(errorToWire(error));
        return { kind: 'rejected', error };
      }
      throw error;
    }
    events.start(promptTokens.length);
    for await (const token of stream) events.delta(token.text, 1);
    const summary = await stream.summary;
    if (summary.finishReason === 'cancelled') return { kind: 'cancelled' };
    await events.end({
      finishReason: summary.finishReason,
      promptTokens: summary.promptTokens,
      completionTokens: summary.completionTokens,
      cachedTokens: 0,
      timeToFirstTokenMs: summary.timeToFirstTokenMs,
      totalMs: summary.totalMs,
    });
    return { kind: 'finished', completionTokens: summary.completionTokens };
  } finally {
    await engine.releaseSlot(slot);
  }
}
