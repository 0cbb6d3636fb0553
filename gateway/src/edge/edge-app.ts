/**
 * The edge app (Cloudflare Workers): the same request frame, API-key auth, body limits and
 * request validation as a region gateway, so a bad request never leaves the edge; then the
 * request goes to a region over a signed hop and its answer (SSE included) streams back.
 *
 * Where a request goes:
 * - a stateful id in the path or body (`sess_eu_…`, `resp_eu_…`, `batch_eu_…`, `file-eu_…`)
 *   goes to its home region; a session that moved answers 409 + `x-bamba-moved-to`, and the edge
 *   follows to its new id; a session turn (or read) whose home cannot be reached goes to the
 *   home's backup region, which holds the replicated transcript (`failover`);
 * - anything new goes to the best usable region (`x-bamba-prefer-region`, then the client's
 *   continent and distance, then weight), and, when that region cannot be reached or answers
 *   503/429, once to the next one;
 * - lists of files and batches, and the models, are asked of every usable region and merged.
 */
import {
  backupOf,
  homeRegionOf,
  InvalidRequestError,
  listObject,
  MAX_SESSION_FORWARDS,
  modelById,
  MOVED_TO_HEADER,
  NotFoundError,
  PayloadTooLargeError,
  PREFER_REGION_HEADER,
  rankRegions,
  ServiceUnavailableError,
  validateChatCompletionRequest,
  validateCompletionRequest,
  validateConversationItems,
  validateConversationUpdate,
  validateCreateBatch,
  validateCreateConversation,
  validateCreateResponse,
  validateCreateSession,
  validateCreatedWindow,
  validateForkSession,
  validateListQuery,
  validateMoveSession,
  validatePurposeFilter,
  type ClientPlace,
  type CreatedWindow,
  type ListQuery,
  type RegionMap,
} from '@bamba/shared';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { installRequestFrame, limitBodies } from '../app-frame.js';
import { apiKeyAuth } from '../auth.js';
import { validationDefaults, type AppConfig } from '../config.js';
import type { GatewayVariables } from '../gateway-env.js';
import type { Clock } from '../ports.js';
import { silentLogger, type GatewayLogger } from '../request-log.js';
import { checkUpload, FILE_LIST_LIMITS } from '../routes/files.js';
import { optionalJsonText, parseJsonText } from '../routes/request-body.js';
import { mergePages, regionListSchema, windowAfter, type ListCursor } from './merged-list.js';
import type { RegionHealth } from './region-health.js';
import { RegionUnreachable, type RegionHops } from './region-hop.js';

export interface EdgeConfig extends AppConfig {
  regions: RegionMap;
}

export interface EdgePorts {
  config: EdgeConfig;
  health: RegionHealth;
  hops: RegionHops;
  logger?: GatewayLogger;
  clock?: Clock;
}


type EdgeContext = Context<{ Variables: GatewayVariables }>;

/** A region's `/v1/models` answer, as far as the edge merges it (other fields pass through). */
const modelListSchema = z.object({ data: z.array(z.looseObject({ id: z.string() })) });

/** How long `/v1/models` waits for each region's list. */
const MODELS_TIMEOUT_MS = 2_000;
/** How long a merged list of files or batches waits for each region's page (a page may hold 10,000 files). */
const LIST_TIMEOUT_MS = 10_000;

/** Largest upload through the edge (it holds it in memory twice to check it). */
const EDGE_MAX_UPLOAD_BYTES = 32 * 1024 * 1024;

/** Where a request goes. */
type Plan =
  /**
   * New work: the best usable region; when it answers 503/429, once the next one. `repeatable`:
   * nothing is stored (a stateless generation), so a region that could not be reached (it may
   * have taken the request before failing) is also worth one more try elsewhere.
   */
  | { kind: 'new'; repeatable: boolean }
  /**
   * The home of `id`; `bodyField`: where the body names it (rewritten when following a move);
   * `replicaOk`: a session turn or read, which the home's backup may serve when home is down.
   */
  | { kind: 'home'; id: string; bodyField: 'session_id' | 'conversation' | null; replicaOk: boolean }
  /** This region and no other (a move's target). */
  | { kind: 'region'; region: string };

export function createEdgeApp(ports: EdgePorts) {
  const { config, health, hops } = ports;
  const clock = ports.clock ?? { nowMs: () => Date.now() };
  const logger = ports.logger ?? silentLogger;
  const defaults = () => validationDefaults(config);
  const app = new Hono<{ Variables: GatewayVariables }>();
  installRequestFrame(app, { logger, metrics: { countRequest: () => {} }, clock, classifyError: () => null });

  // Region health is read in the background, off the request's path, while the readings are
  // recent (an API request that finds them stale waits: below).
  app.use('*', async (c, next) => {
    const refreshing = health.refresh().catch(() => {});
    try {
      c.executionCtx.waitUntil(refreshing);
    } catch {
      /* not in workerd: the promise runs on its own */
    }
    return next();
  });
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    await health.refresh();
    const regions = Object.fromEntries(config.regions.regions.map(({ name }) => [name, health.usable(name, true) ? 'usable' : health.view(name)]));
    const ready = Object.values(regions).includes('usable');
    return c.json({ status: ready ? 'ready' : 'not_ready', regions }, ready ? 200 : 503);
  });

  app.use('/v1/*', apiKeyAuth(config.apiKeys));
  app.use('/v1/*', limitBodies(config));
  // Readings stale (a quiet spell, a new isolate): wait for the new ones begun above (at most the
  // `/readyz` timeout) before routing, so that a region that hung meanwhile gets nothing.
  app.use('/v1/*', async (_c, next) => {
    if (health.stale()) await health.refresh().catch(() => {});
    return next();
  });

  /** Send the request per `plan`, following a moved session to its new id. */
  const relay = async (c: EdgeContext, plan: Plan, body: ArrayBuffer | string | null): Promise<Response> => {
    // The path as the client encoded it: what the region will check the signature against.
    const url = new URL(c.req.url);
    let path = `${url.pathname}${url.search}`;
    let current = plan;
    for (let forward = 0; ; forward++) {
      const response = await send(c, current, path, body);
      const movedTo = response.headers.get(MOVED_TO_HEADER);
      // Not for a client that already left (where the platform says so): the turn would run for nobody.
      if (current.kind !== 'home' || response.status !== 409 || !movedTo || forward >= MAX_SESSION_FORWARDS || c.req.raw.signal.aborted) return response;
      await response.body?.cancel();
      const oldId = current.id;
      path = withSegmentReplaced(path, oldId, movedTo);
      if (current.bodyField && typeof body === 'string') body = JSON.stringify({ ...(JSON.parse(body) as object), [current.bodyField]: movedTo });
      current = { ...current, id: movedTo };
    }
  };

  const hopOf = (c: EdgeContext, path: string, body: ArrayBuffer | string | null, failover: boolean, signal: AbortSignal) => ({
    method: c.req.method, pathWithQuery: path, tenant: c.get('tenant'), failover, headers: c.req.raw.headers, body, signal,
  });

  /** One region, its answer; the breaker learns from it. `signal`: the client's unless given. */
  const hopTo = async (c: EdgeContext, region: string, path: string, body: ArrayBuffer | string | null, failover: boolean, signal = c.req.raw.signal): Promise<Response> => {
    try {
      const response = await hops.send(region, hopOf(c, path, body, failover, signal));
      health.recordSuccess(region);
      return response;
    } catch (error) {
      if (error instanceof RegionUnreachable) health.recordFailure(region);
      throw error;
    }
  };

  const send = async (c: EdgeContext, plan: Plan, path: string, body: ArrayBuffer | string | null): Promise<Response> => {
    if (plan.kind === 'region') {
      if (health.hung(plan.region)) throw notAnswering(plan.region);
      try {
        return await hopTo(c, plan.region, path, body, false);
      } catch (error) {
        throw unavailable(error, plan.region);
      }
    }
    if (plan.kind === 'home') {
      const home = homeRegionOf(plan.id);
      if (home !== null && !config.regions.get(home)) throw new NotFoundError(`'${plan.id}' names region '${home}', which this edge does not know`, { code: notFoundCodeOf(plan.id) });
      if (home !== null) {
        const backup = plan.replicaOk ? backupOf(config.regions, home) : null;
        // Nothing stands in for home here (a delete, a fork, a batch, a file): while it hangs, a
        // 503 now rather than a request it would hold for as long as its client waits. (One that
        // only refused a connection is asked: that answers at once, and may work again.)
        if (health.hung(home) && backup === null) throw notAnswering(home);
        if (health.usable(home, false) || backup === null) {
          try {
            return await hopTo(c, home, path, body, false);
          } catch (error) {
            if (!(error instanceof RegionUnreachable) || backup === null) throw unavailable(error, home);
          }
        }
        // Home is down: its backup continues from the replicated transcript.
        try {
          return await hopTo(c, backup!, path, body, true);
        } catch (error) {
          throw unavailable(error, `${home} (and its backup ${backup})`);
        }
      }
    }
    // New work (or an id without a home): the best usable region, then once the next.
    const repeatable = plan.kind === 'new' && plan.repeatable;
    const tries = health.order(rankRegions(config.regions, placeOf(c), c.req.header(PREFER_REGION_HEADER) ?? null), true).slice(0, 2);
    let lastError: unknown = null;
    for (const [attempt, region] of tries.entries()) {
      const last = attempt === tries.length - 1;
      try {
        const response = await hopTo(c, region, path, body, false);
        // A 503/429 is a region refusing before it did anything: safe to send elsewhere.
        if ((response.status === 503 || response.status === 429) && !last) {
          await response.body?.cancel();
          lastError = new ServiceUnavailableError(`region '${region}' answered ${response.status}`);
          continue;
        }
        return response;
      } catch (error) {
        if (!(error instanceof RegionUnreachable) || !repeatable) throw unavailable(error, region);
        lastError = error;
      }
    }
    throw unavailable(lastError, tries.join(', '));
  };

  const readText = async (c: EdgeContext) => {
    const text = await c.req.text();
    if (text.trim() === '') throw new InvalidRequestError('request body is empty; send a JSON object', { code: 'invalid_body' });
    return { text, json: parseJsonText(text) };
  };
  const home = (id: string, replicaOk = false): Plan => ({ kind: 'home', id, bodyField: null, replicaOk });
  const fresh: Plan = { kind: 'new', repeatable: false };

  /**
   * Every usable region's answer to a GET of `pathOf(region)`, parsed, in the edge's region order;
   * a region that does not answer within `timeoutMs`, or not with a 200 of that shape, is left out
   * (`every`: then the whole answer is a 503 naming it, as it is when no region answered).
   */
  const askEveryRegion = async <T extends z.ZodType>(c: EdgeContext, pathOf: (region: string) => string, schema: T, timeoutMs: number, every = false): Promise<{ region: string; answer: z.infer<T> }[]> => {
    const all = config.regions.regions.map((entry) => entry.name);
    const usable = all.filter((name) => health.usable(name, false));
    const missing = (answered: string[]) => all.filter((name) => !answered.includes(name));
    const refuse = (left: string[]) => new ServiceUnavailableError(`region ${left.join(', ')} did not answer, and this list needs every region's part; try again shortly, or list one region's items alone with x-bamba-prefer-region`, { code: 'region_unavailable', retryAfterSeconds: 2 });
    if (every && usable.length < all.length) throw refuse(missing(usable));
    const answers = await Promise.all(usable.map(async (region) => {
      try {
        const response = await hopTo(c, region, pathOf(region), null, false, AbortSignal.timeout(timeoutMs));
        if (!response.ok) {
          await response.body?.cancel();
          return null;
        }
        const parsed = schema.safeParse(await response.json());
        return parsed.success ? { region, answer: parsed.data as z.infer<T> } : null;
      } catch {
        return null;
      }
    }));
    const answered = answers.filter((answer) => answer !== null);
    if (every && answered.length < all.length) throw refuse(missing(answered.map((answer) => answer.region)));
    if (answered.length === 0) throw new ServiceUnavailableError('no region answered; try again shortly', { code: 'region_unavailable', retryAfterSeconds: 2 });
    return answered;
  };

  /** The union of the usable regions' models (the first region's entry for each id). */
  const everyModel = async (c: EdgeContext) => {
    const answers = await askEveryRegion(c, () => '/v1/models', modelListSchema, MODELS_TIMEOUT_MS);
    const models = new Map<string, { id: string }>();
    for (const model of answers.flatMap(({ answer }) => answer.data)) if (!models.has(model.id)) models.set(model.id, model);
    return [...models.values()];
  };
  app.get('/v1/models', async (c) => c.json({ object: 'list', data: await everyModel(c) }));
  app.get('/v1/models/:id', async (c) => c.json(modelById(await everyModel(c), c.req.param('id'))));

  const rank = (region: string) => config.regions.regions.findIndex((entry) => entry.name === region);

  /**
   * `GET /v1/files` and `GET /v1/batches`: one list merged from every usable region (merged-list.ts).
   * `filters`: query parameters every region gets as the client sent them.
   */
  const mergedList = async (c: EdgeContext, kind: 'files' | 'batches', query: ListQuery, window: CreatedWindow, filters: Record<string, string>): Promise<Response> => {
    // One region's own list, unmerged (what a client can still page while another region is down).
    const preferred = c.req.header(PREFER_REGION_HEADER);
    if (preferred && config.regions.get(preferred)) return relay(c, { kind: 'region', region: preferred }, null);
    let cursor: ListCursor | null = null;
    if (query.after) {
      // Where the item the client names stands: its home region has it (an unknown one starts no page, as in a region).
      const region = homeRegionOf(query.after);
      if (region === null || !config.regions.get(region)) return c.json(listObject([], false));
      let response: Response;
      try {
        response = await hopTo(c, region, `/v1/${kind}/${encodeURIComponent(query.after)}`, null, false, AbortSignal.timeout(LIST_TIMEOUT_MS));
      } catch (error) {
        throw unavailable(error, region);
      }
      if (response.status === 404) {
        await response.body?.cancel();
        return c.json(listObject([], false));
      }
      const item = response.ok ? regionListSchema.shape.data.element.safeParse(await response.json().catch(() => null)) : null;
      if (!item?.success) {
        await response.body?.cancel().catch(() => {});
        throw unavailable(new ServiceUnavailableError(`region ${region} answered ${response.status}`), region);
      }
      cursor = { id: item.data.id, region, createdAt: item.data.created_at };
    }
    const pathOf = (region: string) => {
      const params = new URLSearchParams({ ...filters, limit: String(query.limit), ...(kind === 'files' ? { order: query.order } : {}) });
      // The client's window, narrowed to where the cursor stands (both bounds exclusive).
      const fromCursor = windowAfter(region, cursor, query.order, rank);
      const bound = (name: 'created_before' | 'created_after', client: number | null, tighter: (a: number, b: number) => number) => {
        const values = [client, fromCursor[name] === undefined ? null : Number(fromCursor[name])].filter((value) => value !== null);
        if (values.length > 0) params.set(name, String(values.reduce((a, b) => tighter(a, b))));
      };
      bound('created_before', window.createdBefore, Math.min);
      bound('created_after', window.createdAfter, Math.max);
      if (fromCursor.after !== undefined) params.set('after', fromCursor.after);
      return `/v1/${kind}?${params}`;
    };
    // Every region's part, or a page that would skip a missing region's items for good.
    const pages = await askEveryRegion(c, pathOf, regionListSchema, LIST_TIMEOUT_MS, true);
    const merged = mergePages(pages.map(({ region, answer }) => ({ region, data: answer.data, hasMore: answer.has_more })), query.order, query.limit, rank, cursor);
    return c.json(listObject(merged.data, merged.hasMore));
  };

  app.post('/v1/chat/completions', async (c) => {
    const { text, json } = await readText(c);
    const request = validateChatCompletionRequest(json, defaults());
    return relay(c, request.sessionId ? { kind: 'home', id: request.sessionId, bodyField: 'session_id', replicaOk: true } : { kind: 'new', repeatable: true }, text);
  });
  app.post('/v1/completions', async (c) => {
    const { text, json } = await readText(c);
    validateCompletionRequest(json, defaults());
    return relay(c, { kind: 'new', repeatable: true }, text);
  });

  app.post('/v1/sessions', async (c) => {
    const { text, json } = await readText(c);
    validateCreateSession(json);
    return relay(c, fresh, text);
  });
  app.get('/v1/sessions/:id', (c) => relay(c, home(c.req.param('id'), true), null));
  app.delete('/v1/sessions/:id', (c) => relay(c, home(c.req.param('id')), null));
  app.post('/v1/sessions/:id/fork', async (c) => {
    const text = await c.req.text();
    validateForkSession(optionalJsonText(text));
    return relay(c, home(c.req.param('id')), text);
  });
  // A move runs in the region the session moves to (its workers pull the session).
  app.post('/v1/sessions/:id/move', async (c) => {
    const { text, json } = await readText(c);
    const { region } = validateMoveSession(json);
    if (!config.regions.get(region)) throw new InvalidRequestError(`region '${region}' does not exist; regions: ${config.regions.regions.map((entry) => entry.name).join(', ')}`, { param: 'region', code: 'invalid_value' });
    return relay(c, { kind: 'region', region }, text);
  });

  app.post('/v1/responses', async (c) => {
    const { text, json } = await readText(c);
    const request = validateCreateResponse(json, defaults());
    if (request.conversationId) return relay(c, { kind: 'home', id: request.conversationId, bodyField: 'conversation', replicaOk: false }, text);
    return relay(c, request.previousResponseId ? home(request.previousResponseId) : fresh, text);
  });
  app.on(['GET', 'DELETE'], '/v1/responses/:id', (c) => relay(c, home(c.req.param('id')), null));
  app.post('/v1/responses/:id/cancel', (c) => relay(c, home(c.req.param('id')), null));
  app.get('/v1/responses/:id/input_items', (c) => {
    validateListQuery(c.req.query());
    return relay(c, home(c.req.param('id')), null);
  });

  app.post('/v1/conversations', async (c) => {
    const text = await c.req.text();
    validateCreateConversation(optionalJsonText(text, {}));
    return relay(c, fresh, text);
  });
  app.on(['GET', 'DELETE'], '/v1/conversations/:id', (c) => relay(c, home(c.req.param('id')), null));
  app.post('/v1/conversations/:id', async (c) => {
    const { text, json } = await readText(c);
    validateConversationUpdate(json);
    return relay(c, home(c.req.param('id')), text);
  });
  app.get('/v1/conversations/:id/items', (c) => {
    validateListQuery(c.req.query());
    return relay(c, home(c.req.param('id')), null);
  });
  app.post('/v1/conversations/:id/items', async (c) => {
    const { text, json } = await readText(c);
    validateConversationItems(json);
    return relay(c, home(c.req.param('id')), text);
  });
  app.on(['GET', 'DELETE'], '/v1/conversations/:id/items/:item', (c) => relay(c, home(c.req.param('id')), null));

  app.post('/v1/files', async (c) => {
    const type = c.req.header('content-type') ?? '';
    if (!type.toLowerCase().startsWith('multipart/form-data')) throw new InvalidRequestError('upload a file as multipart/form-data with the fields file and purpose', { code: 'invalid_body' });
    // The edge reads an upload whole to check it (a Worker has 128 MB of memory): larger files go to a region directly.
    const limit = Math.min(config.maxFileBytes, EDGE_MAX_UPLOAD_BYTES);
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > limit) throw new PayloadTooLargeError(limit);
    const bytes = await c.req.arrayBuffer();
    if (bytes.byteLength > limit) throw new PayloadTooLargeError(limit);
    let form: FormData;
    try {
      form = await new Request('http://edge/upload', { method: 'POST', headers: { 'content-type': type }, body: bytes }).formData();
    } catch {
      throw new InvalidRequestError('the multipart body could not be read', { code: 'invalid_body' });
    }
    checkUpload({ purpose: form.get('purpose') ?? undefined, file: form.get('file') ?? undefined });
    return relay(c, fresh, bytes);
  });
  app.get('/v1/files', (c) => {
    const query = validateListQuery(c.req.query(), FILE_LIST_LIMITS);
    const purpose = validatePurposeFilter(c.req.query('purpose'));
    if (purpose === 'none-here') return c.json(listObject([], false));
    return mergedList(c, 'files', query, validateCreatedWindow(c.req.query()), purpose ? { purpose } : {});
  });
  app.on(['GET', 'DELETE'], '/v1/files/:id', (c) => relay(c, home(c.req.param('id')), null));
  app.get('/v1/files/:id/content', (c) => relay(c, home(c.req.param('id')), null));

  app.post('/v1/batches', async (c) => {
    const { text, json } = await readText(c);
    const request = validateCreateBatch(json);
    // A batch runs where its input file is.
    return relay(c, home(request.inputFileId), text);
  });
  app.get('/v1/batches', (c) => {
    // Batches list newest first only (OpenAI's batches have no order).
    const query = { ...validateListQuery(c.req.query()), order: 'desc' as const };
    return mergedList(c, 'batches', query, validateCreatedWindow(c.req.query()), {});
  });
  app.get('/v1/batches/:id', (c) => relay(c, home(c.req.param('id')), null));
  app.post('/v1/batches/:id/cancel', (c) => relay(c, home(c.req.param('id')), null));
  return app;
}

/** `pathWithQuery` with the path segment that decodes to `from` replaced by `to` (a client may percent-encode ids). */
function withSegmentReplaced(pathWithQuery: string, from: string, to: string): string {
  const queryAt = pathWithQuery.indexOf('?');
  const path = queryAt === -1 ? pathWithQuery : pathWithQuery.slice(0, queryAt);
  const decoded = (segment: string) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  };
  const replaced = path.split('/').map((segment) => (decoded(segment) === from ? to : segment)).join('/');
  return queryAt === -1 ? replaced : `${replaced}${pathWithQuery.slice(queryAt)}`;
}

/** The not-found code a region gives for this kind of id. */
function notFoundCodeOf(id: string): string {
  if (id.startsWith('sess_')) return 'session_not_found';
  if (id.startsWith('resp_')) return 'response_not_found';
  if (id.startsWith('batch_')) return 'batch_not_found';
  return 'file_not_found';
}

/** Cloudflare's `request.cf` location, when there is one (absent on Node). */
function placeOf(c: EdgeContext): ClientPlace {
  const cf = (c.req.raw as Request & { cf?: Record<string, unknown> }).cf;
  if (!cf) return {};
  const number = (value: unknown) => (value === undefined || value === null || value === '' || !Number.isFinite(Number(value)) ? undefined : Number(value));
  return { continent: typeof cf.continent === 'string' ? cf.continent : undefined, latitude: number(cf.latitude), longitude: number(cf.longitude) };
}

/** A region seen hanging: not asked (see RegionHealth), refused as if it had been. */
const notAnswering = (region: string) => unavailable(new ServiceUnavailableError(`region '${region}' stopped answering (its /readyz is read again shortly)`), region);

function unavailable(error: unknown, where: string): Error {
  if (!(error instanceof RegionUnreachable) && !(error instanceof ServiceUnavailableError)) return error instanceof Error ? error : new Error(String(error));
  return new ServiceUnavailableError(`region ${where} cannot serve this request now; try again shortly`, { code: 'region_unavailable', retryAfterSeconds: 2, cause: error });
}

export type EdgeApp = ReturnType<typeof createEdgeApp>;
