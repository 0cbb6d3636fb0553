/**
 * Request bodies over their limit, refused so that the client reads the 413: the limit itself
 * (`limitBody`), and the reading and dropping of a body answered without it (`discardRest`: a 413
 * on its Content-Length, a 401 before the body was looked at).
 *
 * Why read what is refused: a server that answers and closes while the client is still sending
 * makes the kernel reset the connection, and the reset throws away the answer the client had not
 * read yet. Node's fetch then reports EPIPE or ECONNRESET instead of the 413 (8% of 3 MB bodies
 * sent 8 at a time), and a body cut mid-way leaves a kept-alive connection that breaks on the next
 * request. Read to its end, the body leaves the connection clean, and every client reads the answer
 * as it would any other. The reading is bounded: past `maxBytes` or `maxMs` the connection is
 * closed after the answer instead (`Connection: close`).
 */
import { PayloadTooLargeError } from '@bamba/shared';
import type { MiddlewareHandler } from 'hono';

/** Bounds on reading a refused body; the defaults are what every gateway uses. */
export interface DiscardLimits {
  /** Most bytes read and dropped (default 64 MiB, the bound @hono/node-server's own drain uses). */
  maxBytes: number;
  /** Longest time spent reading, so a client that stops sending cannot hold the answer (default 10 s). */
  maxMs: number;
}

export const DISCARD_LIMITS: DiscardLimits = { maxBytes: 64 * 1024 * 1024, maxMs: 10_000 };

/** Reads what is left of a body and drops it: true when it ended within the limits, false when it was cut (or broke). */
export async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>, limits: DiscardLimits = DISCARD_LIMITS): Promise<boolean> {
  let readBytes = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, limits.maxMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return !timedOut;
      readBytes += value.byteLength;
      if (readBytes > limits.maxBytes) {
        await reader.cancel().catch(() => {});
        return false;
      }
    }
  } catch {
    return false; // the client went away, or the body broke: nothing left to keep clean
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For an answer given without reading the request's body: reads what is left of it and drops it.
 * True when nothing is left unread (the connection can stay open); false when it was cut, or
 * when its declared length is past the bound anyway (then it is not read at all).
 */
export async function discardUnread(request: Request, limits: DiscardLimits = DISCARD_LIMITS): Promise<boolean> {
  if (request.bodyUsed || !request.body) return true;
  if (Number(request.headers.get('content-length') ?? 0) > limits.maxBytes) return false;
  return discardRest(request.body.getReader(), limits);
}

/**
 * Refuses a body over `maxBytes` with a 413. One with a Content-Length is refused on it, unread
 * (the request frame then discards it); one sent without (chunked) is read up to the limit and held,
 * and past it the rest is discarded here before the 413. Within the limit the route reads the body
 * as usual.
 */
export function limitBody(maxBytes: number, limits: DiscardLimits = DISCARD_LIMITS): MiddlewareHandler {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(declared) > maxBytes) throw new PayloadTooLargeError(maxBytes);
      return next();
    }
    const reader = body.getReader();
    const held: Uint8Array[] = [];
    let heldBytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      heldBytes += value.byteLength;
      if (heldBytes > maxBytes) {
        if (!(await discardRest(reader, limits))) c.header('Connection', 'close');
        throw new PayloadTooLargeError(maxBytes);
      }
      held.push(value);
    }
    c.req.raw = new Request(c.req.raw, { body: new Blob(held) });
    return next();
  };
}
