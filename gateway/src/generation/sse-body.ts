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

/**
 * A response body fed by `produce`, ending with `SSE_END_COMMENT` when `produce` returns. A
 * write the client does not take within `slowClientMs` (it stopped reading) cuts the stream and
 * calls `onSlowClient` (which cancels the job), so a stalled client holds nothing.
 */
export function sseBody(slowClientMs: number, onSlowClient: () => void, produce: (write: (text: string) => Promise<void>) => Promise<void>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const write = async (text: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new SlowClientError(slowClientMs)), slowClientMs); });
    try {
      await Promise.race([writer.write(encoder.encode(text)), stalled]);
    } catch (error) {
      if (error instanceof SlowClientError) {
        onSlowClient();
        await writer.abort(error).catch(() => {});
      }
      throw error; // or the client went away: the body was cancelled
    } finally {
      clearTimeout(timer);
    }
  };
  // Ended on purpose (an answer, or an error event): say so, so the edge can tell it from a cut.
  void produce(write).then(() => write(SSE_END_COMMENT)).catch(() => {}).finally(() => { writer.close().catch(() => {}); });
  return readable;
}
