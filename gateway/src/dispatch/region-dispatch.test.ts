/**
 * `generate` with a scripted relay and queue (the fakes are the point: the abort must land while
 * the job is being queued, which a live stack does not do on demand). A job whose reader is
 * gone by the time it is queued is cancelled at once, not left to run to its deadline.
 */
import type { GenerationJobDraft, StreamEvent } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { RegionDispatch } from './region-dispatch.js';

/** A relay subscription that yields nothing until it is closed. */
function silentSubscription() {
  let closed = false;
  let wake: (() => void) | null = null;
  return {
    group: 'g',
    get closed() {
      return closed;
    },
    close() {
      closed = true;
      wake?.();
    },
    fail() {
      this.close();
    },
    [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
      return {
        next: async () => {
          while (!closed) await new Promise<void>((resolve) => { wake = resolve; });
          return { value: undefined, done: true };
        },
        return: async () => ({ value: undefined, done: true }),
      };
    },
  };
}

describe('generate', () => {
  it('cancels a job whose reader went away while it was being queued', async () => {
    const subscription = silentSubscription();
    const reader = new AbortController();
    const cancelled: string[] = [];
    const producer = {
      submit: async () => reader.abort(), // the client hangs up while the job is queued
      cancel: async (requestId: string) => { cancelled.push(requestId); },
    };
    const relay = { subscribe: () => subscription };
    const dispatch = new RegionDispatch('local', {} as never, producer as never, relay as never, {} as never, {} as never, {} as never, {} as never);
    const draft = { requestId: 'chatcmpl-x', deadlineAtMs: Date.now() + 600_000 } as GenerationJobDraft;
    const events: StreamEvent[] = [];
    for await (const event of dispatch.generate(draft, reader.signal)) events.push(event);
    expect(events).toEqual([]);
    expect(subscription.closed).toBe(true);
    await dispatch.settleCancels();
    expect(cancelled).toEqual(['chatcmpl-x']);
  });
});
