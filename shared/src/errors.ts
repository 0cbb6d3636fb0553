/**
 * The error taxonomy shared by every package. Each error carries a stable `type` (OpenAI's
 * `error.type` vocabulary where OpenAI has one), an HTTP status and whether a retry can help.
 * The gateway maps these to HTTP in one place; workers map `retryable: false` to a failed job.
 */

/** Options every Bamba error accepts. */
export interface BambaErrorOptions {
  /** Machine-readable detail, OpenAI's `error.code` (e.g. `model_not_found`). */
  code?: string | null;
  /** The request field at fault, OpenAI's `error.param`. */
  param?: string | null;
  /** The underlying error, kept for logs. */
  cause?: unknown;
  /** Seconds after which a retry may succeed (sent as `Retry-After`). */
  retryAfterSeconds?: number;
}

/** Base of every error this project throws on purpose. */
export class BambaError extends Error {
  /** Stable category string (`invalid_request_error`, `snapshot_error`, ...). */
  readonly type: string;
  /** HTTP status the gateway answers with. */
  readonly status: number;
  /** Whether repeating the same work later may succeed. */
  readonly retryable: boolean;
  readonly code: string | null;
  readonly param: string | null;
  /** Seconds after which a retry may succeed (`Retry-After`), or null. */
  readonly retryAfterSeconds: number | null;

  constructor(type: string, status: number, retryable: boolean, message: string, options: BambaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.type = type;
    this.status = status;
    this.retryable = retryable;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }
}

/**
 * The same error naming another field (a refusal found in one request's terms, told in another's):
 * `param`, and its message's leading field name, when it starts with it, replaced by `lead`.
 */
export function withParam(error: BambaError, param: string, lead = param): BambaError {
  const old = error.param;
  const named = old !== null && (error.message.startsWith(`${old} `) || error.message.startsWith(`${old}:`));
  return new BambaError(error.type, error.status, error.retryable, named ? `${lead}${error.message.slice(old.length)}` : error.message, { param, code: error.code, cause: error });
}

/** The client sent something we will never accept as it is (HTTP 400). */
export class InvalidRequestError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('invalid_request_error', 400, false, message, options);
  }
}

/** Why a state snapshot was refused. Each reason leaves the target slot untouched. */
export type SnapshotRejection =
  | 'snapshot_garbage' // not a snapshot at all (bad magic)
  | 'snapshot_truncated' // shorter than its header says
  | 'snapshot_header_corrupt' // header bytes fail their own checksum
  | 'snapshot_version_unsupported' // written by a newer/older format we cannot read
  | 'snapshot_checksum_mismatch' // payload bytes changed since export
  | 'snapshot_fingerprint_mismatch' // taken from another model or state layout
  | 'snapshot_token_mismatch' // engine restored a token sequence other than the header's
  | 'snapshot_too_long'; // covers more tokens than the target context holds

/**
 * A snapshot cannot be restored. Never fatal for a conversation: the caller falls back to
 * replaying the transcript. `code` says why.
 */
export class SnapshotRejectedError extends BambaError {
  declare readonly code: SnapshotRejection;
  constructor(code: SnapshotRejection, message: string, options: Omit<BambaErrorOptions, 'code'> = {}) {
    super('snapshot_error', 422, false, message, { ...options, code });
  }
}

/** A broken invariant inside Bamba Serve: always a bug, reported as HTTP 500. */
export class InternalInvariantError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('internal_error', 500, false, `bug: ${message}`, options);
  }
}

/** Missing or wrong API key (HTTP 401). Never echoes the key. */
export class AuthenticationError extends BambaError {
  constructor(message = 'missing or invalid API key: send "Authorization: Bearer <key>"') {
    super('authentication_error', 401, false, message, { code: 'invalid_api_key' });
  }
}

/** A resource that does not exist, or belongs to another tenant (HTTP 404). */
export class NotFoundError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('invalid_request_error', 404, false, message, { code: 'not_found', ...options });
  }
}

/**
 * The resource is busy with another request (HTTP 409), e.g. a session mid-turn. Retryable
 * unless told otherwise: a conflict that waiting cannot end (a file a running batch reads, a
 * session that lives elsewhere) says `retryable: false`, and the client hears it (`x-should-retry`).
 */
export class ConflictError extends BambaError {
  constructor(message: string, options: BambaErrorOptions & { retryable?: boolean } = {}) {
    super('invalid_request_error', 409, options.retryable ?? true, message, options);
  }
}

/** The request body is larger than the configured limit (HTTP 413). */
export class PayloadTooLargeError extends BambaError {
  constructor(limitBytes: number) {
    super('invalid_request_error', 413, false, `request body exceeds ${limitBytes} bytes`, { code: 'request_too_large' });
  }
}

/** Too much work is waiting already (HTTP 429); `retryAfterSeconds` goes into `Retry-After`. */
export class RateLimitError extends BambaError {
  constructor(message: string, retryAfterSeconds: number, options: BambaErrorOptions = {}) {
    super('rate_limit_error', 429, true, message, { code: 'queue_full', ...options, retryAfterSeconds });
  }
}

/** Nothing can serve the request right now (HTTP 503), e.g. no gpu-node alive. */
export class ServiceUnavailableError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('service_unavailable_error', 503, true, message, options);
  }
}

/** The request's deadline passed before it finished (HTTP 504). */
export class DeadlineExceededError extends BambaError {
  constructor(message: string) {
    super('timeout_error', 504, true, message, { code: 'deadline_exceeded' });
  }
}

/** The request was cancelled before it finished (its stored response's cancel): HTTP 409, not retryable. */
export class RequestCancelledError extends BambaError {
  constructor(message = 'the request was cancelled before it finished') {
    super('invalid_request_error', 409, false, message, { code: 'request_cancelled' });
  }
}

/** Work failed on the server side (a gpu-node died, the engine failed): HTTP 500, retryable. */
export class ServerError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('server_error', 500, true, message, options);
  }
}

/** An error as it crosses a process boundary (job results, stream events). */
export interface WireError {
  message: string;
  type: string;
  status: number;
  retryable: boolean;
  code: string | null;
  param: string | null;
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof BambaError) {
    return { message: error.message, type: error.type, status: error.status, retryable: error.retryable, code: error.code, param: error.param };
  }
  return { message: 'internal error', type: 'server_error', status: 500, retryable: false, code: null, param: null };
}

export function errorFromWire(wire: WireError): BambaError {
  return new BambaError(wire.type, wire.status, wire.retryable, wire.message, { code: wire.code, param: wire.param });
}

/**
 * A value read across a process boundary (a job, a stream event, a node status, a record in
 * Redis) failed its schema or carries a wire version this build does not read. Always the
 * server's problem, never retried: the same bytes fail the same way again.
 */
export class WireFormatError extends BambaError {
  constructor(what: string, detail: string, code: 'wire_malformed' | 'wire_version_unsupported' = 'wire_malformed') {
    super('server_error', 500, false, `malformed ${what}: ${detail}`, { code });
  }
}

/** A streaming client stopped reading: its stream is cut (and its job cancelled) so it cannot hold resources. */
export class SlowClientError extends BambaError {
  constructor(waitedMs: number) {
    super('timeout_error', 408, false, `the client did not read its stream for ${waitedMs} ms; the stream was cut`, { code: 'client_too_slow' });
  }
}

/** A tenant reached one of its limits (sessions, stored session state): HTTP 429 `quota_exceeded`. */
export class QuotaExceededError extends BambaError {
  constructor(message: string, options: BambaErrorOptions = {}) {
    super('rate_limit_error', 429, false, message, { code: 'quota_exceeded', ...options });
  }
}
