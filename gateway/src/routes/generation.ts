/**
 * The path both generation endpoints share: check the model and the queue, enqueue the job,
 * wait for its first event (so errors found on the gpu-node, like a prompt longer than the
 * context, still become proper HTTP statuses), then relay tokens as SSE or collect them.
 */
import {
  errorFromWire,
  InvalidRequestError,
  JobPriority,
  NotFoundError,
  RateLimitError,
  ServerError,
  ServiceUnavailableError,
  errorToWire,
  type FinishReason,
  type GenerationJob,
  type NodeStatus,
  type StreamEvent,
  type ValidatedGenerationRequest,
} from '@bamba/shared';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { GatewayConfig } from '../config.js';
import type { GatewayMetrics } from '../metrics.js';
import { completeResponse, streamChunk, usageChunk, usageOf } from '../openai-responses.js';
import type { Clock, Dispatcher, Sessions } from '../ports.js';
import { sessionBusy, sessionNotFound } from './sessions.js';

export interface GenerationDeps {
  dispatcher: Dispatcher;
  sessions: Sessions;
  config: GatewayConfig;
  metrics: GatewayMetrics;
  clock: Clock;
}

/** A session lock outlives the request's deadline a little, in case the gateway dies mid-turn. */
const SESSION_LOCK_MARGIN_MS = 30_000;

/** Ids are also BullMQ job ids and stream names: letters and digits only. */
function newRequestId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, '')}`;
}

/** Resolve the model's limits and the queue's room; throws the matching HTTP error. */
async function admit(deps: GenerationDeps, request: ValidatedGenerationRequest): Promise<{ request: ValidatedGenerationRequest; nodes: NodeStatus[] }> {
  const nodes = await deps.dispatcher.liveNodes();
  if (nodes.length === 0) throw new ServiceUnavailableError('no gpu-node is alive in this region; try again shortly', { code: 'no_gpu_node' });
  const model = nodes.flatMap((node) => node.models).find((served) => served.id === request.model);
  if (!model) {
    const known = [...new Set(nodes.flatMap((node) => node.models.map((served) => served.id)))].join(', ');
    throw new NotFoundError(`model '${request.model}' does not exist; available: ${known}`, { param: 'model', code: 'model_not_found' });
  }
  const maxTokensLimit = model.contextSize - 1;
  let maxTokens = request.params.maxTokens;
  if (request.maxTokensRequested && maxTokens > maxTokensLimit) {
    throw new InvalidRequestError(`max_tokens is ${maxTokens}, model '${model.id}' allows at most ${maxTokensLimit}`, { param: 'max_tokens', code: 'max_tokens_too_large' });
  }
  maxTokens = Math.min(maxTokens, maxTokensLimit);
  const waiting = await deps.dispatcher.waitingJobs();
  if (waiting >= deps.config.queueMaxWaiting) {
    throw new RateLimitError(`the queue is full (${waiting} requests waiting); retry shortly`, 1);
  }
  return { request: { ...request, params: { ...request.params, maxTokens } }, nodes };
}

/** Take the session's turn lock; the turn goes to the node holding its state when that node has room. */
async function lockSession(deps: GenerationDeps, tenant: string, request: ValidatedGenerationRequest, requestId: string, nodes: NodeStatus[]) {
  const sessionId = request.sessionId!;
  const locked = await deps.sessions.lockTurn(tenant, sessionId, requestId, deps.config.requestDeadlineMs + SESSION_LOCK_MARGIN_MS);
  if (locked === 'not_found') throw sessionNotFound(sessionId);
  if (locked === 'busy') throw sessionBusy(sessionId);
  if (locked.model !== request.model) {
    await deps.sessions.unlockTurn(sessionId, requestId);
    throw new InvalidRequestError(`session '${sessionId}' uses model '${locked.model}', not '${request.model}'`, { param: 'model', code: 'model_mismatch' });
  }
  const holder = nodes.find((node) => node.nodeId === locked.residentNode);
  return { turn: { sessionId, expectedVersion: locked.version }, affinityNode: holder && holder.busySlots < holder.slots ? holder.nodeId : undefined };
}

/**
 * Reads events of the current attempt. When a job is retried (its node died), a newer
 * attempt's `generation-start` arrives: `onRestart` decides whether relaying can start over.
 */
class AttemptTracker {
  attempt = 0;
  constructor(private readonly onRestart: () => boolean) {}
  /** Whether to act on this event (false: a stale attempt's leftovers). */
  accept(event: StreamEvent): boolean {
    if (event.attempt < this.attempt) return false;
    if (event.type === 'generation-start' && event.attempt > this.attempt) {
      if (this.attempt !== 0 && !this.onRestart()) throw new ServerError('the gpu-node serving this request failed mid-generation; please retry', { code: 'node_failed' });
      this.attempt = event.attempt;
    }
    return true;
  }
}

export async function handleGeneration(c: Context<{ Variables: { tenant: string } }>, deps: GenerationDeps, validated: ValidatedGenerationRequest): Promise<Response> {
  const { request, nodes } = await admit(deps, validated);
  const { dispatcher, config, metrics, clock } = deps;
  const arrivedMs = clock.nowMs();
  const requestId = newRequestId(request.endpoint === 'chat' ? 'chatcmpl' : 'cmpl');
  const session = request.sessionId ? await lockSession(deps, c.get('tenant'), request, requestId, nodes) : null;
  // A session turn that ends without committing gives its lock back (commit deletes it itself).
  const unlockSession = async () => { if (session) await deps.sessions.unlockTurn(session.turn.sessionId, requestId).catch(() => {}); };
  const job: GenerationJob = {
    requestId,
    tenant: c.get('tenant'),
    model: request.model,
    input: request.input,
    params: request.params,
    deadlineAtMs: arrivedMs + config.requestDeadlineMs,
    enqueuedAtMs: arrivedMs,
    ...(session ? { session: session.turn } : {}),
  };
  try {
    await dispatcher.submit(job, { priority: JobPriority.interactive, attempts: config.jobAttempts, ...(session?.affinityNode ? { nodeId: session.affinityNode } : {}) });
  } catch (error) {
    await unlockSession();
    throw error;
  }

  // A client that goes away cancels the job: dropped if still queued, stopped if running.
  const abort = new AbortController();
  let finished = false;
  let committed = false;
  const onClientGone = () => {
    abort.abort();
    if (!finished) void dispatcher.cancel(requestId).catch(() => {});
  };
  c.req.raw.signal.addEventListener('abort', onClientGone, { once: true });

  const identity = { id: requestId, created: Math.floor(arrivedMs / 1000), model: request.model };
  let relayedText = false;
  const tracker = new AttemptTracker(() => !relayedText);
  const events = dispatcher.events(requestId, job.deadlineAtMs, abort.signal)[Symbol.asyncIterator]();
  const cleanUp = async () => {
    finished = true;
    c.req.raw.signal.removeEventListener('abort', onClientGone);
    await events.return?.();
    if (!committed) await unlockSession();
  };

  const nextEvent = async (): Promise<StreamEvent | null> => {
    for (;;) {
      const step = await events.next();
      if (step.done) return null;
      if (tracker.accept(step.value)) return step.value;
    }
  };

  try {
    // Wait for the node to start (or refuse) before committing to an HTTP status.
    const first = await nextEvent();
    if (!first) throw new ServerError('the request was cancelled');
    if (first.type === 'generation-error') throw errorFromWire(first.error);
    if (first.type === 'generation-start') c.header('x-bamba-resume', first.resume);
  } catch (error) {
    await cleanUp();
    if (!abort.signal.aborted) await dispatcher.cancel(requestId).catch(() => {});
    throw error;
  }

  let firstTokenSeen = false;
  const noteToken = () => {
    if (firstTokenSeen) return;
    firstTokenSeen = true;
    metrics.observeTimeToFirstToken((clock.nowMs() - arrivedMs) / 1000);
  };

  if (!request.stream) {
    try {
      let text = '';
      for (;;) {
        const event = await nextEvent();
        if (!event) throw new ServerError('the request was cancelled');
        if (event.type === 'generation-start') { text = ''; continue; } // a retry starts over
        if (event.type === 'token-delta') { noteToken(); text += event.text; continue; }
        if (event.type === 'generation-error') throw errorFromWire(event.error);
        committed = true; // the node commits a session turn before it writes the end event
        metrics.tokensGenerated += event.completionTokens;
        return c.json(completeResponse(request, identity, text, event.finishReason, usageOf(event.promptTokens, event.completionTokens, event.cachedTokens)));
      }
    } finally {
      await cleanUp();
    }
  }

  metrics.activeStreams++;
  return streamSSE(c, async (stream) => {
    stream.onAbort(onClientGone);
    const send = (payload: unknown) => stream.writeSSE({ data: JSON.stringify(payload) });
    try {
      let finishReason: FinishReason | null = null;
      let usage = null;
      while (finishReason === null) {
        const event = await nextEvent();
        if (!event) return; // client gone
        if (event.type === 'generation-start') continue;
        if (event.type === 'generation-error') throw errorFromWire(event.error);
        if (event.type === 'token-delta') {
          noteToken();
          if (event.text === '') continue;
          await send(streamChunk(request, identity, { text: event.text, first: !relayedText }, null));
          relayedText = true;
          continue;
        }
        finishReason = event.finishReason;
        committed = true;
        metrics.tokensGenerated += event.completionTokens;
        usage = usageOf(event.promptTokens, event.completionTokens, event.cachedTokens);
      }
      if (!relayedText && request.endpoint === 'chat') await send(streamChunk(request, identity, { text: '', first: true }, null));
      await send(streamChunk(request, identity, null, finishReason));
      if (request.includeUsage && usage) await send(usageChunk(request, identity, usage));
      await stream.writeSSE({ data: '[DONE]' });
    } catch (error) {
      // Headers are sent: the error travels as a final event, then the stream closes.
      const wire = errorToWire(error);
      await send({ error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } });
      if (!abort.signal.aborted) await dispatcher.cancel(requestId).catch(() => {});
    } finally {
      metrics.activeStreams--;
      await cleanUp();
    }
  });
}
