/**
 * Settling and stopping a stored response from its token stream, with a scripted stream (the
 * script is the point: a retried attempt after text, which a live stack makes only by killing a
 * node at the right moment). A reader whose events go nowhere follows the retry: the answer is
 * the retried attempt's alone.
 */
import { DeadlineExceededError, isFinalEvent, ServiceUnavailableError, WIRE_VERSION, type ResponseOutcome, type ResponseRecord, type StreamEvent, type WireError } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { settleIfStale, stopStored } from './stream-stored.js';

const v = WIRE_VERSION;
const start = (attempt: number): StreamEvent => ({ v, type: 'generation-start', attempt, nodeId: `node-${attempt}`, promptTokens: 3, cachedTokens: 0, resume: 'replay' });
const text = (attempt: number, value: string): StreamEvent => ({ v, type: 'token-delta', attempt, text: value, tokens: 1 });
const end = (attempt: number): StreamEvent => ({ v, type: 'generation-end', attempt, finishReason: 'stop', promptTokens: 3, completionTokens: 1, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 2 });

const record: ResponseRecord = {
  id: 'resp_00000000000000000000000000000000', tenant: 't', status: 'in_progress', model: 'm', createdAtMs: 0, background: true,
  instructions: null, previousResponseId: null, conversationId: null, metadata: {}, temperature: 0, topP: 1, maxOutputTokens: null, topLogprobs: null,
  textFormat: { type: 'text' }, tools: [], toolChoice: 'none', parallelToolCalls: true,
  input: [], history: [], relayGroup: 'g', deadlineAtMs: 0, outcome: null,
};

/** Deps around a scripted token stream that holds `events` (and nothing more arrives). */
function depsOf(events: StreamEvent[], options: { nowMs?: number; readerGone?: boolean; gatewayStopped?: boolean } = {}) {
  const finished: ResponseOutcome[] = [];
  const cancelled: string[] = [];
  const deps = {
    clock: { nowMs: () => options.nowMs ?? 1_000_000 },
    generation: {
      // As the region's follower reads a stream with nothing more to come: its events, then past its deadline.
      follow: async function* () {
        yield* events;
        if (!events.some(isFinalEvent)) {
          throw new DeadlineExceededError('past its deadline');
        }
      },
      cancel: async (id: string) => { cancelled.push(id); },
      // As the region marks a stream: the event goes after what it holds.
      markCancelled: async (_group: string, _id: string, error?: WireError) => { events.push({ v, type: 'generation-cancelled', ...(error ? { error } : {}) }); },
      readerGone: async () => options.readerGone ?? false,
    },
    responses: {
      finish: async (_id: string, outcome: ResponseOutcome) => { finished.push(outcome); return true; },
      get: async () => null,
    },
    running: new Map<string, AbortController>(),
    stop: options.gatewayStopped ? { ended: AbortSignal.abort() } : undefined,
  };
  return { deps: deps as unknown as Parameters<typeof stopStored>[0], finished, cancelled };
}

describe('a stored response read from its token stream', () => {
  it('settles a response whose retried attempt completed with that attempt\'s answer alone', async () => {
    const { deps, finished } = depsOf([start(1), text(1, 'dead '), start(2), text(2, 'alive'), end(2)]);
    await settleIfStale(deps, record);
    expect(finished).toMatchObject([{ status: 'completed', outputText: 'alive' }]);
  });

  it('stops a running response as cancelled with the text written before its mark, and one that ended keeps its outcome', async () => {
    const running = depsOf([start(1), text(1, 'dead '), start(2), text(2, 'so far')]);
    await stopStored(running.deps, record);
    // Its usage: the retried attempt's prompt and the tokens behind its text.
    expect(running.finished).toMatchObject([{ status: 'cancelled', outputText: 'so far', usage: { inputTokens: 3, cachedTokens: 0, outputTokens: 1 } }]);
    expect(running.cancelled).toEqual([record.id]);

    const ended = depsOf([start(1), text(1, 'done'), end(1)]);
    await stopStored(ended.deps, record);
    expect(ended.finished).toMatchObject([{ status: 'completed', outputText: 'done' }]);
  });

  it('records a cancel where the stream stands even while its gateway\'s drain ends, and a stop for a reason as that failure', async () => {
    const draining = depsOf([start(1), text(1, 'so far')], { gatewayStopped: true });
    await stopStored(draining.deps, record);
    expect(draining.finished).toMatchObject([{ status: 'cancelled', outputText: 'so far' }]);

    const stopping = depsOf([start(1), text(1, 'so far')], { gatewayStopped: true });
    await stopStored(stopping.deps, record, new ServiceUnavailableError('stopping', { code: 'gateway_stopping' }));
    expect(stopping.finished).toMatchObject([{ status: 'failed', outputText: 'so far', error: { code: 'gateway_stopping' } }]);
  });

  it('ends every reader at a cancellation mark: what the gpu-node wrote after it is nobody\'s answer', async () => {
    const marked = depsOf([start(1), text(1, 'before '), text(1, 'mark'), { v, type: 'generation-cancelled' }, text(1, ' after'), end(1)], { readerGone: true });
    await settleIfStale(marked.deps, record);
    expect(marked.finished).toMatchObject([{ status: 'cancelled', outputText: 'before mark', deltaLengths: [7, 4] }]);
  });

  it('before its deadline, settles a response only when its runner is gone and its stream ended', async () => {
    const early = { nowMs: record.deadlineAtMs - 1 };
    const runnerAlive = depsOf([start(1), text(1, 'done'), end(1)], { ...early, readerGone: false });
    await settleIfStale(runnerAlive.deps, record);
    expect(runnerAlive.finished).toEqual([]); // its runner records it
    const stillGenerating = depsOf([start(1), text(1, 'so far')], { ...early, readerGone: true });
    await settleIfStale(stillGenerating.deps, record);
    expect(stillGenerating.finished).toEqual([]); // still running on its node, without its gateway
    const endedAlone = depsOf([start(1), text(1, 'done'), end(1)], { ...early, readerGone: true });
    await settleIfStale(endedAlone.deps, record);
    expect(endedAlone.finished).toMatchObject([{ status: 'completed', outputText: 'done' }]);
  });
});
