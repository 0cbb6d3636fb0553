/**
 * A stored response's events for a reader that did not start it: `GET /v1/responses/{id}?stream=true`
 * (with `starting_after` after a dropped connection), and a background response's own stream.
 * While it runs, the events are rebuilt from its token stream in Redis (every reader folds the
 * same stream from its start, so numbers agree); once it has ended, from its stored answer.
 * A reader that sees the end first records the outcome (the gateway that ran it may be gone).
 */
import { answerOf, ConflictError, DeadlineExceededError, errorToWire, NODE_FAILED, viewOf, type AnswerPiece, type BambaError, type ResponseOutcome, type ResponseRecord } from '@bamba/shared';
import type { Context } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import type { GenerationDeps } from '../generation/begin-generation.js';
import { gatewayStopping } from '../gateway-stop.js';
import { SSE_HEADERS, sseBody } from '../generation/sse-body.js';
import type { ResponseRecords } from '../ports.js';
import { eventAfter, foldedTextOf, foldResponse, outcomeOf, ResponseEventSequence, responseEvent, type ResponseStreamEvent } from './response-events.js';

/** A follower waits this long past the response's deadline before it gives up on its stream. */
const FOLLOW_MARGIN_MS = 10_000;

type StoredDeps = GenerationDeps & { responses: ResponseRecords };

const openingStatusOf = (record: ResponseRecord) => (record.background ? 'queued' : 'in_progress');

/**
 * The pieces of a running response, read from its token stream. A reader for a client
 * (`forClient`) gets `gatewayStopping` once this gateway's drain is up, and follows a retried
 * attempt only while it sent no text; one whose events go nowhere (a look at how the response
 * stands: one read, bounded by its `untilMs`) always does, and reads on during the drain.
 */
function followPieces(deps: StoredDeps, record: ResponseRecord, untilMs: number, signal: AbortSignal, forClient: boolean): () => Promise<AnswerPiece> {
  let text = '';
  const pieces = answerOf(deps.generation.follow(record.relayGroup, record.id, untilMs, signal), () => !forClient || text === '')[Symbol.asyncIterator]();
  const stopped = () => forClient && deps.stop?.ended.aborted === true;
  return async () => {
    if (stopped()) throw gatewayStopping();
    const step = await pieces.next().catch((error: unknown) => { throw stopped() ? gatewayStopping() : error; });
    if (step.done && stopped()) throw gatewayStopping();
    if (step.done) throw new ConflictError('the response stream ended early', { code: 'stream_ended', retryable: false });
    if (step.value.kind === 'text') text += step.value.text;
    return step.value;
  };
}

export function streamStored(c: Context<{ Variables: GatewayVariables }>, deps: StoredDeps, record: ResponseRecord, startingAfter: number): Response {
  const { clock } = deps;
  const view = viewOf(record);
  const abort = new AbortController();
  c.req.raw.signal.addEventListener('abort', () => abort.abort(), { once: true });
  // This gateway's drain is up: stop following (the reader gets a final gateway_stopping event).
  const onStopped = () => abort.abort();
  deps.stop?.ended.addEventListener('abort', onStopped, { once: true });
  c.get('log').deferred = true;
  const after = (events: ResponseStreamEvent[]) => events.map((event) => eventAfter(event, startingAfter)).filter((event) => event !== null).map(responseEvent).join('');
  return c.newResponse(sseBody(deps.config, () => abort.abort(), async (write) => {
    const emit = async (events: ResponseStreamEvent[]) => {
      const text = after(events);
      if (text) await write(text);
    };
    try {
      if (record.outcome) {
        const sequence = new ResponseEventSequence(view);
        const events = sequence.opening(openingStatusOf(record));
        events.push(...sequence.deltas(record.outcome.outputText, record.outcome.deltaLengths, record.outcome.logprobs, record.outcome.deltaLogprobCounts));
        await emit([...events, ...sequence.closing(record.outcome)]);
        return;
      }
      if (!record.relayGroup) throw new ConflictError('the response is not queued yet; retry in a moment', { code: 'response_not_started' });
      const next = followPieces(deps, record, record.deadlineAtMs + FOLLOW_MARGIN_MS, abort.signal, true);
      const { outcome } = await foldResponse(view, openingStatusOf(record), next, emit, () => clock.nowMs());
      // Not when this gateway stopped reading it, nor when this reader could not follow a retry
      // (it had sent the dead attempt's text): the response itself did not end. Its runner, or
      // `settleIfStale` once the runner is gone, records how it did.
      const readerOnly = abort.signal.aborted || deps.stop?.ended.aborted || outcome.error?.code === NODE_FAILED;
      if (!readerOnly) await deps.responses.finish(record.id, outcome).catch(() => {});
    } catch {
      // The client went away: nothing to record, the response runs on.
    } finally {
      deps.stop?.ended.removeEventListener('abort', onStopped);
      abort.abort(); // stops the follower if it is still polling
      c.get('log').write(200, clock.nowMs());
    }
  }), 200, SSE_HEADERS);
}

/**
 * How a running response stands now, from what its token stream holds: `ended` with its outcome,
 * or not, when the fold ran out of events or it was never queued (the outcome then holds the text so far).
 */
async function standingOf(deps: StoredDeps, record: ResponseRecord): Promise<{ ended: boolean; outcome: ResponseOutcome }> {
  const abort = new AbortController();
  // The follower ran past what the stream holds (its own DeadlineExceededError: a node's arrives
  // rebuilt from the wire as a plain BambaError), or there is no stream yet.
  const notYet = (error: unknown) => error instanceof DeadlineExceededError || (error instanceof ConflictError && (error.code === 'stream_ended' || error.code === 'response_not_started'));
  const next = record.relayGroup
    ? followPieces(deps, record, 0, abort.signal, false)
    : () => Promise.reject(new ConflictError('the response was never queued', { code: 'response_not_started' }));
  try {
    const { outcome, error } = await foldResponse(viewOf(record), openingStatusOf(record), next, async () => {}, () => deps.clock.nowMs());
    return { ended: !notYet(error), outcome };
  } finally {
    abort.abort();
  }
}

/**
 * A response still active whose runner (the gateway that started it) is gone cannot be recorded
 * by it: settle it from its token stream once that ended (the generation runs on without its
 * gateway), and past its deadline in any case (`failed` when the stream never ended). Returns
 * the record as it is now.
 */
export async function settleIfStale(deps: StoredDeps, record: ResponseRecord): Promise<ResponseRecord> {
  if (record.outcome) return record;
  const pastDeadline = deps.clock.nowMs() > record.deadlineAtMs + FOLLOW_MARGIN_MS;
  if (!pastDeadline && !(record.relayGroup && (await deps.generation.readerGone(record.relayGroup)))) return record;
  const { ended, outcome } = await standingOf(deps, record);
  if (!ended && !pastDeadline) return record; // still generating: a later read settles it
  await deps.responses.finish(record.id, outcome);
  return (await deps.responses.get(record.tenant, record.id)) ?? { ...record, outcome };
}

/**
 * Stop a running response wherever it runs (`stopRun`) and record how its stream stands at the
 * cancellation point: `cancelled` with the text before it (`failed` with `error`, when that is
 * why it stops: its gateway stopping), or its own outcome when it ended first. Every reader of
 * its stream ends at the same point with the same text. False when another reader recorded an
 * outcome first.
 */
export async function stopStored(deps: RunningDeps, record: ResponseRecord, error?: BambaError): Promise<boolean> {
  const stopped = await stopRun(deps, record, error);
  const { ended, outcome } = await standingOf(deps, stopped);
  return deps.responses.finish(record.id, ended ? outcome : outcomeOf(foldedTextOf(outcome), error ? { error } : { cancelled: true }, deps.clock.nowMs()));
}

type RunningDeps = StoredDeps & { running: Map<string, AbortController> };

/**
 * Stop a response's generation: its token stream is marked cancelled (its readers, its runner
 * among them, end there), then its job is stopped (dropped if queued, stopped if running). One
 * not queued yet has no stream: its runner is stopped when it runs here; one that runs elsewhere
 * and was queued meanwhile gets its mark once its record says where (its runner also looks for
 * this cancel once it queued the job: between the two, one of them sees the other). Returns the
 * record as it stands after the cancel.
 */
export async function stopRun(deps: RunningDeps, record: ResponseRecord, error?: BambaError): Promise<ResponseRecord> {
  const wire = error ? errorToWire(error) : undefined;
  if (record.relayGroup) await deps.generation.markCancelled(record.relayGroup, record.id, wire);
  else deps.running.get(record.id)?.abort();
  await deps.generation.cancel(record.id);
  if (record.relayGroup) return record;
  const now = await deps.responses.get(record.tenant, record.id);
  if (!now?.relayGroup) return record;
  await deps.generation.markCancelled(now.relayGroup, record.id, wire);
  return now;
}
