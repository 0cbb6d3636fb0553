/**
 * The port generation code writes token events to; the Redis implementation sits beside it.
 * Keeping it an interface lets the runner be tested without Redis.
 */
import type { GenerationEndEvent, ResumePath, WireError } from '@bamba/shared';

export interface RequestEvents {
  start(promptTokens: number, cachedTokens: number, resume: ResumePath): void;
  /** Queue a delta; deltas of one decode step are written together. */
  delta(text: string, tokens: number): void;
  /** Flush pending deltas, write the end event, and resolve once Redis has it. */
  end(summary: Omit<GenerationEndEvent, 'type' | 'attempt'>): Promise<void>;
  /** Flush pending deltas, write the error event, and resolve once Redis has it. */
  error(error: WireError): Promise<void>;
}
