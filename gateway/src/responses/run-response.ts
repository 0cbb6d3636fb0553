/**
 * `POST /v1/responses`: a response is a turn. Its context is the parent's (`previous_response_id`:
 * the parent's history, input and answer) or the conversation's transcript, then its own input;
 * `instructions` open the context and are not carried to children (OpenAI's rule). A child whose
 * instructions equal its parent's extends the parent's token sequence exactly, so the gpu-node
 * resumes from the parent's saved state (the prefix cache keeps a snapshot at every answer's
 * end) instead of replaying it; with other instructions, or once that state was evicted, it
 * replays: the same answer, slower. A `conversation` response is a turn of that session.
 *
 * Foreground responses stream (or return) as they run and are stored when they started;
 * background ones are stored before they are queued and run detached from the request, their
 * outcome written by whoever sees the end first (this gateway, or a reader of their stream).
 */
import {
  assertToolAnswers,
  callIdsOf,
  InvalidRequestError,
  itemCallParam,
  newResponseRecord,
  NotFoundError,
  responseContext,
  responseGeneration,
  responseObject,
  responseRefusal,
  transcriptItemId,
  validateCreateResponse,
  viewOf,
  type ChatMessage,
  type NewResponse,
  type ResponseOutcome,
  type ResponseRecord,
  type ValidatedGenerationRequest,
} from '@bamba/shared';
import type { Context } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { beginGeneration, type GenerationDeps } from '../generation/begin-generation.js';
import { SSE_HEADERS, sseBody } from '../generation/sse-body.js';
import { validationDefaults } from '../config.js';
import { GATEWAY_STOPPING, gatewayStopping } from '../gateway-stop.js';
import { checkSessionHome, sessionMissing } from '../generation/session-turn.js';
import type { ResponseRecords } from '../ports.js';
import { foldedTextOf, foldResponse, outcomeOf, responseEvent, type FoldHooks } from './response-events.js';
import { stopStored, streamStored } from './stream-stored.js';

export interface ResponseDeps extends GenerationDeps {
  responses: ResponseRecords;
  /** Background responses this process runs, to stop them at once when cancelled here. */
  running: Map<string, AbortController>;
}

export const responseNotFound = (responseId: string, param: string | null = null) =>
  new NotFoundError(`response '${responseId}' does not exist`, { param, code: param ? 'previous_response_not_found' : 'response_not_found' });

/** The conversation a child of `parent` continues: the parent's history, input and answer. */
function contextAfter(parent: ResponseRecord): ChatMessage[] {
  const answer: ChatMessage[] = parent.outcome && (parent.outcome.status === 'completed' || parent.outcome.status === 'incomplete')
    ? [{ role: 'assistant', content: parent.outcome.outputText, ...(parent.outcome.toolCalls ? { toolCalls: parent.outcome.toolCalls } : {}) }]
    : [];
  return [...parent.history, ...parent.input, ...answer];
}

export async function createResponse(c: Context<{ Variables: GatewayVariables }>, deps: ResponseDeps, body: unknown): Promise<Response> {
  const { config, clock } = deps;
  const validated = validateCreateResponse(body, validationDefaults(config));
  const tenant = c.get('tenant');
  const log = c.get('log');
  const arrivedMs = clock.nowMs();
  const responseId = deps.responses.newId();
  log.set({ requestId: responseId, tenant, streamed: validated.stream });
  c.header('x-request-id', responseId);

  let history: ChatMessage[] = [];
  if (validated.previousResponseId) {
    const parent = await deps.responses.get(tenant, validated.previousResponseId);
    if (!parent) throw responseNotFound(validated.previousResponseId, 'previous_response_id');
    if (!parent.outcome) throw new InvalidRequestError(`previous response '${parent.id}' is still ${parent.status}; continue from it once it has finished`, { param: 'previous_response_id', code: 'previous_response_in_progress' });
    history = contextAfter(parent);
  } else if (validated.conversationId) {
    checkSessionHome(validated.conversationId, deps.region.name, false);
    const conversation = await deps.sessions.get(tenant, validated.conversationId);
    if (!conversation) throw await sessionMissing(deps.sessions, tenant, validated.conversationId, (id) => new NotFoundError(`conversation '${id}' does not exist`, { param: 'conversation', code: 'conversation_not_found' }));
    history = conversation.messages;
  }
  // A function call's output answers a call of this input or of the history it continues.
  assertToolAnswers(validated.input, callIdsOf(history), itemCallParam({ itemIndex: validated.inputItemIndex, callItemIndex: validated.inputCallItemIndex }, 'input'));
  const input = validated.input.map((message, index) => ({ ...message, id: transcriptItemId(responseId, index) }));
  const context = responseContext(validated, history, input);
  const generationRequest = responseGeneration(validated, context, input);
  const record = newResponseRecord(validated, { id: responseId, tenant, createdAtMs: arrivedMs, input, history, deadlineAtMs: arrivedMs + config.requestDeadlineMs });
  try {
    return await (validated.background
      ? runInBackground(c, deps, record, generationRequest)
      : runInForeground(c, deps, record, generationRequest, validated.store));
  } catch (error) {
    throw responseRefusal(validated, history.length, error);
  }
}


async function runInBackground(c: Context<{ Variables: GatewayVariables }>, deps: ResponseDeps, record: NewResponse, request: ValidatedGenerationRequest): Promise<Response> {
  const { clock } = deps;
  // Stored before it is queued: whoever looks for it from now on finds it.
  await deps.responses.create(record);
  const abort = new AbortController();
  deps.running.set(record.id, abort);
  // A stopping gateway's drain waits for it as for an open request.
  const release = deps.stop?.hold() ?? (() => {});
  let onQueued!: (relayGroup: string) => void;
  const queued = new Promise<string>((resolve) => { onQueued = resolve; });
  const begun = beginGeneration(deps, { ...request, stream: false }, {
    tenant: record.tenant,
    requestId: record.id,
    log: c.get('log'),
    arrivedMs: record.createdAtMs,
    signal: abort.signal,
    // Its events go nowhere but the stored answer, which a retried attempt starts again (a
    // reader of its stream that had the dead attempt's text is told node_failed; the runner records the answer).
    canRestart: () => true,
    onQueued,
    outlivesGateway: true,
  });
  // A refusal before the job is queued (unknown model, full queue) answers this request.
  const first = await Promise.race([queued.then((relayGroup) => ({ relayGroup })), begun.then(() => null, (error: unknown) => ({ error }))]);
  if (first && 'error' in first) {
    deps.running.delete(record.id);
    release();
    await deps.responses.delete(record.tenant, record.id).catch(() => {});
    throw first.error;
  }
  const relayGroup = await queued;
  let active: boolean;
  try {
    active = await deps.responses.queued(record.id, relayGroup);
  } catch (error) {
    // Nobody could find its events: stop it rather than run it unseen.
    abort.abort();
    deps.running.delete(record.id);
    release();
    void begun.then((generation) => generation.finish(), () => {});
    throw error;
  }
  // Cancelled (or deleted) before its record said where its stream is: the canceller (on another
  // gateway) may have found no stream to mark, so mark it here (stopRun looks again from its side).
  if (!active || (await deps.generation.cancelRequested(record.id).catch(() => false))) {
    await deps.generation.markCancelled(relayGroup, record.id).catch(() => abort.abort());
  }
  const stored: ResponseRecord = { ...record, status: 'queued', relayGroup, outcome: null };

  void (async () => {
    let outcome;
    try {
      const generation = await begun;
      // Queued until a gpu-node starts it, as OpenAI shows it (not awaited: reading its events
      // comes first; a failed write leaves it queued until it ends).
      void deps.responses.running(record.id).catch(() => {});
      try {
        ({ outcome } = await foldResponse(viewOf(stored), 'queued', generation.next, async () => {}, () => clock.nowMs(), {
          start: generation.start,
          onText: () => generation.noteText(),
          onEnd: (end) => generation.noteEnd(end),
        }));
      } finally {
        await generation.finish();
      }
    } catch (error) {
      outcome = outcomeOf({ text: '' }, { error }, clock.nowMs());
    }
    // Stopped here before it was queued (stopRun); once queued, a cancel ends its stream instead.
    if (abort.signal.aborted) outcome = outcomeOf(foldedTextOf(outcome), { cancelled: true }, clock.nowMs());
    await recordOutcome(deps, stored, outcome, false);
    deps.running.delete(record.id);
    release();
  })();

  if (request.stream) return streamStored(c, deps, stored, -1);
  return c.json(responseObject(viewOf(stored)));
}

async function runInForeground(c: Context<{ Variables: GatewayVariables }>, deps: ResponseDeps, record: NewResponse, request: ValidatedGenerationRequest, store: boolean): Promise<Response> {
  const { config, metrics, clock } = deps;
  const log = c.get('log');
  let relayGroup = '';
  // Only a stream relays text as it comes; a plain reply is sent whole at the end, so a retried
  // attempt (a gpu-node died) may still replace what was folded so far, as for a chat.
  let relayedText = false;
  const generation = await beginGeneration(deps, request, {
    tenant: record.tenant,
    requestId: record.id,
    log,
    arrivedMs: record.createdAtMs,
    signal: c.req.raw.signal,
    canRestart: () => !relayedText,
    onQueued: (group) => { relayGroup = group; },
    // A stored answer is read later (GET, previous_response_id, its conversation): it runs on.
    outlivesGateway: store,
  });
  c.header('x-bamba-resume', generation.start.resume);
  // The limit as admitted (a default is capped to fit the model's context).
  const stored: ResponseRecord = { ...record, maxOutputTokens: generation.request.params.maxTokens, relayGroup, outcome: null };
  try {
    if (store) await deps.responses.create(stored);
  } catch (error) {
    await generation.finish();
    throw error;
  }
  const view = viewOf(stored, store);
  const hooks: FoldHooks = { start: generation.start, onText: () => { relayedText = request.stream; generation.noteText(); }, onEnd: generation.noteEnd };
  if (!request.stream) {
    try {
      const { outcome, error } = await foldResponse(view, 'in_progress', generation.next, async () => {}, () => clock.nowMs(), hooks);
      if (store) await recordOutcome(deps, stored, outcome, generation.cancelled);
      if (error) throw error;
      c.header('x-bamba-resume', generation.start.resume); // the attempt that answered
      return c.json(responseObject({ ...view, status: outcome.status, outcome }));
    } finally {
      await generation.finish();
    }
  }

  log.deferred = true;
  metrics.changeActiveStreams(1);
  return c.newResponse(sseBody(config, generation.cancel, async (write) => {
    try {
      const { outcome } = await foldResponse(view, 'in_progress', generation.next, (events) => write(events.map(responseEvent).join('')), () => clock.nowMs(), hooks);
      if (store) await recordOutcome(deps, stored, outcome, false);
      if (outcome.error) log.set({ errorType: 'response_failed', errorCode: outcome.error.code });
    } catch {
      // The client went away or stopped reading: the job is cancelled, the response with it,
      // where its stream stands (one that had ended keeps its outcome).
      if (store) await stopStored(deps, stored).catch(() => { /* expired or deleted meanwhile; or Redis is down: it settles once stale */ });
    } finally {
      metrics.changeActiveStreams(-1);
      await generation.finish();
      log.write(200, clock.nowMs()); // 499 when its client left (set when the generation finished)
    }
  }), 200, SSE_HEADERS);
}

/**
 * Record how a response this gateway ran ended. When something other than its stream ended it
 * (its client left, this gateway stopped), the stream is marked there first and the outcome read
 * from it (stopStored), so every reader of the stream ends at the same point with the same text.
 */
async function recordOutcome(deps: ResponseDeps, stored: ResponseRecord, outcome: ResponseOutcome, clientLeft: boolean): Promise<void> {
  const ended = outcome.status === 'completed' || outcome.status === 'incomplete';
  const recorded = !ended && clientLeft
    ? stopStored(deps, stored)
    : outcome.error?.code === GATEWAY_STOPPING
      ? stopStored(deps, stored, gatewayStopping())
      : deps.responses.finish(stored.id, outcome);
  await recorded.catch(() => { /* expired or deleted meanwhile; or Redis is down: a reader settles it once stale */ });
}
