/**
 * What travels through the generation queue, from the gateway to a gpu-node. Built only from
 * validated requests: no raw wire parameters reach the engine.
 */
import type { SamplingParams } from './sampling.js';

/** Interactive requests are served before batch work (BullMQ: lower number first). */
export const JobPriority = { interactive: 1, batch: 10 } as const;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type GenerationInput = { kind: 'chat'; messages: ChatMessage[] } | { kind: 'completion'; prompt: string };

export interface GenerationJob {
  /** Also the BullMQ job id and the name of the token stream. */
  requestId: string;
  tenant: string;
  /** Model id as the gpu-nodes announce it. */
  model: string;
  input: GenerationInput;
  params: SamplingParams;
  /** Epoch ms after which nobody waits for the result: a node drops the job instead. */
  deadlineAtMs: number;
  enqueuedAtMs: number;
  /**
   * Attempts this job already used in another queue (moved off a dead node's own queue), so
   * attempt numbers in stream events keep increasing and readers can tell attempts apart.
   */
  attemptOffset?: number;
  /** Set for a turn of a server-side session: `input` then holds only the new messages. */
  session?: SessionTurn;
}

export interface SessionTurn {
  sessionId: string;
  /** Turns committed when the gateway accepted this one; the commit checks it is unchanged. */
  expectedVersion: number;
}
