/**
 * A request's choices, over scripted token streams (the script is the point: one choice failing
 * while its siblings run, or refused after they started, which a live stack does not do on
 * demand). Every job begun is stopped on every way out.
 */
import { RateLimitError, WIRE_VERSION, type GenerationJobDraft, type StreamEvent, type ValidatedGenerationRequest, type WireError } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { beginChoices, choiceRequestId, type ChoicePiece } from './begin-choices.js';
import type { GenerationDeps } from './begin-generation.js';

const v = WIRE_VERSION;
const start: StreamEvent = { v, type: 'generation-start', attempt: 1, nodeId: 'node-1', promptTokens: 3, cachedTokens: 0, resume: 'replay' };
const text = (value: string): StreamEvent => ({ v, type: 'token-delta', attempt: 1, text: value, tokens: 1 });
const end: StreamEvent = { v, type: 'generation-end', attempt: 1, finishReason: 'stop', promptTokens: 3, completionTokens: 2, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 2 };
const failure = (error: WireError): StreamEvent => ({ v, type: 'generation-error', attempt: 1, error });
const refusal: WireError = { message: 'refused', type: 'invalid_request_error', status: 400, retryable: false, code: 'invalid_value', param: null };

/**
 * A job's script: its events, with a pause (ms) before each; an unfinished one waits for its
 * cancel. `queue-full`: refused before it is queued.
 */
type Script = Array<[number, StreamEvent]> | 'queue-full';

interface Job { draft: GenerationJobDraft; cancelled: boolean; done: boolean }

/**
 * `shared`: a chat request whose messages a prefill job evaluates first (`prefill` its script,
 * `waiting` what the queue holds); `stop`: the gateway's stop, as the test drives it.
 */
function depsOf(scripts: Record<number, Script>, shared?: { prefill: Script; waiting?: number; stop?: { draining: boolean; ended: AbortSignal } }) {
  const jobs: Job[] = [];
  const request: ValidatedGenerationRequest = {
    model: 'm', input: shared ? { kind: 'chat', messages: [{ role: 'user', content: 'a long question' }] } : { kind: 'completion', prompt: 'p' }, params: { maxTokens: 8, temperature: 1, topP: 1, topK: 0, seed: 7, stop: [] },
    stream: true, includeUsage: false, maxTokensRequested: true, endpoint: shared ? 'chat' : 'completion', sessionId: null, choices: Object.keys(scripts).length,
  };
  const node = { nodeId: 'node-1', models: [{ id: 'm', contextSize: 64 }] };
  const deps = {
    region: { name: 'local', liveNodes: async () => [node], waitingJobs: async () => shared?.waiting ?? 0 },
    config: { requestDeadlineMs: 60_000, queueMaxWaiting: 100, sharedPrefillChars: shared ? 1 : 0 },
    stop: shared?.stop,
    metrics: { observeTimeToFirstToken: () => {}, countTokens: () => {} },
    clock: { nowMs: () => Date.now() },
    generation: {
      async *generate(draft: GenerationJobDraft, signal: AbortSignal, onQueued?: (relayGroup: string) => void): AsyncGenerator<StreamEvent> {
        const script = draft.requestId.endsWith('-prefill') ? shared!.prefill : scripts[Number(/-(\d+)$/.exec(draft.requestId)?.[1] ?? 0)]!;
        if (script === 'queue-full') throw new RateLimitError('the queue is full', 1);
        const job: Job = { draft, cancelled: false, done: false };
        jobs.push(job);
        onQueued?.('group');
        const gone = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        try {
          for (const [pauseMs, event] of script) {
            await Promise.race([new Promise((resolve) => setTimeout(resolve, pauseMs)), gone]);
            if (signal.aborted) { job.cancelled = true; return; }
            yield event;
          }
          await gone; // no end in the script: it runs until cancelled
          job.cancelled = true;
        } finally {
          job.done = true;
        }
      },
    },
  };
  const log = { set: () => {} };
  const begin = () => beginChoices(deps as unknown as GenerationDeps, request, { tenant: 't', requestId: 'cmpl-x', log: log as never, arrivedMs: Date.now(), signal: new AbortController().signal, canRestart: () => true });
  return { jobs, begin };
}

async function drain(pieces: AsyncIterable<ChoicePiece>): Promise<string[]> {
  const seen: string[] = [];
  for await (const { index, piece } of pieces) seen.push(`${index}:${piece.kind === 'text' ? piece.text : piece.kind}`);
  return seen;
}

describe('a request\'s choices', () => {
  it('are one job each (the first with the request\'s id, the others with seed + index) and merge their pieces as they come', async () => {
    const { jobs, begin } = depsOf({
      0: [[0, start], [30, text('a')], [0, end]],
      1: [[0, start], [0, text('b')], [60, end]],
    });
    const choices = await begin();
    const seen = await drain(choices.pieces);
    expect(seen).toEqual(['1:b', '0:a', '0:end', '1:end']);
    expect(jobs.map((job) => [job.draft.requestId, job.draft.params.seed])).toEqual([['cmpl-x', 7], [choiceRequestId('cmpl-x', 1), 8]]);
    await choices.finish();
    expect(jobs.every((job) => job.done && !job.cancelled)).toBe(true);
  });

  it('do not wait for a choice that waits for its slot: the others\' pieces come first, its own once it started', async () => {
    const { begin } = depsOf({
      0: [[0, start], [0, text('a')], [0, text('b')], [0, end]],
      1: [[80, start], [0, text('c')], [0, end]],
    });
    const choices = await begin();
    const first = await choices.pieces.next();
    expect(first.value).toMatchObject({ index: 0, piece: { kind: 'text', text: 'a' } });
    expect(choices.generations[1]).toBeUndefined();
    expect(await drain(choices.pieces)).toEqual(['0:b', '0:end', '1:c', '1:end']);
    expect(choices.generations[1]).toBeDefined();
  });

  it('fail together: a choice failing mid-answer cancels its siblings, and the request gets that error', async () => {
    const { jobs, begin } = depsOf({
      0: [[0, start], [0, text('a')]],
      1: [[0, start], [20, failure({ ...refusal, type: 'server_error', status: 500, retryable: true, code: 'engine_error' })]],
      2: [[0, start]],
    });
    const choices = await begin();
    await expect(drain(choices.pieces)).rejects.toMatchObject({ code: 'engine_error' });
    await choices.finish();
    expect(jobs.map((job) => [job.done, job.cancelled])).toEqual([[true, true], [true, false], [true, true]]);
  });

  it('refused by one choice before it was queued: the refusal is the request\'s, and the jobs begun are stopped', async () => {
    const { jobs, begin } = depsOf({
      0: [[0, start], [0, text('a')]],
      1: [[0, start]],
      2: 'queue-full',
    });
    await expect(begin()).rejects.toMatchObject({ status: 429, message: 'the queue is full' });
    expect(jobs.map((job) => [job.done, job.cancelled])).toEqual([[true, true], [true, true]]);
  });

  it('begin once every choice is queued and one started; a choice that waits for a slot and is then refused fails the answer and its siblings', async () => {
    const { jobs, begin } = depsOf({
      0: [[0, start], [0, text('a')]],
      1: [[50, failure(refusal)]],
    });
    const choices = await begin();
    expect([0, 1].map((index) => choices.generations[index] !== undefined)).toEqual([true, false]);
    const seen: string[] = [];
    await expect((async () => {
      for await (const { index, piece } of choices.pieces) seen.push(`${index}:${piece.kind}`);
    })()).rejects.toMatchObject({ status: 400, message: 'refused' });
    await choices.finish();
    expect(seen).toEqual(['0:text']);
    expect(jobs.map((job) => [job.done, job.cancelled])).toEqual([[true, true], [true, false]]);
  });

  describe('with long messages evaluated once for all', () => {
    const prefilled: Script = [[0, start], [20, { ...end, completionTokens: 0 }]];
    const answers = { 0: [[0, start], [0, text('a')], [0, end]], 1: [[0, start], [0, text('b')], [0, end]] } satisfies Record<number, Script>;
    const marks = (jobs: Job[]) => jobs.map((job) => [job.draft.requestId, job.draft.prefillOnly ?? false, job.draft.sharedPrefill ?? false]);

    it('run a prefill job first, then the choices, marked to look for its state', async () => {
      const { jobs, begin } = depsOf(answers, { prefill: prefilled });
      const choices = await begin();
      expect(await drain(choices.pieces)).toHaveLength(4);
      await choices.finish();
      expect(marks(jobs)).toEqual([['cmpl-x-prefill', true, false], ['cmpl-x', false, true], ['cmpl-x-1', false, true]]);
    });

    it('go on without it when it fails, and do not run it when the queue holds jobs (the choices would wait twice)', async () => {
      const failed = depsOf(answers, { prefill: [[0, failure({ ...refusal, type: 'server_error', status: 500, retryable: true, code: 'engine_error' })]] });
      const afterFailure = await failed.begin();
      await drain(afterFailure.pieces);
      await afterFailure.finish();
      expect(marks(failed.jobs)).toEqual([['cmpl-x-prefill', true, false], ['cmpl-x', false, false], ['cmpl-x-1', false, false]]);
      const busy = depsOf(answers, { prefill: prefilled, waiting: 1 });
      const whileBusy = await busy.begin();
      await drain(whileBusy.pieces);
      await whileBusy.finish();
      expect(marks(busy.jobs)).toEqual([['cmpl-x', false, false], ['cmpl-x-1', false, false]]);
    });

    it('are not refused by a drain that began while the prefill ran: the request was accepted', async () => {
      const stop = { draining: false, ended: new AbortController().signal };
      const { jobs, begin } = depsOf(answers, { prefill: prefilled, stop });
      setTimeout(() => { stop.draining = true; }, 5);
      const choices = await begin();
      expect(await drain(choices.pieces)).toHaveLength(4);
      await choices.finish();
      expect(jobs).toHaveLength(3);
    });
  });
});
