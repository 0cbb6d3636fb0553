/**
 * The gateway app, built from ports so the same code serves on Node and in Workers. Errors of
 * every route become OpenAI-shaped JSON here and only here.
 */
import { BambaError, errorToWire, PayloadTooLargeError, RateLimitError } from '@bamba/shared';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { apiKeyAuth, type AuthVariables } from './auth.js';
import type { GatewayConfig } from './config.js';
import { GatewayMetrics } from './metrics.js';
import type { Clock, Dispatcher, Sessions } from './ports.js';
import { chatCompletionsRoute } from './routes/chat-completions.js';
import { completionsRoute } from './routes/completions.js';
import { healthRoutes } from './routes/health.js';
import { modelsRoute } from './routes/models.js';
import { sessionsRoute } from './routes/sessions.js';

export interface GatewayPorts {
  dispatcher: Dispatcher;
  sessions: Sessions;
  config: GatewayConfig;
  clock?: Clock;
  metrics?: GatewayMetrics;
  /** Where unexpected errors are reported (never the API key). */
  logError?: (error: unknown) => void;
}

/** Routes as labelled in metrics: the matched pattern, not the raw path. */
function routeLabel(path: string): string {
  if (/^\/v1\/sessions\/[^/]+\/fork$/.test(path)) return '/v1/sessions/:id/fork';
  if (/^\/v1\/sessions\/[^/]+$/.test(path)) return '/v1/sessions/:id';
  return /^\/(healthz|readyz|metrics|v1\/models|v1\/chat\/completions|v1\/completions|v1\/sessions)$/.test(path) ? path : 'other';
}

export function createApp(ports: GatewayPorts) {
  const { dispatcher, sessions, config } = ports;
  const metrics = ports.metrics ?? new GatewayMetrics();
  const clock = ports.clock ?? { nowMs: () => Date.now() };
  const logError = ports.logError ?? ((error: unknown) => console.error(error));
  const deps = { dispatcher, sessions, config, metrics, clock };

  const app = new Hono<{ Variables: AuthVariables }>();
  app.use('*', async (c, next) => {
    await next();
    metrics.countRequest(routeLabel(c.req.path), c.res.status);
  });
  app.route('/', healthRoutes(dispatcher, metrics));
  app.use('/v1/*', apiKeyAuth(config.apiKeys));
  app.use('/v1/*', bodyLimit({ maxSize: config.maxBodyBytes, onError: () => { throw new PayloadTooLargeError(config.maxBodyBytes); } }));
  app.route('/v1/models', modelsRoute(dispatcher));
  app.route('/v1/chat/completions', chatCompletionsRoute(deps));
  app.route('/v1/completions', completionsRoute(deps));
  app.route('/v1/sessions', sessionsRoute(sessions, dispatcher));

  app.notFound((c) => c.json({ error: { message: `no route for ${c.req.method} ${c.req.path}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } }, 404));
  app.onError((error, c) => {
    if (error instanceof HTTPException && !(error.cause instanceof BambaError)) {
      // Hono's own refusals (e.g. method not allowed) are client errors with their status.
      return c.json({ error: { message: error.message, type: 'invalid_request_error', param: null, code: null } }, error.status);
    }
    const known = error instanceof BambaError ? error : null;
    if (!known || known.status >= 500) logError(error);
    const wire = errorToWire(known ?? error);
    if (known instanceof RateLimitError) c.header('Retry-After', String(known.retryAfterSeconds));
    return c.json({ error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } }, wire.status as 400);
  });
  return app;
}

export type GatewayApp = ReturnType<typeof createApp>;
