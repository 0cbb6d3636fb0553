/**
 * The Responses streaming events of one response, from the answer pieces of its generation.
 * Every reader of the same generation (the live stream, a resumed one, one rebuilt from the
 * stored answer) sends the same events: one delta per entry of its token stream (a reader that
 * read several entries at once splits them again, and the stored answer keeps their lengths),
 * and sequence numbers that come from the text's length, not from how the text arrived: a
 * delta's number is 3 + the length of the text up to its end. So `starting_after` never loses
 * or repeats a character, whether the server applies it (a delta that straddles it is cut
 * there) or the client does, dropping the events up to it from a full replay (the openai
 * client's `responses.stream({ response_id, starting_after })`). Numbers may skip; they never go back.
 */
import { answerItemId, endedOutcome, errorToWire, functionCallItem, mayCallTools, outputMessage, outputTextPart, RequestCancelledError, responseObject, showsMessage, type AnswerPiece, type ResponseOutcome, type ResponseStatus, type ResponseView, type TokenLogprob } from '@bamba/shared';
import { sse } from '../generation/sse-body.js';

export interface ResponseStreamEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

const OPENING_EVENTS = 4;

/** One event as SSE, named by its type as OpenAI sends them. */
export const responseEvent = (event: ResponseStreamEvent) => sse(event, event.type);

export class ResponseEventSequence {
  /** Length of the text sent so far: the numbers come from it. */
  private textLength = 0;
  /** The lengths of the deltas sent so far, in order. */
  readonly deltaLengths: number[] = [];
  /** The answer's log-probability entries so far (when the request included them), and how many each delta carried. */
  readonly logprobs: TokenLogprob[] = [];
  readonly deltaLogprobCounts: number[] = [];
  /** Entries of tokens without text yet: they go with the next delta. */
  private carried: TokenLogprob[] = [];
  /**
   * Whether the message item was opened. A response whose model may call tools opens it with its
   * first text only: an answer that is calls alone has no message item (OpenAI's output).
   */
  private messageOpened: boolean;

  constructor(private readonly view: ResponseView) {
    this.messageOpened = !mayCallTools(view.record);
  }

  private get itemId(): string {
    return answerItemId(this.view.record.id);
  }

  /** The message item and its text part, numbered from `first`. */
  private messageOpening(first: number): ResponseStreamEvent[] {
    return [
      { type: 'response.output_item.added', sequence_number: first, output_index: 0, item: outputMessage(this.view.record.id, '', 'in_progress', false) },
      { type: 'response.content_part.added', sequence_number: first + 1, item_id: this.itemId, output_index: 0, content_index: 0, part: outputTextPart('') },
    ];
  }

  /** created, in_progress, the output item and its text part (the item later, see `messageOpened`). */
  opening(status: ResponseStatus): ResponseStreamEvent[] {
    const snapshot = responseObject({ ...this.view, status, outcome: null });
    return [
      { type: 'response.created', sequence_number: 0, response: snapshot },
      { type: 'response.in_progress', sequence_number: 1, response: { ...snapshot, status: 'in_progress' } },
      ...(this.messageOpened ? this.messageOpening(2) : []),
    ];
  }

  /**
   * The deltas of `text`: one per entry (`entryLengths`, when they add up to it), else one. Its
   * tokens' `logprobs` go with the deltas, `entryLogprobs` of them with each (TokenDeltaEvent's
   * rule, which the stored `deltaLogprobCounts` follow too), else all with the one delta; entries
   * of a text-less piece wait for the next delta.
   */
  deltas(text: string, entryLengths?: readonly number[], logprobs?: readonly TokenLogprob[], entryLogprobs?: readonly number[]): ResponseStreamEvent[] {
    if (logprobs) this.logprobs.push(...logprobs);
    const pending = logprobs ? [...this.carried, ...logprobs] : this.carried;
    if (text === '') {
      this.carried = pending;
      return [];
    }
    // Numbered 2 and 3 as in an opening that holds them: the numbers stay those of the text.
    const events = this.messageOpened ? [] : this.messageOpening(2);
    this.messageOpened = true;
    const lengths = entryLengths && entryLengths.length > 1 && entryLengths.every((length) => length > 0) && entryLengths.reduce((sum, length) => sum + length, 0) === text.length
      ? entryLengths
      : [text.length];
    const shares = entryLogprobs && entryLogprobs.length === lengths.length
      ? entryLogprobs.map((count, index) => count + (index === 0 ? this.carried.length : 0))
      : [pending.length];
    let at = 0;
    let placed = 0;
    for (const [index, length] of lengths.entries()) {
      const delta = text.slice(at, at + length);
      at += length;
      this.textLength += length;
      this.deltaLengths.push(length);
      const share = pending.slice(placed, placed + (shares[index] ?? 0));
      placed += share.length;
      this.deltaLogprobCounts.push(share.length);
      events.push({ type: 'response.output_text.delta', sequence_number: OPENING_EVENTS - 1 + this.textLength, item_id: this.itemId, output_index: 0, content_index: 0, delta, logprobs: share });
    }
    this.carried = pending.slice(placed);
    return events;
  }

  /** The events that close the response with `outcome`. */
  closing(outcome: ResponseOutcome): ResponseStreamEvent[] {
    let next = OPENING_EVENTS + this.textLength;
    const final = responseObject({ ...this.view, status: outcome.status, outcome });
    if (outcome.status === 'failed' || outcome.status === 'cancelled') {
      return [{ type: 'response.failed', sequence_number: next, response: final }];
    }
    const status = outcome.status === 'incomplete' ? 'incomplete' : 'completed';
    const events: ResponseStreamEvent[] = [];
    const message = showsMessage(outcome);
    if (message) {
      if (!this.messageOpened) {
        events.push(...this.messageOpening(next));
        next += 2;
      }
      events.push(
        { type: 'response.output_text.done', sequence_number: next++, item_id: this.itemId, output_index: 0, content_index: 0, text: outcome.outputText, logprobs: outcome.logprobs ?? [] },
        { type: 'response.content_part.done', sequence_number: next++, item_id: this.itemId, output_index: 0, content_index: 0, part: outputTextPart(outcome.outputText, outcome.logprobs) },
        { type: 'response.output_item.done', sequence_number: next++, output_index: 0, item: outputMessage(this.view.record.id, outcome.outputText, status, true, outcome.logprobs) },
      );
    }
    // Each call whole: its item, its arguments in one delta, and their end.
    for (const [index, call] of (outcome.toolCalls ?? []).entries()) {
      const outputIndex = (message ? 1 : 0) + index;
      const itemId = functionCallItem(call, 'completed').id;
      events.push(
        { type: 'response.output_item.added', sequence_number: next++, output_index: outputIndex, item: functionCallItem(call, 'in_progress', '') },
        { type: 'response.function_call_arguments.delta', sequence_number: next++, item_id: itemId, output_index: outputIndex, delta: call.arguments },
        { type: 'response.function_call_arguments.done', sequence_number: next++, item_id: itemId, output_index: outputIndex, name: call.name, arguments: call.arguments },
        { type: 'response.output_item.done', sequence_number: next++, output_index: outputIndex, item: functionCallItem(call, 'completed') },
      );
    }
    events.push({ type: status === 'incomplete' ? 'response.incomplete' : 'response.completed', sequence_number: next, response: final });
    return events;
  }
}

/** The event as a reader that saw everything up to `startingAfter` gets it, or null when it saw it all. */
export function eventAfter(event: ResponseStreamEvent, startingAfter: number): ResponseStreamEvent | null {
  if (event.sequence_number <= startingAfter) return null;
  if (event.type !== 'response.output_text.delta') return event;
  const delta = event.delta as string;
  const startsAt = event.sequence_number - delta.length;
  return startsAt >= startingAfter ? event : { ...event, delta: delta.slice(startingAfter - startsAt) };
}

/** The answer a fold collected: its text, the lengths of the deltas it was sent in, its log probabilities, and its usage so far. */
export interface FoldedText {
  text: string;
  deltaLengths?: number[];
  logprobs?: TokenLogprob[];
  deltaLogprobCounts?: number[];
  /** The prompt as its attempt started, and the tokens generated since (a cancelled response's usage). */
  usage?: NonNullable<ResponseOutcome['usage']>;
}

/**
 * How a response ended, from the generation's last piece or its error (a cancellation point in
 * its stream, `RequestCancelledError`, is a cancel).
 */
export function outcomeOf(answer: FoldedText, ending: { end: Extract<AnswerPiece, { kind: 'end' }> } | { error: unknown } | { cancelled: true }, nowMs: number): ResponseOutcome {
  const text = {
    outputText: answer.text,
    ...(answer.deltaLengths && answer.deltaLengths.length > 1 ? { deltaLengths: answer.deltaLengths } : {}),
    ...(answer.logprobs && answer.logprobs.length > 0 ? { logprobs: answer.logprobs, deltaLogprobCounts: answer.deltaLogprobCounts ?? [] } : {}),
  };
  if ('end' in ending) return endedOutcome(text, ending.end, nowMs);
  if ('cancelled' in ending || ending.error instanceof RequestCancelledError) {
    // What it cost up to the cancel, when the fold saw its start.
    return { status: 'cancelled', ...text, usage: answer.usage ?? null, error: null, incompleteReason: null, completedAtMs: nowMs };
  }
  const wire = errorToWire(ending.error);
  return { status: 'failed', ...text, usage: null, error: { code: wire.code ?? wire.type, message: wire.message }, incompleteReason: null, completedAtMs: nowMs };
}

/** The text of a stored outcome, as a fold that collected it. */
export const foldedTextOf = (outcome: ResponseOutcome): FoldedText => ({
  text: outcome.outputText,
  ...(outcome.deltaLengths ? { deltaLengths: outcome.deltaLengths } : {}),
  ...(outcome.logprobs ? { logprobs: outcome.logprobs, deltaLogprobCounts: outcome.deltaLogprobCounts ?? [] } : {}),
  ...(outcome.usage ? { usage: outcome.usage } : {}),
});

/**
 * Follow a generation's pieces to its outcome, handing each event to `emit` (which may be a
 * no-op). An error from `next` (the generation's) becomes a `failed` outcome; one from `emit`
 * (the client went away) is thrown.
 */
export interface FoldHooks {
  /** The start the caller took before folding (the runner's), when it did: a later one replaces it. */
  start?: Extract<AnswerPiece, { kind: 'start' }>;
  /** Text arrived (time to first token). */
  onText?: () => void;
  onEnd?: (end: Extract<AnswerPiece, { kind: 'end' }>) => void;
}

export async function foldResponse(view: ResponseView, openingStatus: ResponseStatus, next: () => Promise<AnswerPiece>, emit: (events: ResponseStreamEvent[]) => Promise<void>, nowMs: () => number, hooks: FoldHooks = {}): Promise<{ outcome: ResponseOutcome; error: unknown }> {
  let sequence = new ResponseEventSequence(view);
  await emit(sequence.opening(openingStatus));
  let text = '';
  let outcome: ResponseOutcome;
  let failure: unknown = null;
  let start = hooks.start ?? null;
  let outputTokens = 0;
  const folded = (): FoldedText => ({
    text,
    deltaLengths: [...sequence.deltaLengths],
    logprobs: [...sequence.logprobs],
    deltaLogprobCounts: [...sequence.deltaLogprobCounts],
    ...(start ? { usage: { inputTokens: start.promptTokens, cachedTokens: start.cachedTokens, outputTokens } } : {}),
  });
  for (;;) {
    let piece: AnswerPiece;
    try {
      piece = await next();
    } catch (error) {
      failure = error;
      outcome = outcomeOf(folded(), { error }, nowMs());
      break;
    }
    if (piece.kind === 'start') {
      start = piece;
      outputTokens = 0;
    } else if (piece.kind === 'text') {
      outputTokens += piece.tokens;
      if (piece.text === '') {
        sequence.deltas('', undefined, piece.logprobs); // its tokens' entries wait for the next text
        continue;
      }
      hooks.onText?.();
      text += piece.text;
      await emit(sequence.deltas(piece.text, piece.entryLengths, piece.logprobs, piece.entryLogprobs)); // a client gone throws out of here, not into the outcome
    } else if (piece.kind === 'end') {
      hooks.onEnd?.(piece);
      outcome = outcomeOf(folded(), { end: piece }, nowMs());
      break;
    } else if (piece.kind === 'restart') {
      // A retried attempt starts the answer again. The caller's canRestart allows this only while
      // nothing was emitted past the opening (a stream) or when the events go nowhere (a plain reply).
      text = '';
      outputTokens = 0;
      sequence = new ResponseEventSequence(view);
    }
  }
  await emit(sequence.closing(outcome));
  return { outcome, error: failure };
}
