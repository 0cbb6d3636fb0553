/**
 * Parsing at process boundaries. Everything one process hands another through Redis carries a
 * wire version `v`; readers parse it with its zod schema instead of casting, and an unknown
 * version or a malformed value becomes a `WireFormatError` for that one job or request.
 */
import { z } from 'zod';
import { WireFormatError } from './errors.js';

/** Version of every value this build writes to Redis (jobs, events, node status, records). */
export const WIRE_VERSION = 1;

/** The `v` field every wire schema starts with. */
export const wireVersionField = { v: z.literal(WIRE_VERSION) };

/** Parse `value` with `schema`; `what` names it in the error (`generation job`, `stream event`). */
export function parseWire<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  // Records stored as Redis hashes hold the version as text: '1' is version 1 too.
  if (typeof value === 'object' && value !== null && 'v' in value && String((value as { v: unknown }).v) !== String(WIRE_VERSION)) {
    throw new WireFormatError(what, `wire version ${String((value as { v: unknown }).v)}, this build reads version ${WIRE_VERSION}`, 'wire_version_unsupported');
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new WireFormatError(what, `${issue.path.join('.') || '(value)'}: ${issue.message}`);
  }
  return result.data;
}

/** Parse JSON text, then the schema; malformed JSON is a `WireFormatError` too. */
export function parseWireJson<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WireFormatError(what, 'not valid JSON');
  }
  return parseWire(schema, value, what);
}
