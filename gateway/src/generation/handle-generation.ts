/**
 * The path both generation endpoints share, as small steps around the one `generate` port:
 * admit (model, limits, queue) → lock the session turn → generate → wait for the start (so
 * refusals found on the gpu-node still become plain HTTP errors) → answer as SSE or JSON from
 * the same sequence of answer pieces.
 */
import {
  errorToWire,
  ServerError,
  SlowClientError,
  type GenerationJobDraft,
  type ValidatedGenerationRequest,
} from '@bamba/shared';
import type { Context } from 'hono';
import type { AppConfig } from '../config.js';
import type { GatewayVariables } from '../gateway-env.js';
import type { GatewayMetrics } from '../metrics.js';
import { completeResponse, streamChunk, usageChunk, usageOf, type Usage } from '../openai-responses.js';
import type { Clock, GenerationPort, RegionState, Sessions } from '../ports.js';
import { admit } from './admission.js';
import { answerOf, type AnswerPiece } from './answer.js';
import { lockSessionTurn, type LockedTurn } from './session-turn.js';

export interface GenerationDeps {
  region: RegionState;
  generation: GenerationPort;
  sessions: Sessions;
  config: AppConfig;
  metrics: GatewayMetrics;
  clock: Clock;
}

/** Ids are also BullMQ job ids and stream names: letters, digits and '-' only. */
function newRequestId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, '')}`;
}

/** One SSE event's bytes. Several go out in one write when they are ready together. */
const sse = (payload: unknown) => `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;

export async function handleGeneration(c: Context<{ Variables: GatewayVariables }>, deps: GenerationDeps, validated: ValidatedGenerationRequest): Promise<Response> {
  const { config, metrics, clock } = deps;
  const arrivedMs = clock.nowMs();
  const { request, nodes } = await admit(deps.region, config, validated);
  const tenant = c.get('tenant');
  const log = c.get('log');
  const requestId = newRequestId(request.endpoint === 'chat' ? 'chatcmpl' : 'cmpl');
  log.set({ requestId, tenant, streamed: request.stream });
  c.header('x-request-id', requestId); // on every answer, errors included: what to quote when asking about it
  const lock: LockedTurn | null = request.sessionId
    ? await lockSessionTurn(deps.sessions, tenant, request.sessionId, request.model, requestId, config.requestDeadlineMs, nodes, config.maxSessionBytesPerTenant)
    : null;

  const job: GenerationJobDraft = {
    requestId,
    tenant,
    model: request.model,
    input: request.input,
    params: request.params,
    priority: 'interactive',
    deadlineAtMs: arrivedMs + config.requestDeadlineMs,
    enqueuedAtMs: arrivedMs,
    ...(lock ? { session: lock.turn } : {}),
    ...(lock?.affinityNode ? { affinityNode: lock.affinityNode } : {}),
  };

  // A client that goes away cancels the job: dropped if still queued, stopped if running.
  const abort = new AbortController();
  const onClientGone = () => abort.abort();
  c.req.raw.signal.addEventListener('abort', onClientGone, { once: true });
  let relayedText = false;
  let committed = false;
  const pieces = answerOf(deps.generation.generate(job, abort.signal), () => !relayedText)[Symbol.asyncIterator]();
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    c.req.raw.signal.removeEventListener('abort', onClientGone);
    await pieces.return(undefined).catch(() => {});
    if (!committed) await lock?.release();
  };

  let first: AnswerPiece;
  try {
    const step = await pieces.next();
    if (step.done) throw new ServerError('the request was cancelled before it started');
    first = step.value;
  } catch (error) {
    await finish();
    throw error;
  }
  if (first.kind === 'start') {
    c.header('x-bamba-resume', first.resume);
    log.set({ resume: first.resume, promptTokens: first.promptTokens, cachedTokens: first.cachedTokens });
  }

  let firstTokenSeen = false;
  const noteText = () => {
    if (firstTokenSeen) return;
    firstTokenSeen = true;
    const ttftMs = clock.nowMs() - arrivedMs;
    metrics.observeTimeToFirstToken(ttftMs / 1000);
    log.set({ timeToFirstTokenMs: Math.round(ttftMs) });
  };
  const noteEnd = (piece: Extract<AnswerPiece, { kind: 'end' }>): Usage => {
    committed = true; // the node commits a session turn before it writes the end event
    metrics.countTokens(piece.completionTokens);
    log.set({ completionTokens: piece.completionTokens, promptTokens: piece.promptTokens, cachedTokens: piece.cachedTokens });
    return usageOf(piece.promptTokens, piece.completionTokens, piece.cachedTokens);
  };
  const identity = { id: requestId, created: Math.floor(arrivedMs / 1000), model: request.model };
  const nextPiece = async (): Promise<AnswerPiece> => {
    const step = await pieces.next();
    if (step.done) throw new ServerError('the request ended without an answer');
    return step.value;
  };

  if (!request.stream) {
    try {
      let text = '';
      for (;;) {
        const piece = await nextPiece();
        if (piece.kind === 'restart') text = '';
        else if (piece.kind === 'text') { noteText(); text += piece.text; }
        else if (piece.kind === 'end') return c.json(completeResponse(request, identity, text, piece.finishReason, noteEnd(piece)));
      }
    } finally {
      await finish();
    }
  }

  log.deferred = true;
  metrics.changeActiveStreams(1);
  return c.newResponse(sseBody(config, abort, async (write) => {
    try {
      for (;;) {
        const piece = await nextPiece();
        if (piece.kind === 'text') {
          noteText();
          if (piece.text === '') continue;
          await write(sse(streamChunk(request, identity, { text: piece.text, first: !relayedText }, null)));
          relayedText = true;
        } else if (piece.kind === 'end') {
          const usage = noteEnd(piece);
          let tail = '';
          if (!relayedText && request.endpoint === 'chat') tail += sse(streamChunk(request, identity, { text: '', first: true }, null));
          tail += sse(streamChunk(request, identity, null, piece.finishReason));
          if (request.includeUsage) tail += sse(usageChunk(request, identity, usage));
          await write(tail + sse('[DONE]'));
          return;
        }
      }
    } catch (error) {
      const wire = errorToWire(error);
      log.set({ errorType: wire.type, errorCode: wire.code });
      // Headers are sent: the error travels as a final event, then the stream closes.
      if (!(error instanceof SlowClientError) && !abort.signal.aborted) await write(sse({ error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } })).catch(() => {});
    } finally {
      metrics.changeActiveStreams(-1);
      await finish();
      log.write(200, clock.nowMs());
    }
  }), 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

/**
 * A response body fed by `produce`. A write the client does not take within `slowClientMs`
 * (it stopped reading) cuts the stream and cancels the job, so a stalled client holds nothing.
 */
function sseBody(config: AppConfig, abort: AbortController, produce: (write: (text: string) => Promise<void>) => Promise<void>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const write = async (text: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new SlowClientError(config.slowClientMs)), config.slowClientMs); });
    try {
      await Promise.race([writer.write(encoder.encode(text)), stalled]);
    } catch (error) {
      if (error instanceof SlowClientError) {
        abort.abort(); // cancels the job
        await writer.abort(error).catch(() => {});
      }
      throw error; // or the client went away: the body was cancelled
    } finally {
      clearTimeout(timer);
    }
  };
  void produce(write).finally(() => { writer.close().catch(() => {}); });
  return readable;
}
