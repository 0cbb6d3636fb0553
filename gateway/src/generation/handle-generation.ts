/**
 * Chat and legacy completions: the shared start (`beginGeneration`), then the answer as SSE
 * chunks or one JSON body, from the same sequence of answer pieces.
 */
import { completeResponse, errorToWire, finishReasonOf, SlowClientError, streamChunk, toolCallsChunk, usageChunk, usageOf, type TokenLogprob, type Usage, type ValidatedGenerationRequest } from '@bamba/shared';
import type { Context } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { beginGeneration, newRequestId, type EndPiece, type GenerationDeps } from './begin-generation.js';
import { sse, sseError, SSE_HEADERS, sseBody } from './sse-body.js';

export type { GenerationDeps } from './begin-generation.js';

/**
 * The request's id, on every answer from here on, validation errors included: what to quote when
 * asking about it. Taken before the body is read, so a refused request has one too.
 */
export function assignRequestId(c: Context<{ Variables: GatewayVariables }>, endpoint: ValidatedGenerationRequest['endpoint']): string {
  const requestId = newRequestId(endpoint === 'chat' ? 'chatcmpl' : 'cmpl');
  c.get('log').set({ requestId, tenant: c.get('tenant') });
  c.header('x-request-id', requestId);
  return requestId;
}

export async function handleGeneration(c: Context<{ Variables: GatewayVariables }>, deps: GenerationDeps, validated: ValidatedGenerationRequest, requestId: string): Promise<Response> {
  const { config, metrics, clock } = deps;
  const arrivedMs = clock.nowMs();
  const tenant = c.get('tenant');
  const log = c.get('log');
  log.set({ streamed: validated.stream });

  let relayedText = false;
  const generation = await beginGeneration(deps, validated, { tenant, requestId, log, arrivedMs, signal: c.req.raw.signal, canRestart: () => !relayedText, failover: c.get('failover') });
  const { request } = generation;
  c.header('x-bamba-resume', generation.start.resume);
  const usageAtEnd = (piece: EndPiece): Usage => {
    generation.noteEnd(piece);
    return usageOf(piece.promptTokens, piece.completionTokens, piece.cachedTokens);
  };
  const identity = { id: requestId, created: Math.floor(arrivedMs / 1000), model: request.model };

  if (!request.stream) {
    try {
      let text = '';
      let logprobs: TokenLogprob[] = [];
      for (;;) {
        const piece = await generation.next();
        if (piece.kind === 'restart') { text = ''; logprobs = []; }
        else if (piece.kind === 'text') {
          generation.noteText();
          text += piece.text;
          if (piece.logprobs) logprobs.push(...piece.logprobs);
        } else if (piece.kind === 'end') {
          c.header('x-bamba-resume', generation.start.resume); // the attempt that answered (a retried one's, after a node died)
          return c.json(completeResponse(request, identity, text, piece.finishReason, usageAtEnd(piece), piece.toolCalls, logprobs));
        }
      }
    } finally {
      await generation.finish();
    }
  }

  log.deferred = true;
  metrics.changeActiveStreams(1);
  return c.newResponse(sseBody(config.slowClientMs, generation.cancel, async (write) => {
    /** Where the next token's text begins in the answer (legacy completions' `text_offset`). */
    let logprobOffset = 0;
    try {
      for (;;) {
        const piece = await generation.next();
        if (piece.kind === 'text') {
          generation.noteText();
          // A delta whose text is held back (a possible stop string) still carries its tokens' entries.
          if (piece.text === '' && !piece.logprobs?.length) continue;
          await write(sse(streamChunk(request, identity, { text: piece.text, first: !relayedText, ...(piece.logprobs ? { logprobs: piece.logprobs, logprobOffset } : {}) }, null)));
          for (const entry of piece.logprobs ?? []) logprobOffset += entry.token.length;
          relayedText = true;
        } else if (piece.kind === 'end') {
          const usage = usageAtEnd(piece);
          let tail = '';
          if (piece.toolCalls) tail += sse(toolCallsChunk(request, identity, piece.toolCalls, !relayedText));
          else if (!relayedText && request.endpoint === 'chat') tail += sse(streamChunk(request, identity, { text: '', first: true }, null));
          tail += sse(streamChunk(request, identity, null, finishReasonOf(request, piece.finishReason, piece.toolCalls)));
          if (request.includeUsage) tail += sse(usageChunk(request, identity, usage));
          await write(tail + sse('[DONE]'));
          return;
        }
      }
    } catch (error) {
      const wire = errorToWire(error);
      log.set({ errorType: wire.type, errorCode: wire.code });
      // Headers are sent: the error travels as a final event, then the stream closes.
      if (!(error instanceof SlowClientError) && !generation.cancelled) await write(sseError(error)).catch(() => {});
    } finally {
      metrics.changeActiveStreams(-1);
      await generation.finish();
      log.write(200, clock.nowMs()); // 499 when its client left (set when the generation finished)
    }
  }), 200, SSE_HEADERS);
}
