/**
 * The edge's one hop to a region: the request as the client sent it (method, path, query, the
 * body already read and checked), signed for the tenant, with the client's abort signal, so a
 * client that goes away cancels the region request and with it the job. The answer's body is
 * passed through as a stream (SSE is never buffered). A region that cannot be reached throws
 * `RegionUnreachable`; any answer, errors included, is the region's to give.
 */
import { REGION_HEADER, ServiceUnavailableError, signEdgeRequest, SSE_END_COMMENT, wholeNumberParam, type RegionMap } from '@bamba/shared';
import { sse, sseError } from '../generation/sse-body.js';
import type { Readiness } from './region-health.js';

/** Request headers that travel on to the region (never the client's Authorization). */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'last-event-id', 'idempotency-key', 'x-request-id'];
/** Response headers that stop at the edge (hop-by-hop). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export class RegionUnreachable extends Error {
  constructor(readonly region: string, cause: unknown) {
    super(`region '${region}' could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface Hop {
  method: string;
  /** Path and query, as signed. */
  pathWithQuery: string;
  tenant: string;
  failover: boolean;
  headers: Headers;
  body: ArrayBuffer | string | null;
  signal: AbortSignal;
}

export class RegionHops {
  constructor(
    private readonly map: RegionMap,
    private readonly secret: string,
    private readonly nowMs: () => number,
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  async send(region: string, hop: Hop): Promise<Response> {
    const entry = this.map.get(region);
    if (!entry) throw new RegionUnreachable(region, new Error('not in the region map'));
    const headers = new Headers();
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = hop.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    const signed = await signEdgeRequest(this.secret, { tenant: hop.tenant, failover: hop.failover }, hop.method, hop.pathWithQuery, this.nowMs());
    for (const [name, value] of Object.entries(signed)) headers.set(name, value);
    let upstream: Response;
    try {
      upstream = await this.fetchImpl(`${entry.url}${hop.pathWithQuery}`, { method: hop.method, headers, body: hop.body, signal: hop.signal, redirect: 'manual' });
    } catch (error) {
      if (hop.signal.aborted) throw error; // the client went away: nothing to fall back to
      throw new RegionUnreachable(region, error);
    }
    // A proxy in front of a region that cannot reach it answers 502: the region is down all the same.
    if (upstream.status === 502) {
      await upstream.body?.cancel();
      throw new RegionUnreachable(region, new Error('HTTP 502 from in front of the region'));
    }
    const answer = new Headers();
    upstream.headers.forEach((value, name) => { if (!HOP_BY_HOP.has(name.toLowerCase())) answer.set(name, value); });
    answer.set(REGION_HEADER, region);
    const eventStream = upstream.body && (upstream.headers.get('content-type') ?? '').startsWith('text/event-stream');
    const body = eventStream ? endedOrCut(upstream.body!, region, hop.pathWithQuery.startsWith('/v1/responses'), startingAfterOf(hop.pathWithQuery)) : upstream.body;
    return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers: answer });
  }

  /** What the region's `/readyz` says within `timeoutMs` (`hung`: no answer in time; `unreachable`: no connection). */
  async ready(region: string, timeoutMs: number): Promise<Readiness> {
    const entry = this.map.get(region);
    if (!entry) return 'unreachable';
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await this.fetchImpl(`${entry.url}/readyz`, { signal });
      await response.body?.cancel();
      // Something in front of the region answering for it (502) is no answer from the region.
      if (response.status === 502) return 'unreachable';
      return response.ok ? 'ready' : 'not_ready';
    } catch {
      return signal.aborted ? 'hung' : 'unreachable';
    }
  }
}

/** Enough of a stream's end to hold `SSE_END_COMMENT` and a `data:`/`event:` line start split across reads. */
const TAIL_CHARS = 64;

/** Events after which a stream is complete whatever follows (a region from before `SSE_END_COMMENT`, a gateway that died right after). */
const TERMINAL_EVENT_NAMES = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);
const isTerminalData = (start: string) => start.startsWith('[DONE]') || start.startsWith('{"error"');

/**
 * A region's event stream, passed through as it comes. One that stops without the region's
 * `SSE_END_COMMENT` and without a final event (its gateway died, the connection broke, or the
 * gateway cut it) gets a last error event here, in the route's shape (`region_lost`,
 * retryable): the client learns that its answer is incomplete instead of reading a stream that
 * looks finished. `startingAfter`: the sequence number a resumed Responses stream starts after.
 */
function endedOrCut(body: ReadableStream<Uint8Array>, region: string, responses: boolean, startingAfter: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  // Starts as a line end, so that the stream's first line is found like every other.
  let tail = '\n';
  let lastSequence = startingAfter;
  let lastEventName = '';
  let lastDataStart = '';
  const complete = () => tail.endsWith(SSE_END_COMMENT) || (responses ? TERMINAL_EVENT_NAMES.has(lastEventName) : isTerminalData(lastDataStart));
  const cutEvent = () => {
    const error = new ServiceUnavailableError(`region '${region}' stopped this stream before its end (its gateway went away, or cut the stream): the answer is incomplete; send it again (a session turn may have been committed: check the session's turns first)`, { code: 'region_lost' });
    // A Responses stream's error event (OpenAI's `error` type), else the chat chunks' error object.
    return responses ? sse({ type: 'error', code: error.code, message: error.message, param: null, sequence_number: lastSequence + 1 }, 'error') : sseError(error);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Awaited<ReturnType<typeof reader.read>> | null;
      try {
        chunk = await reader.read();
      } catch {
        chunk = null; // the connection broke
      }
      if (chunk && !chunk.done) {
        // The tail is read again with the new text: a line start split across reads is seen whole,
        // and one seen before is seen again in the same order (the last one wins either way).
        const text = tail + decoder.decode(chunk.value, { stream: true });
        for (const match of text.matchAll(/\n(event|data): ?([^\n]{0,24})/g)) {
          if (match[1] === 'event') lastEventName = match[2]!.trim();
          else lastDataStart = match[2]!;
        }
        if (responses) for (const match of text.matchAll(/"sequence_number":(\d+)/g)) lastSequence = Math.max(lastSequence, Number(match[1]));
        tail = text.slice(-TAIL_CHARS);
        controller.enqueue(chunk.value);
        return;
      }
      if (!complete()) controller.enqueue(new TextEncoder().encode(cutEvent()));
      controller.close();
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** A resumed Responses stream's `starting_after` (-1: from the start). */
function startingAfterOf(pathWithQuery: string): number {
  const queryAt = pathWithQuery.indexOf('?');
  const value = queryAt === -1 ? null : new URLSearchParams(pathWithQuery.slice(queryAt + 1)).get('starting_after');
  return (value === null ? null : wholeNumberParam(value)) ?? -1;
}
