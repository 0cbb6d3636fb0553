/**
 * Turns a request's stream events into the answer as the client sees it (the gateway's chat,
 * completions and responses, and the workers' batch items): one loop for both
 * the streaming and the non-streaming response. When a job is retried (its node died, or handed
 * it back while stopping), a newer attempt's `generation-start` arrives: the answer starts over
 * if nothing was relayed yet (`restart`), else the request fails with `node_failed` (at once,
 * when the node said so with `generation-retry`).
 */
import { errorFromWire, RequestCancelledError, ServerError } from './errors.js';
import type { FinishReason, ResumePath, StreamEvent } from './stream-events.js';
import type { TokenLogprob } from './logprobs.js';
import type { ToolCall } from './tools.js';

export type AnswerPiece =
  | { kind: 'start'; resume: ResumePath; promptTokens: number; cachedTokens: number; fingerprint?: string }
  /** Text from an earlier attempt is void: drop what was collected. */
  | { kind: 'restart' }
  /**
   * `entryLengths`: where the text's stream entries begin and end, when it holds several (see
   * TokenDeltaEvent); `logprobs`: its tokens' entries, when the request asked for them
   * (`entryLogprobs`: how many go with each stream entry's text, as TokenDeltaEvent says).
   */
  | { kind: 'text'; text: string; tokens: number; entryLengths?: number[]; logprobs?: TokenLogprob[]; entryLogprobs?: number[] }
  | { kind: 'end'; finishReason: FinishReason; promptTokens: number; completionTokens: number; cachedTokens: number; toolCalls?: ToolCall[] };

/**
 * The code of a request that cannot follow its job's retry (text of the dead attempt already
 * went out). It says what this reader could not do, not how the job ended: the job itself runs on.
 */
export const NODE_FAILED = 'node_failed';

/** A retried attempt cannot replace an answer whose text went out: its node failed (or stopped) mid-answer. */
export function midAnswerFailure(how: 'failed' | 'stopped'): ServerError {
  return new ServerError(`the gpu-node serving this request ${how} mid-generation; please retry`, { code: NODE_FAILED });
}

/**
 * `canRestart` says whether a retried attempt may replace what came before (false once text
 * went out to the client). Throws the generation's error, at a cancellation mark its error (or
 * `RequestCancelledError`), or a server error when the events end without an end.
 */
export async function* answerOf(events: AsyncIterable<StreamEvent>, canRestart: () => boolean): AsyncGenerator<AnswerPiece, void, undefined> {
  let attempt = 0;
  for await (const event of events) {
    // Cancelled here, whichever attempt runs: everything after this point is nobody's answer.
    if (event.type === 'generation-cancelled') throw event.error ? errorFromWire(event.error) : new RequestCancelledError();
    if (event.attempt < attempt) continue; // a stale attempt's leftovers
    if (event.type === 'generation-start' && event.attempt > attempt) {
      if (attempt !== 0) {
        if (!canRestart()) throw midAnswerFailure('failed');
        yield { kind: 'restart' };
      }
      attempt = event.attempt;
      yield { kind: 'start', resume: event.resume, promptTokens: event.promptTokens, cachedTokens: event.cachedTokens, ...(event.fingerprint ? { fingerprint: event.fingerprint } : {}) };
      continue;
    }
    if (event.type === 'generation-error') throw errorFromWire(event.error);
    if (event.attempt !== attempt) continue; // events of an attempt whose start we did not see
    if (event.type === 'generation-retry') {
      // The node gave the job back (it is stopping): another attempt follows.
      if (!canRestart()) throw midAnswerFailure('stopped');
      continue;
    }
    if (event.type === 'token-delta') {
      yield { kind: 'text', text: event.text, tokens: event.tokens, ...(event.entryLengths ? { entryLengths: event.entryLengths } : {}), ...(event.logprobs ? { logprobs: event.logprobs } : {}), ...(event.entryLogprobs ? { entryLogprobs: event.entryLogprobs } : {}) };
    } else if (event.type === 'generation-end') {
      yield { kind: 'end', finishReason: event.finishReason, promptTokens: event.promptTokens, completionTokens: event.completionTokens, cachedTokens: event.cachedTokens, ...(event.toolCalls ? { toolCalls: event.toolCalls } : {}) };
      return;
    }
  }
  throw new ServerError('the request was cancelled before it finished');
}
