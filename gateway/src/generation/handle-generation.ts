/**
 * Chat and legacy completions: the shared start (`beginChoices`: `n` generations), then the
 * answer as SSE chunks or one JSON body, from the same sequence of the choices' answer pieces.
 */
import { choicesPerPrompt, choicesUsage, completeResponse, errorToWire, finishReasonOf, midAnswerFailure, ServerError, SlowClientError, streamChunk, systemFingerprintOf, toolCallsChunk, usageChunk, type ChoiceAnswer, type TokenLogprob, type Usage, type ValidatedGenerationRequest } from '@bamba/shared';
import type { Context } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { newRequestId, type EndPiece, type GenerationDeps } from './begin-generation.js';
import { beginChoices } from './begin-choices.js';
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
  const count = validated.choices;
  log.set({ streamed: validated.stream, ...(count > 1 ? { choices: count } : {}) });

  /** Per choice: whether any of it went out to the client (then a retried attempt cannot replace it). */
  const relayed: boolean[] = Array.from({ length: count }, () => false);
  const choices = await beginChoices(deps, validated, { tenant, requestId, log, arrivedMs, signal: c.req.raw.signal, canRestart: (index) => !relayed[index], failover: c.get('failover') });
  const { request, generations } = choices;
  /** Each choice's resume path (the attempt that answered, once a retried one did; `queued` while a choice waits for a slot). */
  const resumeHeader = () => Array.from({ length: count }, (_, index) => generations[index]?.start.resume ?? 'queued').join(', ');
  c.header('x-bamba-resume', resumeHeader());
  const ends: EndPiece[] = [];
  const noteEnd = (index: number, piece: EndPiece) => {
    generations[index]!.noteEnd(piece);
    ends[index] = piece;
  };
  const usageAtEnd = (): Usage => {
    if (ends.filter(Boolean).length !== count) throw new ServerError('the request ended without an answer');
    const usage = choicesUsage(ends, choicesPerPrompt(request));
    if (count > 1) log.set({ promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, cachedTokens: usage.prompt_tokens_details.cached_tokens });
    return usage;
  };
  /** Time to first token is the first choice's to write any text. */
  let textSeen = false;
  const noteText = (index: number) => {
    if (textSeen) return;
    textSeen = true;
    generations[index]!.noteText();
  };
  // One started at least: the answer begins once one has (they share the region's model).
  const identity = { id: requestId, created: Math.floor(arrivedMs / 1000), model: request.model, ...systemFingerprintOf(generations.find(Boolean)?.start.fingerprint) };

  if (!request.stream) {
    try {
      const answers = Array.from({ length: count }, () => ({ text: '', logprobs: [] as TokenLogprob[] }));
      const finished: ChoiceAnswer[] = [];
      for await (const { index, piece } of choices.pieces) {
        const answer = answers[index]!;
        if (piece.kind === 'restart') {
          answer.text = '';
          answer.logprobs = [];
        } else if (piece.kind === 'text') {
          noteText(index);
          answer.text += piece.text;
          if (piece.logprobs) answer.logprobs.push(...piece.logprobs);
        } else if (piece.kind === 'end') {
          noteEnd(index, piece);
          finished[index] = { text: answer.text, finishReason: piece.finishReason, toolCalls: piece.toolCalls, logprobs: answer.logprobs };
        }
      }
      const usage = usageAtEnd();
      c.header('x-bamba-resume', resumeHeader());
      return c.json(completeResponse(request, identity, finished, usage));
    } finally {
      await choices.finish();
    }
  }

  log.deferred = true;
  metrics.changeActiveStreams(1);
  return c.newResponse(sseBody(config, choices.cancel, async (write) => {
    /** Per choice: where its next token's text begins in its answer (legacy completions' `text_offset`). */
    const logprobOffsets: number[] = Array.from({ length: count }, () => 0);
    let ended = 0;
    try {
      for await (const { index, piece } of choices.pieces) {
        // Read ahead while its siblings waited for a slot, a retried attempt came after this choice's text went out.
        if (piece.kind === 'restart' && relayed[index]) throw midAnswerFailure('failed');
        if (piece.kind === 'text') {
          noteText(index);
          // A delta whose text is held back (a possible stop string) still carries its tokens' entries.
          if (piece.text === '' && !piece.logprobs?.length) continue;
          await write(sse(streamChunk(request, identity, { text: piece.text, first: !relayed[index], ...(piece.logprobs ? { logprobs: piece.logprobs, logprobOffset: logprobOffsets[index]! } : {}) }, null, index)));
          for (const entry of piece.logprobs ?? []) logprobOffsets[index]! += entry.token.length;
          relayed[index] = true;
        } else if (piece.kind === 'end') {
          noteEnd(index, piece);
          let tail = '';
          if (piece.toolCalls) tail += sse(toolCallsChunk(request, identity, piece.toolCalls, !relayed[index], index));
          // A choice that wrote no text still names its role (chat) or echoes its prompt.
          else if (!relayed[index] && (request.endpoint === 'chat' || request.echo)) tail += sse(streamChunk(request, identity, { text: '', first: true }, null, index));
          tail += sse(streamChunk(request, identity, null, finishReasonOf(request, piece.finishReason, piece.toolCalls), index));
          relayed[index] = true;
          ended += 1;
          if (ended === count) {
            const usage = usageAtEnd();
            if (request.includeUsage) tail += sse(usageChunk(request, identity, usage));
            tail += sse('[DONE]');
          }
          await write(tail);
          if (ended === count) return;
        }
      }
      throw new ServerError('the request ended without an answer');
    } catch (error) {
      const wire = errorToWire(error);
      log.set({ errorType: wire.type, errorCode: wire.code });
      // Headers are sent: the error travels as a final event, then the stream closes.
      if (!(error instanceof SlowClientError) && !choices.cancelled) await write(sseError(error)).catch(() => {});
    } finally {
      metrics.changeActiveStreams(-1);
      await choices.finish();
      log.write(200, clock.nowMs()); // 499 when its client left (set when the generation finished)
    }
  }), 200, SSE_HEADERS);
}
