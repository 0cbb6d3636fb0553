/**
 * Workers entry (the only workerd-specific file): the edge app built from the Worker's
 * bindings, once per isolate (again when the API keys in KV change), so region health and the
 * breaker carry over between requests. A configuration error answers 500 with its reason on
 * every request instead of failing silently.
 */
import { createEdgeApp, type EdgeApp } from '../edge/edge-app.js';
import { parseEdgeConfig } from '../edge/edge-config.js';
import { RegionHealth } from '../edge/region-health.js';
import { RegionHops } from '../edge/region-hop.js';
import type { GatewayLogger } from '../request-log.js';
import type { ExecutionContext } from 'hono';

/** What workerd passes as the third argument of `fetch` (Hono's own type of it). */
type WorkerContext = ExecutionContext;

/** A KV namespace binding, as far as the edge uses one. */
interface KeyValueBinding {
  get(key: string): Promise<string | null>;
}

/** API keys in KV (`BAMBA_API_KEYS_KV`, key `api-keys`, the `key:tenant` lines) are read again this often. */
const KV_KEYS_REFRESH_MS = 60_000;
/** How long a region's `/readyz` may take. */
const READY_TIMEOUT_MS = 1_000;

/** JSON lines on the Worker's console (`wrangler tail`). */
const consoleLogger: GatewayLogger = {
  request: (record) => console.log(JSON.stringify({ level: 'info', msg: 'request', ...record })),
  info: (message, fields) => console.log(JSON.stringify({ level: 'info', msg: message, ...fields })),
  error: (message, error) => console.error(JSON.stringify({ level: 'error', msg: message, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })),
};

let built: { app: EdgeApp; keysText: string; readAtMs: number } | null = null;

async function kvKeys(bindings: Record<string, unknown>): Promise<string> {
  const kv = bindings.BAMBA_API_KEYS_KV as KeyValueBinding | undefined;
  if (!kv || typeof kv.get !== 'function') return '';
  return (await kv.get('api-keys')) ?? '';
}

async function appFor(bindings: Record<string, unknown>): Promise<EdgeApp> {
  const now = Date.now();
  if (built && now - built.readAtMs < KV_KEYS_REFRESH_MS) return built.app;
  const keysText = await kvKeys(bindings);
  if (built && built.keysText === keysText) {
    built.readAtMs = now;
    return built.app;
  }
  const { config, health: healthOptions } = parseEdgeConfig(bindings, keysText);
  const hops = new RegionHops(config.regions, config.edgeSecret!, () => Date.now());
  const health = new RegionHealth(config.regions, (region) => hops.ready(region, READY_TIMEOUT_MS), () => Date.now(), healthOptions);
  // A rebuild for new keys keeps nothing but the keys new: health starts over (no readings: the next API request waits for them).
  built = { app: createEdgeApp({ config, health, hops, logger: consoleLogger }), keysText, readAtMs: now };
  return built.app;
}

export default {
  async fetch(request: Request, bindings: Record<string, unknown>, context: WorkerContext): Promise<Response> {
    let app: EdgeApp;
    try {
      app = await appFor(bindings);
    } catch (error) {
      const message = `the edge is misconfigured: ${error instanceof Error ? error.message : String(error)}`;
      consoleLogger.error(message, error);
      return Response.json({ error: { message, type: 'server_error', param: null, code: 'edge_misconfigured' } }, { status: 500 });
    }
    return app.fetch(request, bindings, context);
  },
};
