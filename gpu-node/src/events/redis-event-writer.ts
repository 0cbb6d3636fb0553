/**
 * Writes token events into each request's Redis Stream. Deltas are coalesced: everything queued
 * until the event loop turns (one decode step for every slot) goes out as one pipeline, so
 * eight streaming slots cost one round trip per step, not eight.
 */
import { encodeStreamEvent, type RedisKeys, type StreamEvent, type WireError } from '@bamba/shared';
import type { Redis } from 'ioredis';
import type { RequestEvents } from './request-events.js';

/** Streams are short-lived: trimmed while written, expired soon after the request ends. */
const STREAM_MAX_LENGTH = 10_000;
const STREAM_TTL_AFTER_END_SECONDS = 300;

interface PendingDelta { text: string; tokens: number }

export class RedisEventWriter {
  private pending = new Map<string, { attempt: number; delta: PendingDelta; extra: StreamEvent[] }>();
  private flushScheduled = false;

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly nodeId: string) {}

  forRequest(requestId: string, attempt: number): RequestEvents {
    const stream = this.keys.requestStream(requestId);
    const entry = () => {
      let found = this.pending.get(stream);
      if (!found) {
        found = { attempt, delta: { text: '', tokens: 0 }, extra: [] };
        this.pending.set(stream, found);
      }
      return found;
    };
    const finish = async (event: StreamEvent) => {
      entry().extra.push(event);
      await this.flush();
      await this.redis.expire(stream, STREAM_TTL_AFTER_END_SECONDS);
    };
    return {
      start: (promptTokens, cachedTokens, resume) => {
        // A retried attempt starts its own event run; readers discard earlier attempts' deltas.
        entry().extra.push({ type: 'generation-start', attempt, nodeId: this.nodeId, promptTokens, cachedTokens, resume });
        this.scheduleFlush();
      },
      delta: (text, tokens) => {
        const pending = entry();
        if (pending.extra.length > 0 && pending.extra.at(-1)!.type !== 'generation-start') throw new Error('bug: delta after end');
        pending.delta.text += text;
        pending.delta.tokens += tokens;
        this.scheduleFlush();
      },
      end: (summary) => finish({ type: 'generation-end', attempt, ...summary }),
      error: (error: WireError) => finish({ type: 'generation-error', attempt, error }),
    };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => { void this.flush().catch(() => { /* reported by the next awaited flush */ }); });
  }

  /** Write everything pending in one pipeline. Order per stream: start, deltas, end/error. */
  async flush(): Promise<void> {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const pipeline = this.redis.pipeline();
    for (const [stream, { attempt, delta, extra }] of batch) {
      const starts = extra.filter((event) => event.type === 'generation-start');
      const finals = extra.filter((event) => event.type !== 'generation-start');
      for (const event of starts) pipeline.xadd(stream, 'MAXLEN', '~', STREAM_MAX_LENGTH, '*', ...encodeStreamEvent(event));
      if (delta.tokens > 0 || delta.text !== '') {
        pipeline.xadd(stream, 'MAXLEN', '~', STREAM_MAX_LENGTH, '*', ...encodeStreamEvent({ type: 'token-delta', attempt, text: delta.text, tokens: delta.tokens }));
      }
      for (const event of finals) pipeline.xadd(stream, 'MAXLEN', '~', STREAM_MAX_LENGTH, '*', ...encodeStreamEvent(event));
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }
}
