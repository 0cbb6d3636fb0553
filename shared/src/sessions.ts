/** Server-side conversations: the session record and its wire shapes. */
import { z } from 'zod';
import { wireToolCalls } from './completion-shapes.js';
import type { ChatMessage } from './jobs.js';
import { parseRequestBody } from './openai-requests.js';
import { REGION_NAME_PATTERN } from './regions.js';

/** Where a session's state lives now. */
export type SessionStateLocation = 'resident' | 'snapshot' | 'transcript';

/** A session as the region stores it (parsed from Redis by `@bamba/region`'s session store). */
export interface SessionRecord {
  id: string;
  tenant: string;
  model: string;
  createdAtMs: number;
  /** Committed turns. */
  version: number;
  /** Tokens covered by the latest snapshot (0 = none). */
  tokenCount: number;
  /** Latest snapshot id, '' when there is none. */
  snapshotId: string;
  snapshotBytes: number;
  /** gpu-node holding the state in a slot, '' when none. */
  residentNode: string;
  /** Idle seconds after which the session expires (set at creation; every commit renews it). */
  ttlSeconds: number;
  metadata: Record<string, string>;
}

const MAX_METADATA_KEYS = 16;

/** OpenAI's metadata: at most 16 string pairs, keys up to 64 characters, values up to 512. */
export const metadataSchema = z.record(
  z.string().max(64, 'metadata keys hold at most 64 characters'),
  z.string({ error: 'metadata values must be strings' }).max(512, 'metadata values hold at most 512 characters'),
  // A key's own message (its length) rather than the record's.
  { error: (issue) => (issue.code === 'invalid_key' ? 'metadata keys hold at most 64 characters' : 'metadata must be an object of strings') },
)
  .refine((metadata) => Object.keys(metadata).length <= MAX_METADATA_KEYS, `metadata holds at most ${MAX_METADATA_KEYS} keys`);

export const createSessionSchema = z.object({
  model: z.string({ error: (issue) => (issue.input === undefined ? 'model is required' : 'model must be a string') }).min(1, 'model must not be empty'),
  system: z.string().nullish(),
  metadata: metadataSchema.nullish(),
});

export interface ValidatedCreateSession {
  model: string;
  system: string | null;
  metadata: Record<string, string>;
  /** Messages the session starts with after `system` (a conversation created with items). */
  items?: ChatMessage[];
}

/** A session whose turns may use any model (a conversation: OpenAI's have none of their own). */
export const ANY_MODEL = '*';

export function validateCreateSession(body: unknown): ValidatedCreateSession {
  const request = parseRequestBody(createSessionSchema, body);
  return { model: request.model, system: request.system ?? null, metadata: request.metadata ?? {} };
}

export const forkSessionSchema = z.object({
  /**
   * Fork after this many of the session's messages (as `messages` lists them, system included):
   * the fork continues from that point. Absent: the whole session.
   */
  keep_messages: z.number({ error: 'keep_messages must be an integer' }).int('keep_messages must be an integer').min(0, 'keep_messages must not be negative').nullish(),
});

export interface ValidatedForkSession {
  /** Messages the fork keeps; null: all of them (and the session's saved state with them). */
  keepMessages: number | null;
}

/** A fork request's body; none at all (undefined) forks the whole session. */
export function validateForkSession(body: unknown): ValidatedForkSession {
  if (body === undefined) return { keepMessages: null };
  return { keepMessages: parseRequestBody(forkSessionSchema, body).keep_messages ?? null };
}

export const moveSessionSchema = z.object({
  region: z.string({ error: (issue) => (issue.input === undefined ? 'region is required' : 'region must be a string') }).regex(REGION_NAME_PATTERN, 'region must be a region name (lowercase letters and digits)'),
});

/** `POST /v1/sessions/{id}/move`: the region the session moves to. */
export function validateMoveSession(body: unknown): { region: string } {
  return parseRequestBody(moveSessionSchema, body);
}

/** The session object the API returns. */
export function sessionToWire(session: SessionRecord, messages: ChatMessage[], state: SessionStateLocation) {
  return {
    id: session.id,
    object: 'session',
    model: session.model,
    created_at: Math.floor(session.createdAtMs / 1000),
    metadata: session.metadata,
    turns: session.version,
    // As a chat request sends them: an assistant's calls, the call a tool message answers.
    messages: messages.map(({ role, content, toolCalls, toolCallId }) => ({
      role,
      content: toolCalls && content === '' ? null : content,
      ...(toolCalls ? { tool_calls: wireToolCalls(toolCalls, false) } : {}),
      ...(toolCallId ? { tool_call_id: toolCallId } : {}),
    })),
    token_count: session.tokenCount,
    snapshot_bytes: session.snapshotBytes,
    state,
  };
}
