/**
 * The start every generation endpoint shares, as small steps around the one `generate` port:
 * admit (model, limits, queue) → lock the session turn → generate → wait for the start (so
 * refusals found on the gpu-node still become plain HTTP errors). What follows (the answer as
 * chat chunks, or as Responses events) is the caller's; `finish` must run on every way out.
 */
import { answerOf, ServerError, type AnswerPiece, type GenerationJobDraft, type ValidatedGenerationRequest } from '@bamba/shared';
import type { AppConfig } from '../config.js';
import type { GatewayMetrics } from '../metrics.js';
import { CLIENT_CLOSED_REQUEST, type RequestLogEntry } from '../request-log.js';
import type { Clock, GenerationPort, RegionState, Sessions } from '../ports.js';
import { gatewayStopping, type GatewayStop } from '../gateway-stop.js';
import { admit } from './admission.js';
import { checkSessionHome, lockSessionTurn, type LockedTurn } from './session-turn.js';

export interface GenerationDeps {
  region: RegionState;
  generation: GenerationPort;
  sessions: Sessions;
  config: AppConfig;
  metrics: GatewayMetrics;
  clock: Clock;
  /** This gateway's stop (absent in apps that never stop this way). */
  stop?: GatewayStop | undefined;
}

/** Ids are also BullMQ job ids and stream names: letters, digits and '-' only. */
export function newRequestId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, '')}`;
}

export type StartPiece = Extract<AnswerPiece, { kind: 'start' }>;
export type EndPiece = Extract<AnswerPiece, { kind: 'end' }>;

export interface StartedGeneration {
  /** The request with `max_tokens` resolved against the model. */
  request: ValidatedGenerationRequest;
  /** The session turn's lock, when the request continues a session. */
  lock: LockedTurn | null;
  /** The gpu-node's start (resume path, prompt and cached tokens): the latest attempt's, once `next` gave a retried one. */
  readonly start: StartPiece;
  /** The next piece after the start (a restart, text, or the end); throws the generation's error. */
  next(): Promise<AnswerPiece>;
  /** Record time to first token (once). */
  noteText(): void;
  /** Record the end: tokens counted, the session turn committed. */
  noteEnd(piece: EndPiece): void;
  /** Cancel the job now (the client stopped reading): dropped if queued, stopped if running. */
  cancel(): void;
  /** Whether the job was cancelled (the client went away, or `cancel`); not when the gateway stopped it. */
  readonly cancelled: boolean;
  /** Stop the generation if still running and give back the session lock unless committed. */
  finish(): Promise<void>;
}

export interface BeginOptions {
  tenant: string;
  requestId: string;
  log: RequestLogEntry;
  arrivedMs: number;
  /** The client went away (or the response was cancelled): the job is cancelled. */
  signal: AbortSignal;
  /** Whether a retried attempt may replace what came before (false once text went out). */
  canRestart: () => boolean;
  /** Told where the job's token events go, once it is queued. */
  onQueued?: (relayGroup: string) => void;
  /** The job's answer is stored for readers to come (a stored or background response): it runs on if this gateway dies. */
  outlivesGateway?: boolean;
  /** The edge sent a session turn here because its home region is down (a replica may serve it). */
  failover?: boolean;
  /** Cancels the job as `cancel` does (a sibling choice failed): not counted as the client leaving. */
  cancelWith?: AbortSignal;
  /** Only evaluate the request's chat messages and save the state there as a prefix-cache entry (no answer). */
  prefillOnly?: boolean;
  /** A prefill-only job of this request saved the state at the end of its messages: the job looks there first. */
  sharedPrefill?: boolean;
  /** The request was accepted before (its shared prefill ran): a drain begun since lets it finish. */
  accepted?: boolean;
}

export async function beginGeneration(deps: GenerationDeps, validated: ValidatedGenerationRequest, options: BeginOptions): Promise<StartedGeneration> {
  const { config, metrics, clock } = deps;
  const { tenant, requestId, log, arrivedMs } = options;
  if (deps.stop?.draining && !options.accepted) throw gatewayStopping(); // new work goes to a gateway that stays
  if (validated.sessionId) checkSessionHome(validated.sessionId, deps.region.name, options.failover ?? false);
  const { request, nodes } = await admit(deps.region, config, validated);
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
    // Its client is gone with this gateway, as when it hangs up; a session turn cut so is not committed.
    ...(options.outlivesGateway ? {} : { endsWithReader: true as const }),
    ...(options.prefillOnly ? { prefillOnly: true as const } : {}),
    ...(options.sharedPrefill ? { sharedPrefill: true as const } : {}),
  };

  // A client that goes away cancels the job: dropped if still queued, stopped if running.
  const abort = new AbortController();
  // Only this (not a slow stream's cut, not the gateway stopping) makes the request a 499 in the
  // log and metrics: its client left, so whatever ended it is no server error.
  let clientLeft = false;
  const onGone = () => {
    clientLeft = true;
    abort.abort();
  };
  if (options.signal.aborted) onGone();
  else options.signal.addEventListener('abort', onGone, { once: true });
  // The gateway stopping cancels the job too, but the client hears why (`gatewayStopping`).
  let stoppedByGateway = false;
  const onStopping = () => {
    if (abort.signal.aborted) return; // the client left first: that is what ended it
    stoppedByGateway = true;
    abort.abort();
  };
  // The drain may have ended while this request was admitted or took its session lock.
  if (deps.stop?.ended.aborted) onStopping();
  else deps.stop?.ended.addEventListener('abort', onStopping, { once: true });
  const onCancelled = () => abort.abort();
  if (options.cancelWith?.aborted) onCancelled();
  else options.cancelWith?.addEventListener('abort', onCancelled, { once: true });
  let committed = false;
  const pieces = answerOf(deps.generation.generate(job, abort.signal, options.onQueued), options.canRestart)[Symbol.asyncIterator]();
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    options.signal.removeEventListener('abort', onGone);
    if (clientLeft && !stoppedByGateway) log.set({ status: CLIENT_CLOSED_REQUEST });
    deps.stop?.ended.removeEventListener('abort', onStopping);
    options.cancelWith?.removeEventListener('abort', onCancelled);
    await pieces.return(undefined).catch(() => {});
    if (!committed) await lock?.release();
  };
  /** The next piece; whatever ends the pieces once the gateway stopped them is `gatewayStopping`. */
  const nextStep = async (): Promise<IteratorResult<AnswerPiece>> => {
    try {
      const step = await pieces.next();
      if (step.done && stoppedByGateway) throw gatewayStopping();
      return step;
    } catch (error) {
      throw stoppedByGateway ? gatewayStopping() : error;
    }
  };
  let start!: StartPiece;
  const noteStart = (piece: StartPiece) => {
    start = piece;
    log.set({ resume: piece.resume, promptTokens: piece.promptTokens, cachedTokens: piece.cachedTokens });
  };
  const next = async (): Promise<AnswerPiece> => {
    const step = await nextStep();
    if (step.done) throw new ServerError('the request ended without an answer');
    if (step.value.kind === 'start') noteStart(step.value); // a retried attempt's
    return step.value;
  };

  let first: AnswerPiece;
  try {
    const step = await nextStep();
    if (step.done) throw new ServerError('the request was cancelled before it started');
    first = step.value;
    if (first.kind !== 'start') throw new ServerError('the generation did not start with a start event');
  } catch (error) {
    await finish();
    throw error;
  }
  noteStart(first);

  let firstTokenSeen = false;
  return {
    request,
    lock,
    get start() {
      return start;
    },
    next,
    finish,
    cancel: () => abort.abort(),
    get cancelled() {
      return abort.signal.aborted && !stoppedByGateway;
    },
    noteText() {
      if (firstTokenSeen) return;
      firstTokenSeen = true;
      const ttftMs = clock.nowMs() - arrivedMs;
      metrics.observeTimeToFirstToken(ttftMs / 1000);
      log.set({ timeToFirstTokenMs: Math.round(ttftMs) });
    },
    noteEnd(piece) {
      committed = true; // the node commits a session turn before it writes the end event
      metrics.countTokens(piece.completionTokens);
      log.set({ completionTokens: piece.completionTokens, promptTokens: piece.promptTokens, cachedTokens: piece.cachedTokens });
    },
  };
}
