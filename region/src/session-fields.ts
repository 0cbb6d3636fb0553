/**
 * The session record's fields in Redis (one HASH per session), spelled once: the zod schema
 * that parses a hash read from Redis, and `SESSION_FIELD`, which the Lua scripts interpolate.
 */
import { parseWire, RESUME_PATHS, WIRE_VERSION, WireFormatError, type SessionRecord } from '@bamba/shared';
import { z } from 'zod';
import { countField, jsonField } from './hash-fields.js';


/** A finished turn as committed, so a retry of the same request answers from it. */
export const committedTurnSchema = z.object({
  requestId: z.string(),
  finishReason: z.enum(['stop', 'length']),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  cachedTokens: z.number().int().min(0),
  resume: z.enum(RESUME_PATHS),
});
export type CommittedTurn = z.infer<typeof committedTurnSchema>;

const sessionHashSchema = z.object({
  v: z.literal(String(WIRE_VERSION)),
  tenant: z.string().min(1),
  model: z.string().min(1),
  createdAtMs: countField,
  version: countField,
  tokenCount: countField,
  snapshotId: z.string(),
  snapshotBytes: countField,
  residentNode: z.string(),
  ttlSeconds: countField,
  metadata: jsonField(z.record(z.string(), z.string()), 'metadata is not a JSON object of strings'),
  /** The last committed turn ('' before the first), JSON of `CommittedTurn`. */
  lastTurn: z.string(),
  /**
   * The ids this session had before moves brought it here, oldest first (JSON array; absent on a
   * session that never moved). Each move points their forwarding records at the newest id.
   */
  formerIds: z.string().optional(),
});

/** Field names of the session hash, for Lua scripts. */
export const SESSION_FIELD = sessionHashSchema.keyof().enum;

/** Parse a session hash (HGETALL); null when the session does not exist. Throws `WireFormatError`. */
export function sessionFromHash(id: string, hash: Record<string, string>): SessionRecord | null {
  if (Object.keys(hash).length === 0) return null;
  if (hash.v !== String(WIRE_VERSION)) throw new WireFormatError('session record', `wire version ${hash.v ?? 'missing'}, this build reads version ${WIRE_VERSION}`, 'wire_version_unsupported');
  const { v: _version, lastTurn: _lastTurn, formerIds: _formerIds, ...record } = parseWire(sessionHashSchema, hash, 'session record');
  return { id, ...record };
}

/** The last committed turn in a session hash, or null. */
export function lastTurnFromHash(hash: Record<string, string>): CommittedTurn | null {
  if (!hash.lastTurn) return null;
  try {
    return committedTurnSchema.parse(JSON.parse(hash.lastTurn));
  } catch {
    return null;
  }
}

/** Fields of a new session's hash. */
export function newSessionHash(record: Omit<SessionRecord, 'id'>): Record<string, string> {
  const hash: Record<Exclude<z.infer<ReturnType<typeof sessionHashSchema.keyof>>, 'formerIds'>, string> = {
    v: String(WIRE_VERSION),
    tenant: record.tenant,
    model: record.model,
    createdAtMs: String(record.createdAtMs),
    version: String(record.version),
    tokenCount: String(record.tokenCount),
    snapshotId: record.snapshotId,
    snapshotBytes: String(record.snapshotBytes),
    residentNode: record.residentNode,
    ttlSeconds: String(record.ttlSeconds),
    metadata: JSON.stringify(record.metadata),
    lastTurn: '',
  };
  return hash;
}
