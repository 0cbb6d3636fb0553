/**
 * Batches (OpenAI's Batch API): the create request, the record and its wire shape, and the
 * checks of one input line. Pure: the gateway validates the create request with it, the workers
 * every input line, and both build OpenAI's shapes from it.
 */
import { z } from 'zod';
import { BambaError, InvalidRequestError, errorToWire } from './errors.js';
import { parseRequestBody, validateChatCompletionRequest, validateCompletionRequest, type ValidatedGenerationRequest, type ValidationDefaults } from './openai-requests.js';
import { itemCallParam, responseContext, responseGeneration, validateCreateResponse, type ValidatedResponseRequest } from './responses.js';
import { assertToolAnswers } from './tools.js';
import { metadataSchema } from './sessions.js';

/** Endpoints a batch may run, as OpenAI names them. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/completions', '/v1/responses'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];
/** Requests one batch may hold (OpenAI's limit). */
export const MAX_BATCH_REQUESTS = 50_000;
/** The only completion window OpenAI offers. */
export const BATCH_WINDOW_MS = 24 * 3600 * 1000;

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
const FINISHED_BATCH_STATUSES: ReadonlySet<string> = new Set<BatchStatus>(['completed', 'failed', 'expired', 'cancelled']);

/** Whether a batch in this status is done for good (nothing more will change). */
export function isFinishedBatch(status: string): boolean {
  return FINISHED_BATCH_STATUSES.has(status);
}

export const createBatchSchema = z.object({
  input_file_id: z.string({ error: (issue) => (issue.input === undefined ? 'input_file_id is required' : 'input_file_id must be a string') }).min(1, 'input_file_id must not be empty'),
  endpoint: z.enum(BATCH_ENDPOINTS, { error: `endpoint must be one of: ${BATCH_ENDPOINTS.join(', ')}` }),
  completion_window: z.literal('24h', { error: "completion_window must be '24h'" }),
  metadata: metadataSchema.nullish(),
  /** Read so that it is refused rather than ignored (see validateCreateBatch). */
  output_expires_after: z.unknown().optional(),
});

export interface ValidatedCreateBatch {
  inputFileId: string;
  endpoint: BatchEndpoint;
  metadata: Record<string, string>;
}

export function validateCreateBatch(body: unknown): ValidatedCreateBatch {
  const request = parseRequestBody(createBatchSchema, body);
  // As with a file's expires_after: a client counting on its outputs expiring would be misled.
  if (request.output_expires_after !== undefined && request.output_expires_after !== null) {
    throw new InvalidRequestError('output_expires_after is not supported: a batch\'s output and error files are kept until they are deleted (DELETE /v1/files/{file_id})', { param: 'output_expires_after', code: 'unsupported_parameter' });
  }
  return { inputFileId: request.input_file_id, endpoint: request.endpoint, metadata: request.metadata ?? {} };
}

/** An input line that cannot run, as OpenAI lists it in `errors` (line numbers from 1). */
export interface BatchLineError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchCounts {
  /** Input lines (valid or not). */
  total: number;
  completed: number;
  /** Invalid lines, failed requests, and requests a cancel or the window stopped. */
  failed: number;
}

/** A batch as the region keeps it. Timestamps are epoch ms, null until reached. */
export interface BatchRecord {
  id: string;
  tenant: string;
  endpoint: BatchEndpoint;
  inputFileId: string;
  status: BatchStatus;
  createdAtMs: number;
  expiresAtMs: number;
  inProgressAtMs: number | null;
  finalizingAtMs: number | null;
  completedAtMs: number | null;
  failedAtMs: number | null;
  expiredAtMs: number | null;
  cancellingAtMs: number | null;
  cancelledAtMs: number | null;
  outputFileId: string | null;
  errorFileId: string | null;
  counts: BatchCounts;
  /** Invalid input lines (the first ones; every one is also in the error file). */
  errors: BatchLineError[];
  metadata: Record<string, string>;
  /** The model its requests name (the first valid one's), once validated. */
  model: string | null;
  /** Tokens of the requests that completed so far. */
  usage: BatchUsage;
}

export interface BatchUsage {
  inputTokens: number;
  /** Of the input tokens, those resumed from saved state (a shared prefix, say). */
  cachedTokens: number;
  outputTokens: number;
}

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/** OpenAI's batch object. */
export function batchToWire(batch: BatchRecord) {
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors.length > 0 ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: '24h',
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: seconds(batch.createdAtMs),
    in_progress_at: seconds(batch.inProgressAtMs),
    expires_at: seconds(batch.expiresAtMs),
    finalizing_at: seconds(batch.finalizingAtMs),
    completed_at: seconds(batch.completedAtMs),
    failed_at: seconds(batch.failedAtMs),
    expired_at: seconds(batch.expiredAtMs),
    cancelling_at: seconds(batch.cancellingAtMs),
    cancelled_at: seconds(batch.cancelledAtMs),
    request_counts: batch.counts,
    metadata: batch.metadata,
    ...(batch.model === null ? {} : { model: batch.model }),
    usage: {
      input_tokens: batch.usage.inputTokens,
      input_tokens_details: { cached_tokens: batch.usage.cachedTokens },
      output_tokens: batch.usage.outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: batch.usage.inputTokens + batch.usage.outputTokens,
    },
  };
}

/** One line of a batch's output or error file, in OpenAI's format. */
export const batchOutputLineSchema = z.object({
  id: z.string(),
  custom_id: z.string().nullable(),
  response: z.object({ status_code: z.number().int(), request_id: z.string(), body: z.unknown() }).nullable(),
  error: z.object({ code: z.string(), message: z.string(), line: z.number().int().optional() }).nullable(),
});
export type BatchOutputLine = z.infer<typeof batchOutputLineSchema>;

/** A request line that may run: its place in the file and the validated request. */
export interface BatchItem {
  line: number;
  customId: string;
  /** The generation it runs. */
  request: ValidatedGenerationRequest;
  /** A `/v1/responses` line: the response it asks for (its output is a response object). */
  response?: ValidatedResponseRequest;
}

const inputLineSchema = z.object({
  custom_id: z.string({ error: 'custom_id must be a string' }).min(1, 'custom_id must not be empty').max(512, 'custom_id holds at most 512 characters'),
  method: z.string({ error: 'method is required' }),
  url: z.string({ error: 'url is required' }),
  body: z.record(z.string(), z.unknown(), { error: 'body must be a JSON object' }),
});

/** UTF-8 bytes of `text`, counted only when its length leaves the answer open. */
function exceedsBytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true; // every UTF-16 unit is at least a byte
  if (text.length * 3 <= maxBytes) return false; // and at most three
  return new TextEncoder().encode(text).length > maxBytes;
}

/**
 * Check one input line (1-based `line`) against the batch's endpoint and the custom ids seen so
 * far (a line whose id was seen is refused; a valid id is added to `seen`). A line longer than
 * `maxLineBytes` (an interactive body's limit) is refused before it is parsed. Returns the item,
 * or the error (with the line's custom id when it had a readable one).
 */
export function checkBatchLine(text: string, line: number, endpoint: BatchEndpoint, seen: Set<string>, defaults: ValidationDefaults, maxLineBytes: number): BatchItem | { error: BatchLineError; customId: string | null } {
  const refuse = (code: string, message: string, param: string | null = null, customId: string | null = null) => ({ error: { code, message, param, line }, customId });
  // As an interactive body over the limit: refused before it is parsed (its custom id, when it
  // comes first as usual, is read from the line's start), never validated nor queued.
  if (exceedsBytes(text, maxLineBytes)) {
    const customId = /^\s*\{\s*"custom_id"\s*:\s*"([^"\\]{1,512})"/.exec(text.slice(0, 600))?.[1] ?? null;
    return refuse('request_too_large', `the line holds more than ${maxLineBytes} bytes, the most one request may (BAMBA_MAX_BODY_BYTES)`, null, customId);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return refuse('invalid_json', 'the line is not valid JSON');
  }
  const shape = inputLineSchema.safeParse(value);
  if (!shape.success) {
    const issue = shape.error.issues[0]!;
    const customId = typeof (value as { custom_id?: unknown })?.custom_id === 'string' ? (value as { custom_id: string }).custom_id : null;
    return refuse('invalid_request', issue.message, issue.path.join('.') || null, customId);
  }
  const { custom_id: customId, method, url, body } = shape.data;
  if (seen.has(customId)) return refuse('duplicate_custom_id', `custom_id '${customId.slice(0, 64)}' appears on an earlier line`, 'custom_id', customId);
  seen.add(customId);
  if (method !== 'POST') return refuse('invalid_method', `method must be POST (got '${method.slice(0, 16)}')`, 'method', customId);
  if (url !== endpoint) return refuse('invalid_url', `url must be the batch's endpoint ${endpoint} (got '${url.slice(0, 64)}')`, 'url', customId);
  if (body.stream === true) return refuse('invalid_request', 'stream is not supported in a batch', 'body.stream', customId);
  if (body.session_id !== undefined && body.session_id !== null) return refuse('invalid_request', 'session_id is not supported in a batch', 'body.session_id', customId);
  try {
    if (endpoint === '/v1/responses') {
      const response = validateCreateResponse(body, defaults);
      // A line stands alone: it is answered once, never stored, and has its whole context.
      const standsAlone = ([['background', response.background], ['previous_response_id', response.previousResponseId !== null], ['conversation', response.conversationId !== null], ['store', body.store === true]] as const).find(([, set]) => set);
      if (standsAlone) return refuse('invalid_request', `${standsAlone[0] === 'store' ? 'store: true' : standsAlone[0]} is not supported in a batch: a batch's response is not stored, and its input holds its whole context`, `body.${standsAlone[0]}`, customId);
      // A function call's output answers a call of this input (there is no history).
      assertToolAnswers(response.input, [], itemCallParam({ itemIndex: response.inputItemIndex, callItemIndex: response.inputCallItemIndex }, 'input'));
      return { line, customId, request: responseGeneration(response, responseContext(response, [])), response };
    }
    const request = endpoint === '/v1/chat/completions' ? validateChatCompletionRequest(body, defaults) : validateCompletionRequest(body, defaults);
    // A line is one job with one output line: more answers are more lines (each with its seed).
    if (request.prompts) return refuse('invalid_request', 'several prompts are not supported in a batch: write one line per prompt', 'body.prompt', customId);
    if (request.choices > 1) return refuse('invalid_request', 'n > 1 is not supported in a batch: write one line per answer', 'body.n', customId);
    return { line, customId, request };
  } catch (error) {
    if (!(error instanceof BambaError)) throw error;
    const wire = errorToWire(error);
    return refuse(wire.code ?? 'invalid_request', wire.message, wire.param ? `body.${wire.param}` : 'body', customId);
  }
}

/** Whether a file line holds a request (blank lines, a trailing newline included, do not count). */
export function isRequestLine(text: string): boolean {
  return text.trim() !== '';
}

/**
 * The error line of a request without a result: one a cancel took back before it ran, or one the
 * end of the window stopped, queued or running (the window is a deadline: running work stops too).
 */
export function unrunLine(id: string, customId: string, code: 'batch_cancelled' | 'batch_expired'): BatchOutputLine {
  const message = code === 'batch_cancelled' ? 'the batch was cancelled before this request ran' : 'the batch expired before this request finished (queued or running, it was stopped at the end of the completion window)';
  return { id, custom_id: customId, response: null, error: { code, message } };
}

/** A batch create request whose input file is not the tenant's (or not a batch input). */
export function inputFileNotFound(fileId: string): InvalidRequestError {
  return new InvalidRequestError(`input_file_id '${fileId.slice(0, 64)}' is not one of your batch input files`, { param: 'input_file_id', code: 'invalid_value' });
}
