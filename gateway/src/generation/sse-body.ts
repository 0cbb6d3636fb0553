/** Server-sent events: one event's bytes, and a response body that cuts a client that stopped reading. */
import { errorToWire, SlowClientError, SSE_END_COMMENT } from '@bamba/shared';

/** One SSE event's bytes (`event:` line when named). Several go out in one write when they are ready together. */
export function sse(payload: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;
}

/** A chat or completions stream's error event: OpenAI's error object, after which the stream closes. */
export function sseError(error: unknown): string {
  const wire = errorToWire(error);
  return sse({ error: { message: wire.message, type: wire.type, param: wire.param, code: wire.code } });
}

export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' } as const;

/** What a stream's body watches: a client that stopped reading, and a silence proxies may cut. */
export interface SseTimings {
  /** A write the client does not take this long cuts the stream. */
  slowClientMs: number;
  /** After this long without a write, a comment line goes out (0: never). */
  sseKeepAliveMs: number;
}

/**
 * An SSE comment: clients skip it (the spec's `:` lines), while proxies that cut a response
 * silent for a while (nginx's 60 s read timeout, Cloudflare's 100 s) see bytes flowing while a
 * long prompt is evaluated or a choice waits for a slot.
 */
export const SSE_KEEP_ALIVE_COMMENT = ': keep-alive\n\n';

/**
 * A response body fed by `produce`, ending with `SSE_END_COMMENT` when `produce` returns. A
 * write the client does not take within `slowClientMs` (it stopped reading) cuts the stream and
 * calls `onSlowClient` (which cancels the job), so a stalled client holds nothing. Silences of
 * `sseKeepAliveMs` get a keep-alive comment, written (and watched) like any event.
 */
export function sseBody(timings: SseTimings, onSlowClient: () => void, produce: (write: (text: string) => Promise<void>) => Promise<void>): ReadableStream<Uint8Array> {
  const { slowClientMs, sseKeepAliveMs } = timings;
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  let lastWriteAt = Date.now();
  let writesInFlight = 0;
  // Set once (a stalled client, or one gone: its cancel may give no reason), then every write throws it.
  let cut: { error: unknown } | null = null;
  /** Read through a call: a write's await may have seen another write set it. */
  const cutSoFar = (): { error: unknown } | null => cut;
  const write = async (text: string) => {
    if (cut) throw cut.error;
    writesInFlight += 1; // no keep-alive while a write is under way
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new SlowClientError(slowClientMs)), slowClientMs); });
    try {
      await Promise.race([writer.write(encoder.encode(text)), stalled]);
    } catch (error) {
      const earlier = cutSoFar();
      if (earlier) throw earlier.error;
      cut = { error };
      if (error instanceof SlowClientError) {
        onSlowClient();
        await writer.abort(error).catch(() => {});
      }
      throw error; // or the client went away: the body was cancelled
    } finally {
      clearTimeout(timer);
      writesInFlight -= 1;
      lastWriteAt = Date.now(); // a silence counts from the end of the last write
    }
  };
  // Checked at a fraction of the interval, so a silence gets its comment within ~1.25 intervals.
  const keepAlive = sseKeepAliveMs > 0
    ? setInterval(() => {
      if (cut || writesInFlight > 0 || Date.now() - lastWriteAt < sseKeepAliveMs) return;
      write(SSE_KEEP_ALIVE_COMMENT).catch(() => { /* the cut is produce's to see at its next write */ });
    }, Math.max(1, Math.floor(sseKeepAliveMs / 4)))
    : undefined;
  const stopKeepAlive = () => clearInterval(keepAlive);
  // Ended on purpose (an answer, or an error event): say so, so the edge can tell it from a cut.
  void produce(write)
    .then(() => { stopKeepAlive(); return write(SSE_END_COMMENT); })
    .catch(() => {})
    .finally(() => {
      stopKeepAlive();
      writer.close().catch(() => {});
    });
  return readable;
}
