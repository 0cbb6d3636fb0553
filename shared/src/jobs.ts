/**
 * What travels through the generation queue, from a producer (gateway, batch workers) to a
 * gpu-node. Built only from validated requests: no raw wire parameters reach the engine. The
 * gpu-node parses every job with `generationJobSchema` before it runs it.
 */
import { z } from 'zod';
import { samplingParamsSchema } from './sampling.js';
import { MAX_CALL_FIELD_LENGTH, MAX_TOOLS, toolCallSchema, toolChoiceSchema, toolSchema } from './tools.js';
import { parseWire, wireVersionField } from './wire.js';

/** Interactive requests are served before batch work. */
export const JobPriority = { interactive: 'interactive', batch: 'batch' } as const;
export type JobPriorityName = (typeof JobPriority)[keyof typeof JobPriority];

/** Request ids are also BullMQ job ids and part of Redis key names. */
export const requestIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'request ids are 1–100 letters, digits, - or _');

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  /** An assistant message's tool calls (its content is then what it wrote before them, often ''). */
  toolCalls: z.array(toolCallSchema).min(1).optional(),
  /** A `tool` message: the call it answers. */
  toolCallId: z.string().min(1).max(MAX_CALL_FIELD_LENGTH).optional(),
  /**
   * The message's item id in a session's transcript (what the Conversations API lists). Never
   * rendered into the prompt; messages committed without one get `transcriptItemId`'s.
   */
  id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/).optional(),
  /**
   * Set on a committed answer that its token limit cut (its conversation item's `status`, as its
   * response's output item says); absent on every other message. Never rendered into the prompt.
   */
  status: z.literal('incomplete').optional(),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

/** Id of the `index`th message a turn commits without an id of its own (the answer is last). */
export function transcriptItemId(requestId: string, index: number): string {
  return `msg_${requestId}_${index}`;
}

/** Id of the answer a request commits to a session: known before it is generated (streamed item ids). */
export function answerItemId(requestId: string): string {
  return `msg_${requestId}`;
}

export const generationInputSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('chat'),
    messages: z.array(chatMessageSchema).min(1),
    /** Function tools offered (rendered into the prompt by the model's chat template); absent: none. */
    tools: z.array(toolSchema).min(1).max(MAX_TOOLS).optional(),
    /** With `tools`: how they may be used (default `auto`). */
    toolChoice: toolChoiceSchema.optional(),
    /** With `tools`: whether a forced answer may make several calls (default true). */
    parallelToolCalls: z.boolean().optional(),
  }),
  z.object({ kind: z.literal('completion'), prompt: z.string().min(1) }),
]);
export type GenerationInput = z.infer<typeof generationInputSchema>;

export const sessionTurnSchema = z.object({
  sessionId: z.string().min(1),
  /** Turns committed when the gateway accepted this one; the commit checks it is unchanged. */
  expectedVersion: z.number().int().min(0),
});
export type SessionTurn = z.infer<typeof sessionTurnSchema>;

export const generationJobSchema = z.object({
  ...wireVersionField,
  /** Also the BullMQ job id and the name of the token stream. */
  requestId: requestIdSchema,
  tenant: z.string().min(1),
  /** Model id as the gpu-nodes announce it. */
  model: z.string().min(1),
  input: generationInputSchema,
  params: samplingParamsSchema,
  /** `interactive` runs before `batch`. */
  priority: z.enum(['interactive', 'batch']),
  /**
   * The relay group of the gateway reader waiting for this job's events: part of the token
   * stream's key (its Redis Cluster hash tag), so one blocking read serves the whole group.
   */
  relayGroup: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  /**
   * Nobody but that reader uses the job's events (no stored response, no batch): a gpu-node stops
   * the job, or drops it before it starts, once the reader's presence is gone (its gateway died).
   */
  endsWithReader: z.literal(true).optional(),
  /** Epoch ms after which nobody waits for the result: a node drops the job instead. */
  deadlineAtMs: z.number().int(),
  enqueuedAtMs: z.number().int(),
  /** Send to this gpu-node's own queue (it holds the session's state), not the region queue. */
  affinityNode: z.string().optional(),
  /**
   * Attempts this job already used in another queue (moved off a dead node's own queue), so
   * attempt numbers in stream events keep increasing and readers can tell attempts apart.
   */
  attemptOffset: z.number().int().min(0).optional(),
  /** Set for a turn of a server-side session: `input` then holds only the new messages. */
  session: sessionTurnSchema.optional(),
  /**
   * Prefill only (chat input, no session): evaluate the messages up to the end of the last one
   * and save the state there as a prefix-cache entry; generate nothing. A batch seeds the prefix
   * its requests share this way, so each of them resumes from it instead of evaluating it again.
   */
  prefillOnly: z.literal(true).optional(),
  /**
   * A prefill-only job saved the state at the end of these messages (a request's choices share
   * it): look for it there first. Other requests do not probe that far (it is rarely saved).
   */
  sharedPrefill: z.literal(true).optional(),
});

export type GenerationJob = z.infer<typeof generationJobSchema>;

/** Parse a job read from the queue. Throws `WireFormatError`. */
export function parseGenerationJob(value: unknown): GenerationJob {
  return parseWire(generationJobSchema, value, 'generation job');
}

/**
 * A job as its producer builds it. The dispatcher that queues it adds the wire version and the
 * relay group of the reader that will wait for its events.
 */
export type GenerationJobDraft = Omit<GenerationJob, 'v' | 'relayGroup'>;

/**
 * Message boundaries a chat request probes for a cached state, counted back from its last
 * message: a client that re-sends its history resumes from the end of its previous turn (one
 * message back) or a few more; probing every boundary of a long conversation would cost work for
 * each of its messages. A batch seeds shared prefixes only within this reach. (The end of all of
 * a request's messages is probed only by a job whose choices share a prefill: `sharedPrefill`.)
 */
export const PROBED_MESSAGE_BOUNDARIES = 8;
