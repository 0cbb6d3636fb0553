/**
 * The region gateway app, built from ports backed by the region's Redis (the edge builds its
 * own app, `edge/edge-app.ts`, on the same request frame, auth and validation). Errors of every
 * route become OpenAI-shaped JSON in the frame; every request gets one log line.
 */
import type { BambaError } from '@bamba/shared';
import { Hono } from 'hono';
import { installRequestFrame, limitBodies } from './app-frame.js';
import { apiKeyAuth } from './auth.js';
import type { AppConfig } from './config.js';
import type { GatewayVariables } from './gateway-env.js';
import type { GatewayMetrics } from './metrics.js';
import type { Batches, Clock, Files, GenerationPort, PageScripts, RegionState, ResponseRecords, Sessions, Transfers } from './ports.js';
import { silentLogger, type GatewayLogger } from './request-log.js';
import { batchesRoute } from './routes/batches.js';
import { chatCompletionsRoute } from './routes/chat-completions.js';
import { completionsRoute } from './routes/completions.js';
import { filesRoute } from './routes/files.js';
import { internalRoutes } from './routes/internal.js';
import { conversationsRoute } from './routes/conversations.js';
import { healthRoutes } from './routes/health.js';
import { modelsRoute } from './routes/models.js';
import { pageRoutes } from './routes/pages.js';
import { responsesRoute } from './routes/responses.js';
import { sessionsRoute } from './routes/sessions.js';
import { RecentActivity, withRecentActivity } from './status/recent-activity.js';
import type { GatewayStop } from './gateway-stop.js';

export interface GatewayPorts {
  region: RegionState;
  generation: GenerationPort;
  sessions: Sessions;
  responses: ResponseRecords;
  config: AppConfig;
  metrics: GatewayMetrics;
  files: Files;
  batches: Batches;
  /** Sessions crossing regions (replicas, moves). */
  transfers: Transfers;
  /** The browser scripts of the playground and the status page. */
  pageScripts: PageScripts;
  logger?: GatewayLogger;
  clock?: Clock;
  /**
   * Recognises runtime errors that mean "try again later" (e.g. the region's Redis is down) and
   * returns the error to answer with; anything else unexpected is a 500.
   */
  classifyError?: (error: unknown) => BambaError | null;
  /** This gateway's stop (the Node entry's `close`): drains, then ends open generations with `gateway_stopping`. */
  stop?: GatewayStop;
}

export function createApp(ports: GatewayPorts) {
  const { region, generation, sessions, config } = ports;
  const clock = ports.clock ?? { nowMs: () => Date.now() };
  /** The last minutes of this app's traffic, for the status page; fed with the metrics. */
  const recent = new RecentActivity(clock);
  const metrics = withRecentActivity(ports.metrics, recent);
  const logger = ports.logger ?? silentLogger;
  const classifyError = ports.classifyError ?? (() => null);
  const { stop } = ports;
  const deps = { region, generation, sessions, config, metrics, clock, stop };
  /** Background responses this process runs (cancelled here: stopped at once). */
  const running = new Map<string, AbortController>();

  const app = new Hono<{ Variables: GatewayVariables }>();
  installRequestFrame(app, { logger, metrics, clock, classifyError });
  if (stop) {
    // Draining: not ready, and every answer closes its connection so keep-alive clients reconnect elsewhere.
    app.use('*', async (c, next) => {
      if (stop.draining && c.req.path === '/readyz') return c.json({ status: 'stopping' }, 503);
      await next();
      if (stop.draining) c.header('Connection', 'close');
    });
  }
  app.route('/', healthRoutes(region, metrics, config.metricsToken));
  app.route('/', pageRoutes({ region, recent, scripts: ports.pageScripts, clock, metricsToken: config.metricsToken }));
  app.route('/internal/v1', internalRoutes(ports.transfers, config.edgeSecret, clock));
  app.use('/v1/*', apiKeyAuth(config.apiKeys, config.edgeSecret, clock));
  app.use('/v1/*', limitBodies(config));
  app.route('/v1/models', modelsRoute(region));
  app.route('/v1/chat/completions', chatCompletionsRoute(deps));
  app.route('/v1/completions', completionsRoute(deps));
  app.route('/v1/sessions', sessionsRoute(sessions, region, ports.transfers));
  app.route('/v1/responses', responsesRoute({ ...deps, responses: ports.responses, running }));
  app.route('/v1/conversations', conversationsRoute(sessions, region));
  app.route('/v1/files', filesRoute(ports.files, config.maxFileBytes));
  app.route('/v1/batches', batchesRoute(ports.batches));

  return app;
}

export type GatewayApp = ReturnType<typeof createApp>;
