/**
 * One structured log line per request: who (request id, tenant), what (method, route,
 * status), how it was served (resume path, token counts) and how long it took. Never an API key
 * or message content. A streaming response's line is written when its stream ends.
 */
import type { ResumePath } from '@bamba/shared';

export interface RequestLogRecord {
  method: string;
  /** The matched route pattern (`/v1/sessions/:id`), never the raw path. */
  route: string;
  status: number;
  durationMs: number;
  requestId?: string;
  tenant?: string;
  resume?: ResumePath;
  promptTokens?: number;
  cachedTokens?: number;
  completionTokens?: number;
  timeToFirstTokenMs?: number;
  /** The error's type and code when the request failed (never its message: it may quote input). */
  errorType?: string;
  errorCode?: string | null;
  streamed?: boolean;
  /** `n`, when more than one answer was asked for (token counts are then all choices'). */
  choices?: number;
}

/** Where the gateway writes logs. The Node entry backs it with pino (JSON lines). */
export interface GatewayLogger {
  request(record: RequestLogRecord): void;
  info(message: string, fields?: Record<string, unknown>): void;
  /** An unexpected error (a bug or an outage), with its stack. */
  error(message: string, error: unknown): void;
}

/** nginx's status for a request whose client closed the connection before it was answered; only in logs and metrics. */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * The log line being built for the request in flight. Writing it also counts the request
 * (`onWritten`), so a stream is counted with the status its line says once it ended (a 499 when
 * its client left), not with the 200 its headers went out with.
 */
export class RequestLogEntry {
  readonly fields: Partial<RequestLogRecord> = {};
  /** Set by a streaming response: its stream writes the line when it ends. */
  deferred = false;
  private written = false;

  constructor(
    private readonly logger: GatewayLogger,
    private readonly method: string,
    private readonly route: string,
    private readonly startedMs: number,
    private readonly onWritten: (status: number) => void = () => {},
  ) {}

  set(fields: Partial<RequestLogRecord>): void {
    Object.assign(this.fields, fields);
  }

  write(status: number, nowMs: number): void {
    if (this.written) return;
    this.written = true;
    const final = this.fields.status ?? status;
    this.onWritten(final);
    this.logger.request({ ...this.fields, method: this.method, route: this.route, status: final, durationMs: Math.round(nowMs - this.startedMs) });
  }
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: GatewayLogger = { request: () => {}, info: () => {}, error: () => {} };
