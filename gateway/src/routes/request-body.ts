/** Reads a JSON request body, turning malformed JSON into a 400 instead of a 500. */
import { InvalidRequestError } from '@bamba/shared';
import type { Context } from 'hono';

export async function readJsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') throw new InvalidRequestError('request body is empty; send a JSON object', { code: 'invalid_body' });
  return parseJsonText(text);
}

/** Parse a body's text as JSON; malformed JSON is a 400. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidRequestError('request body is not valid JSON', { code: 'invalid_json' });
  }
}

/** A body that may be left out (a fork's, a new conversation's): none is `absent`, anything else must be JSON (`null` included). */
export function optionalJsonText(text: string, absent: unknown = undefined): unknown {
  return text.trim() === '' ? absent : parseJsonText(text);
}
