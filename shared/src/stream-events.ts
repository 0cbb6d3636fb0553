/**
 * Token events a gpu-node writes to a request's Redis Stream and the gateway relays as SSE.
 * `attempt` is the BullMQ attempt that wrote the event: when a node dies and another retries
 * the job, the reader sees a new attempt start and knows earlier deltas are void. Every event
 * carries the wire version and is parsed by its schema where it is read.
 */
import { z } from 'zod';
import { WireFormatError } from './errors.js';
import { tokenLogprobSchema } from './logprobs.js';
import { modelFingerprintSchema } from './node-status.js';
import { toolCallSchema } from './tools.js';
import { parseWireJson, WIRE_VERSION, wireVersionField } from './wire.js';

export type FinishReason = 'stop' | 'length';

/** How a request's state was obtained: kept in a slot, loaded from Redis, or recomputed. */
/** How a turn's state was restored: its slot, the node's host-memory tier, a stored snapshot, or none (replay). */
export type ResumePath = 'resident' | 'host' | 'snapshot' | 'replay';
export const RESUME_PATHS = ['resident', 'host', 'snapshot', 'replay'] as const;

const wireErrorSchema = z.object({
  message: z.string(),
  type: z.string(),
  status: z.number().int(),
  retryable: z.boolean(),
  code: z.string().nullable(),
  param: z.string().nullable(),
});

const base = { ...wireVersionField, attempt: z.number().int().min(1) };

export const generationStartEventSchema = z.object({
  ...base,
  type: z.literal('generation-start'),
  nodeId: z.string(),
  promptTokens: z.number().int().min(0),
  /** Prompt tokens whose state was restored instead of recomputed. */
  cachedTokens: z.number().int().min(0),
  resume: z.enum(RESUME_PATHS),
  /** The node's model fingerprint (absent from nodes older than it): what `system_fingerprint` shows. */
  fingerprint: modelFingerprintSchema.optional(),
});
export const tokenDeltaEventSchema = z.object({
  ...base,
  type: z.literal('token-delta'),
  /** Text released by these tokens (may be '' while a stop string is pending). */
  text: z.string(),
  /** Tokens generated in this delta. */
  tokens: z.number().int().min(0),
  /** When the job asked for them (`params.logprobs`): one entry per token of this delta, in order. */
  logprobs: z.array(tokenLogprobSchema).optional(),
});
export const generationEndEventSchema = z.object({
  ...base,
  type: z.literal('generation-end'),
  finishReason: z.enum(['stop', 'length']),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  /**
   * The tool calls the answer made (the deltas carried only the text before them); absent when
   * it made none. Their text never went out as deltas: a reader shows them at the end.
   */
  toolCalls: z.array(toolCallSchema).min(1).optional(),
  /** Tokens whose state was restored instead of recomputed. */
  cachedTokens: z.number().int().min(0),
  timeToFirstTokenMs: z.number().min(0),
  totalMs: z.number().min(0),
});
export const generationErrorEventSchema = z.object({
  ...base,
  type: z.literal('generation-error'),
  error: wireErrorSchema,
});
/**
 * This attempt stopped without an answer and the job went back to the queue (its node is
 * stopping): a reader that already relayed text fails now; one that did not waits for the next
 * attempt's start.
 */
export const generationRetryEventSchema = z.object({
  ...base,
  type: z.literal('generation-retry'),
  reason: z.string(),
});

/**
 * The request was cancelled at this point of its stream (a stored response cancelled, its client
 * gone, or its gateway stopping it: `error` then says why it failed): every reader ends here,
 * whatever attempt runs and whatever the gpu-node still writes after it, so all of them (and the
 * outcome recorded from the stream) hold the same text. Written by the gateway that cancelled
 * it, so it carries no attempt.
 */
export const generationCancelledEventSchema = z.object({
  ...wireVersionField,
  type: z.literal('generation-cancelled'),
  error: wireErrorSchema.optional(),
});

export const streamEventSchema = z.discriminatedUnion('type', [generationStartEventSchema, tokenDeltaEventSchema, generationEndEventSchema, generationErrorEventSchema, generationRetryEventSchema, generationCancelledEventSchema]);

export type GenerationStartEvent = z.infer<typeof generationStartEventSchema>;
export type TokenDeltaEvent = z.infer<typeof tokenDeltaEventSchema> & {
  /**
   * Not on the wire: set by a reader that merged consecutive entries into this one event, the
   * lengths of their texts in order (empty ones left out). The stream's entries are the deltas
   * every reader of a response sends alike (see the Responses events).
   */
  entryLengths?: number[];
  /**
   * Not on the wire: with `entryLengths`, when the entries carried log probabilities, how many of
   * `logprobs` go with each of those texts: an entry's own, and those of entries without text
   * before it (a text-less entry's tokens ride on the next text). Those after the last text are
   * the rest of `logprobs`.
   */
  entryLogprobs?: number[];
};
export type GenerationEndEvent = z.infer<typeof generationEndEventSchema>;
export type GenerationErrorEvent = z.infer<typeof generationErrorEventSchema>;
export type GenerationRetryEvent = z.infer<typeof generationRetryEventSchema>;
export type GenerationCancelledEvent = z.infer<typeof generationCancelledEventSchema>;
export type StreamEvent = Exclude<z.infer<typeof streamEventSchema>, { type: 'token-delta' }> | TokenDeltaEvent;

/** An event after which a request's stream holds nothing for its readers: its end, its error, or a cancellation mark. */
export const isFinalEvent = (event: StreamEvent): boolean => event.type === 'generation-end' || event.type === 'generation-error' || event.type === 'generation-cancelled';

/** An event as its writer builds it: the wire version is added on encoding. */
export type StreamEventBody = StreamEvent extends infer E ? (E extends StreamEvent ? Omit<E, 'v' | 'entryLengths' | 'entryLogprobs'> : never) : never;

/** Field/value pairs for XADD: one `data` field holding the event as JSON. */
export function encodeStreamEvent(event: StreamEventBody): [string, string] {
  return ['data', JSON.stringify({ v: WIRE_VERSION, ...event })];
}

/** Parse XREAD's flat field list back into an event. Throws `WireFormatError`. */
export function decodeStreamEvent(fields: readonly string[]): StreamEvent {
  const dataIndex = fields.indexOf('data');
  if (dataIndex === -1 || dataIndex % 2 !== 0 || dataIndex + 1 >= fields.length) throw new WireFormatError('stream event', 'no data field');
  return parseWireJson(streamEventSchema, fields[dataIndex + 1]!, 'stream event');
}

/**
 * Merge consecutive deltas of one attempt (the relay does, per read): a read's worth of tokens
 * becomes one event, which keeps where each entry's text ended (`entryLengths`), for readers that
 * send the entries as they are, and which of its log probabilities go with each (`entryLogprobs`).
 */
export function mergeDeltaEvents(events: readonly StreamEvent[]): StreamEvent[] {
  const merged: StreamEvent[] = [];
  const lengthsOf = (text: string) => (text === '' ? [] : [text.length]);
  const countOf = (event: { logprobs?: readonly unknown[] | undefined }) => event.logprobs?.length ?? 0;
  /** How many of the last merged event's logprobs go with its texts (the rest wait for a text to come). */
  let placed = 0;
  for (const event of events) {
    const last = merged.at(-1);
    if (event.type === 'token-delta' && last?.type === 'token-delta' && last.attempt === event.attempt) {
      // `last` is a decoded entry (no lengths yet) or a merge made here, whose arrays are ours to extend.
      const entryLengths = last.entryLengths ?? lengthsOf(last.text);
      const logprobs = last.logprobs || event.logprobs ? [...(last.logprobs ?? []), ...(event.logprobs ?? [])] : undefined;
      // Counted only when there are log probabilities: a plain stream pays nothing for them.
      const entryLogprobs = logprobs ? last.entryLogprobs ?? (last.entryLengths ? last.entryLengths.map(() => 0) : lengthsOf(last.text).map(() => countOf(last))) : undefined;
      if (event.text !== '') {
        entryLengths.push(event.text.length);
        // This text carries its own entries and those of the text-less entries just before it.
        entryLogprobs?.push(countOf(last) - placed + countOf(event));
        placed = countOf(last) + countOf(event);
      }
      merged[merged.length - 1] = { ...last, text: last.text + event.text, tokens: last.tokens + event.tokens, entryLengths, ...(logprobs ? { logprobs, entryLogprobs } : {}) };
    } else {
      merged.push(event);
      placed = event.type === 'token-delta' && event.text !== '' ? countOf(event) : 0;
    }
  }
  return merged;
}
