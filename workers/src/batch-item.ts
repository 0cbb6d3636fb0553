/**
 * One request of a batch: queued as a generation job at batch priority (its id derived from the
 * batch and the line), followed through its token stream to the end, and turned into its output
 * line with the same builders as the interactive answer. After a restart, a request whose stream
 * exists is read from it, one still queued is left there, and one that left no trace is queued
 * again; a result is only recorded by the runner, once.
 */
import { followRequestStream, type JobProducer, type NodeRegistry, type RegionKeys, type RegionRedis } from '@bamba/region';
import {
  answerOf,
  BambaError,
  completeResponse,
  DeadlineExceededError,
  endedOutcome,
  errorToWire,
  fitMaxTokens,
  newResponseRecord,
  NotFoundError,
  responseObject,
  responseRefusal,
  servedModel,
  systemFingerprintOf,
  usageOf,
  viewOf,
  WIRE_VERSION,
  type AnswerPiece,
  type BatchItem,
  type BatchOutputLine,
  type BatchRecord,
  type BatchUsage,
  type GenerationJob,
  type ServedModel,
  type TokenLogprob,
  type ValidatedGenerationRequest,
  type ValidatedResponseRequest,
} from '@bamba/shared';
import type { SharedPrefix } from './shared-prefixes.js';

export interface BatchItemDeps {
  redis: RegionRedis;
  keys: RegionKeys;
  producer: JobProducer;
  registry: NodeRegistry;
}

export type ItemOutcome =
  /** Finished (well or not): this output line goes to the output or the error file. */
  | { kind: 'result'; line: BatchOutputLine; outcome: 'completed' | 'failed'; usage: BatchUsage }
  /** Taken back before it started (the batch was cancelled or expired). */
  | { kind: 'withdrawn' }
  /** This process is stopping: the request is left as it is, for the next run to follow. */
  | { kind: 'stopped' };

/** The generation job's id: the batch and the input line (also the token stream's name). */
export function itemRequestId(batchId: string, line: number): string {
  return `${batchId}-${line}`;
}

/** An output line's own id, in OpenAI's `batch_req_…` form. */
export function outputLineId(batchId: string, line: number): string {
  return `batch_req_${batchId.slice('batch_'.length)}_${line}`;
}

function failureLine(batch: BatchRecord, item: BatchItem, error: unknown): ItemOutcome {
  const wire = errorToWire(item.response ? responseRefusal(item.response, 0, error) : error);
  return {
    kind: 'result',
    outcome: 'failed',
    usage: { inputTokens: 0, cachedTokens: 0, outputTokens: 0 },
    line: {
      id: outputLineId(batch.id, item.line),
      custom_id: item.customId,
      response: { status_code: wire.status, request_id: itemRequestId(batch.id, item.line), body: { error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } } },
      error: null,
    },
  };
}

const NO_NODE_POLL_MS = 1000;

/**
 * Queue a batch job unless it ran already: its token stream exists while it runs and a while
 * after it ended (then it is read from there). A job still waiting has no stream yet; queueing it
 * again adds nothing (same id). A finished batch job leaves the queue at once, so one whose
 * stream expired too (this process was down a long time) is queued and run again.
 */
async function submitOnce(deps: BatchItemDeps, job: GenerationJob): Promise<void> {
  if (await deps.producer.hasStream(job.relayGroup, job.requestId)) return;
  await deps.producer.submit(job);
}

/**
 * The model a request names, as the live gpu-nodes serve it (its context decides max_tokens), as
 * the gateway's admission finds it; null when stopped or withdrawn while no gpu-node is alive.
 */
async function modelOf(deps: BatchItemDeps, modelId: string, withdrawn: AbortSignal, stopping: AbortSignal): Promise<ServedModel | NotFoundError | null> {
  for (;;) {
    if (stopping.aborted || withdrawn.aborted) return null;
    const nodes = await deps.registry.liveNodes();
    if (nodes.length > 0) {
      try {
        return servedModel(nodes, modelId);
      } catch (error) {
        if (error instanceof NotFoundError) return error;
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, NO_NODE_POLL_MS)); // no gpu-node yet: wait, do not fail the batch
  }
}

/**
 * Seed a prefix the batch's requests share: a prefill-only job that saves the state at its end
 * in the prefix cache. Best effort: when it fails, the requests evaluate the prefix themselves.
 * Resolves once the state is saved (or seeding gave up).
 */
export async function seedSharedPrefix(deps: BatchItemDeps, batch: BatchRecord, prefix: SharedPrefix, withdrawn: AbortSignal, stopping: AbortSignal): Promise<void> {
  const model = await modelOf(deps, prefix.model, withdrawn, stopping);
  if (!model || model instanceof NotFoundError) return;
  const requestId = `${batch.id}-p${prefix.key}`;
  await submitOnce(deps, {
    v: WIRE_VERSION, requestId, tenant: batch.tenant, model: model.id, input: { kind: 'chat', messages: prefix.messages },
    params: { temperature: 0, topP: 1, topK: 0, maxTokens: 1, seed: 0, stop: [] }, priority: 'batch', relayGroup: batch.id,
    deadlineAtMs: batch.expiresAtMs, enqueuedAtMs: Date.now(), prefillOnly: true,
  });
  const follow = AbortSignal.any([withdrawn, stopping]);
  try {
    for await (const piece of answerOf(followRequestStream(deps.redis, deps.keys, batch.id, requestId, batch.expiresAtMs, follow), () => true)) {
      if (piece.kind === 'end') return;
    }
  } catch { /* the requests evaluate the prefix themselves */ }
}

/**
 * Run one request. `withdrawn` aborts when the batch stops taking requests (cancel, expiry): a
 * request still waiting in the queue is taken back, one already running finishes. `stopping`
 * aborts when this process stops.
 */
export async function runBatchItem(deps: BatchItemDeps, batch: BatchRecord, item: BatchItem, withdrawn: AbortSignal, stopping: AbortSignal): Promise<ItemOutcome> {
  const requestId = itemRequestId(batch.id, item.line);
  const model = await modelOf(deps, item.request.model, withdrawn, stopping);
  if (!model) return stopping.aborted ? { kind: 'stopped' } : { kind: 'withdrawn' };
  if (model instanceof NotFoundError) return failureLine(batch, item, model);
  let request;
  try {
    request = fitMaxTokens(item.request, model);
  } catch (error) {
    return failureLine(batch, item, error);
  }
  const job: GenerationJob = {
    v: WIRE_VERSION,
    requestId,
    tenant: batch.tenant,
    model: request.model,
    input: request.input,
    params: request.params,
    priority: 'batch',
    relayGroup: batch.id,
    deadlineAtMs: batch.expiresAtMs,
    enqueuedAtMs: Date.now(),
  };
  await submitOnce(deps, job);

  const follow = new AbortController();
  const stop = () => follow.abort();
  stopping.addEventListener('abort', stop, { once: true });
  const onWithdraw = () => {
    void deps.producer.withdraw(requestId).then((taken) => { if (taken) follow.abort(); }, () => {});
  };
  withdrawn.addEventListener('abort', onWithdraw, { once: true });
  if (withdrawn.aborted) onWithdraw();
  try {
    let text = '';
    let logprobs: TokenLogprob[] = [];
    let fingerprint: string | undefined;
    for await (const piece of answerOf(followRequestStream(deps.redis, deps.keys, batch.id, requestId, batch.expiresAtMs, follow.signal), () => true)) {
      if (piece.kind === 'restart') { text = ''; logprobs = []; }
      else if (piece.kind === 'start') fingerprint = piece.fingerprint; // the attempt that answers
      else if (piece.kind === 'text') {
        text += piece.text;
        if (piece.logprobs) logprobs.push(...piece.logprobs);
      } else if (piece.kind === 'end') {
        const body = item.response
          ? responseBody(item.response, request, batch, job, text, logprobs, piece)
          : completeResponse(request, completionIdentity(request, job, fingerprint), [{ text, finishReason: piece.finishReason, toolCalls: piece.toolCalls, logprobs }], usageOf(piece.promptTokens, piece.completionTokens, piece.cachedTokens));
        return {
          kind: 'result',
          outcome: 'completed',
          usage: { inputTokens: piece.promptTokens, cachedTokens: piece.cachedTokens, outputTokens: piece.completionTokens },
          line: { id: outputLineId(batch.id, item.line), custom_id: item.customId, response: { status_code: 200, request_id: requestId, body }, error: null },
        };
      }
    }
    return stopping.aborted ? { kind: 'stopped' } : { kind: 'withdrawn' };
  } catch (error) {
    if (stopping.aborted) return { kind: 'stopped' };
    if (follow.signal.aborted) return { kind: 'withdrawn' };
    // Past the batch's window (here, or the gpu-node found the job past it): it expires, and this
    // request with it (written as batch_expired).
    if (error instanceof DeadlineExceededError || (error instanceof BambaError && error.code === 'deadline_exceeded')) return { kind: 'withdrawn' };
    if (error instanceof BambaError) return failureLine(batch, item, error);
    throw error;
  } finally {
    stopping.removeEventListener('abort', stop);
    withdrawn.removeEventListener('abort', onWithdraw);
  }
}

/** A chat or legacy completion's id, created time (when it was queued), model and fingerprint, as the interactive answer's. */
function completionIdentity(request: ValidatedGenerationRequest, job: GenerationJob, fingerprint: string | undefined) {
  const prefix = request.endpoint === 'chat' ? 'chatcmpl' : 'cmpl';
  return { id: `${prefix}-${job.requestId.slice('batch_'.length)}`, created: Math.floor(job.enqueuedAtMs / 1000), model: request.model, ...systemFingerprintOf(fingerprint) };
}

/** A `/v1/responses` line's answer: the response object, as the interactive one shows it, never stored. */
function responseBody(response: ValidatedResponseRequest, request: ValidatedGenerationRequest, batch: BatchRecord, job: GenerationJob, text: string, logprobs: TokenLogprob[], end: Extract<AnswerPiece, { kind: 'end' }>) {
  const nowMs = Date.now();
  // (`params`: with max_tokens fitted to the model, as the record of an interactive one.)
  const record = newResponseRecord({ ...response, params: request.params }, {
    id: `resp_${job.requestId.slice('batch_'.length)}`, tenant: batch.tenant, createdAtMs: job.enqueuedAtMs, input: response.input, history: [], deadlineAtMs: batch.expiresAtMs,
  });
  const outcome = endedOutcome({ outputText: text, ...(logprobs.length > 0 ? { logprobs } : {}) }, end, nowMs);
  return responseObject(viewOf({ ...record, outcome }, false));
}
