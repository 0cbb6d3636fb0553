/**
 * What every request of a gateway app goes through, on Node and at the edge alike: one log
 * line and one metric per request under its route pattern (never the raw path), and errors of
 * every route turned into OpenAI-shaped JSON here and only here.
 */
import { BambaError, errorToWire, MOVED_TO_HEADER } from '@bamba/shared';
import type { Hono, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { discardUnread, limitBody } from './body-limit.js';
import type { GatewayVariables } from './gateway-env.js';
import { SessionMovedError } from './generation/session-turn.js';
import type { GatewayMetrics } from './metrics.js';
import type { Clock } from './ports.js';
import { CLIENT_CLOSED_REQUEST, RequestLogEntry, type GatewayLogger } from './request-log.js';

/** Routes as labelled in metrics and logs: the matched pattern, not the raw path. */
const ROUTE_PATTERNS: Array<[RegExp, string]> = [
  [/^\/assets\/[^/]+$/, '/assets/:name'],
  [/^\/v1\/sessions\/[^/]+\/(fork|move)$/, '/v1/sessions/:id/$1'],
  [/^\/internal\/v1\/replicas\/[^/]+$/, '/internal/v1/replicas/:id'],
  [/^\/internal\/v1\/sessions\/[^/]+\/export(\/commit|\/abort)?$/, '/internal/v1/sessions/:id/export$1'],
  [/^\/internal\/v1\/snapshots\/[^/]+\/chunks\/[^/]+$/, '/internal/v1/snapshots/:id/chunks/:index'],
  [/^\/v1\/sessions\/[^/]+$/, '/v1/sessions/:id'],
  [/^\/v1\/responses\/[^/]+\/(cancel|input_items)$/, '/v1/responses/:id/$1'],
  [/^\/v1\/responses\/[^/]+$/, '/v1/responses/:id'],
  [/^\/v1\/conversations\/[^/]+\/items\/[^/]+$/, '/v1/conversations/:id/items/:item'],
  [/^\/v1\/conversations\/[^/]+\/items$/, '/v1/conversations/:id/items'],
  [/^\/v1\/conversations\/[^/]+$/, '/v1/conversations/:id'],
  [/^\/v1\/batches\/[^/]+\/cancel$/, '/v1/batches/:id/cancel'],
  [/^\/v1\/batches\/[^/]+$/, '/v1/batches/:id'],
  [/^\/v1\/files\/[^/]+\/content$/, '/v1/files/:id/content'],
  [/^\/v1\/files\/[^/]+$/, '/v1/files/:id'],
];

export function routeLabel(path: string): string {
  for (const [pattern, label] of ROUTE_PATTERNS) {
    const match = pattern.exec(path);
    if (match) return label.replace('$1', match[1] ?? '');
  }
  return /^\/(|status|status\.json|healthz|readyz|metrics|v1\/models|v1\/chat\/completions|v1\/completions|v1\/sessions|v1\/responses|v1\/conversations|v1\/files|v1\/batches)$/.test(path) ? path : 'other';
}

export interface FrameDeps {
  logger: GatewayLogger;
  metrics: Pick<GatewayMetrics, 'countRequest'>;
  clock: Clock;
  /** Runtime errors that mean "try again later" → the error to answer with; anything else unexpected is a 500. */
  classifyError: (error: unknown) => BambaError | null;
}

export function installRequestFrame(app: Hono<{ Variables: GatewayVariables }>, { logger, metrics, clock, classifyError }: FrameDeps): void {
  app.use('*', async (c, next) => {
    const route = routeLabel(c.req.path);
    const log = new RequestLogEntry(logger, c.req.method, route, clock.nowMs(), (status) => metrics.countRequest(route, status));
    c.set('log', log);
    await next();
    // Every answer carries an id to quote (OpenAI's clients expose it as `_request_id`): the
    // generation routes set their own (the completion or response id), the others get one here.
    if (!c.res.headers.has('x-request-id')) {
      const requestId = `req_${crypto.randomUUID().replace(/-/g, '')}`;
      try {
        c.res.headers.set('x-request-id', requestId);
        log.set({ requestId });
      } catch { /* a proxied answer's headers are immutable: it carries its region's id, if any */ }
    }
    // Refused before its body was read (401, 413 on its Content-Length, …): read the body to its
    // end first, so the client reads this answer rather than a connection reset (body-limit.ts).
    // One past the bounds is cut: say so, or a keep-alive client may send its next request on a
    // connection that is about to close.
    if (c.res.status >= 400 && !(await discardUnread(c.req.raw))) c.res.headers.set('Connection', 'close');
    // Counted as its line is written: a stream's when it ends. A request whose generation its
    // client cancelled by hanging up is not a server error, whatever the route threw once the job
    // stopped: counted and logged as 499 (begin-generation.ts).
    if (!log.deferred) log.write(c.res.status, clock.nowMs());
  });
  app.notFound((c) => c.json({ error: { message: `no route for ${c.req.method} ${c.req.path}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } }, 404));
  app.onError((error, c) => {
    if (error instanceof HTTPException && !(error.cause instanceof BambaError)) {
      // Hono's own refusals (e.g. method not allowed) are client errors with their status.
      return c.json({ error: { message: error.message, type: 'invalid_request_error', param: null, code: null } }, error.status);
    }
    const known = error instanceof BambaError ? error : classifyError(error);
    // Unexpected failures get a stack in the log; known refusals (503, 4xx) only their request line.
    const clientLeft = c.get('log')?.fields.status === CLIENT_CLOSED_REQUEST;
    if ((!known || known.status === 500) && !clientLeft) logger.error(`${c.req.method} ${routeLabel(c.req.path)} failed`, known?.cause ?? error);
    const wire = errorToWire(known ?? error);
    if (known?.retryAfterSeconds) c.header('Retry-After', String(known.retryAfterSeconds));
    if (known instanceof SessionMovedError) c.header(MOVED_TO_HEADER, known.movedTo);
    // OpenAI's clients retry every 409 unless told; say whether waiting can end this one.
    if (known?.status === 409) c.header('x-should-retry', String(known.retryable));
    c.get('log')?.set({ errorType: wire.type, errorCode: wire.code });
    return c.json({ error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } }, wire.status as 400);
  });
}

/** Request bodies under `/v1`: uploads (`POST /v1/files`) have their own, larger limit (in the files route); every other body this one. */
export function limitBodies(config: { maxBodyBytes: number }): MiddlewareHandler {
  const requestBodyLimit = limitBody(config.maxBodyBytes);
  return (c, next) => (c.req.method === 'POST' && c.req.path === '/v1/files' ? next() : requestBodyLimit(c, next));
}
