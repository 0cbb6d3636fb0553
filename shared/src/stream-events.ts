/**
 * Token events a gpu-node writes to a request's Redis Stream and the gateway relays as SSE.
 * `attempt` is the BullMQ attempt that wrote the event: when a node dies and another retries
 * the job, the reader sees a new attempt start and knows earlier deltas are void.
 */
import type { WireError } from './errors.js';

export type FinishReason = 'stop' | 'length';

/** How a request's state was obtained: kept in a slot, loaded from Redis, or recomputed. */
export type ResumePath = 'resident' | 'snapshot' | 'replay';

export interface GenerationStartEvent {
  type: 'generation-start';
  attempt: number;
  nodeId: string;
  promptTokens: number;
  /** Prompt tokens whose state was restored instead of recomputed. */
  cachedTokens: number;
  resume: ResumePath;
}
export interface TokenDeltaEvent {
  type: 'token-delta';
  attempt: number;
  /** Text released by these tokens (may be '' while a stop string is pending). */
  text: string;
  /** Tokens generated in this delta. */
  tokens: number;
}
export interface GenerationEndEvent {
  type: 'generation-end';
  attempt: number;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Tokens whose state was restored instead of recomputed. */
  cachedTokens: number;
  timeToFirstTokenMs: number;
  totalMs: number;
}
export interface GenerationErrorEvent {
  type: 'generation-error';
  attempt: number;
  error: WireError;
}

export type StreamEvent = GenerationStartEvent | TokenDeltaEvent | GenerationEndEvent | GenerationErrorEvent;

/** Field/value pairs for XADD: the type is a field of its own so readers can skip cheaply. */
export function encodeStreamEvent(event: StreamEvent): [string, string, string, string] {
  return ['type', event.type, 'data', JSON.stringify(event)];
}

/** Parse XREAD's flat field list back into an event; `null` for entries we do not know. */
export function decodeStreamEvent(fields: readonly string[]): StreamEvent | null {
  const dataIndex = fields.indexOf('data');
  if (dataIndex === -1 || dataIndex % 2 !== 0) return null;
  try {
    return JSON.parse(fields[dataIndex + 1]!) as StreamEvent;
  } catch {
    return null;
  }
}
