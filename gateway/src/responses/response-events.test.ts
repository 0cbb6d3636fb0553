/**
 * Sequence numbers of Responses events depend on the text, not on how it arrived: readers that
 * got the same answer in different chunks agree on every number, and resuming after any number
 * one of them saw gives the rest of the text exactly once.
 */
import fc from 'fast-check';
import { answerOf, mergeDeltaEvents, responseObject, viewOf, WIRE_VERSION, type ResponseRecord, type StreamEvent, type TokenLogprob } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { eventAfter, foldResponse, ResponseEventSequence, type ResponseStreamEvent } from './response-events.js';

const record: ResponseRecord = {
  id: 'resp_00000000000000000000000000000000', tenant: 't', status: 'in_progress', model: 'm', createdAtMs: 0, background: true,
  instructions: null, previousResponseId: null, conversationId: null, metadata: {}, temperature: 0, topP: 1, maxOutputTokens: null, topLogprobs: null,
  textFormat: { type: 'text' }, tools: [], toolChoice: 'none', parallelToolCalls: true,
  input: [], history: [], relayGroup: 'g', deadlineAtMs: 0, outcome: null,
};

function eventsOf(chunks: string[]): ResponseStreamEvent[] {
  const sequence = new ResponseEventSequence(viewOf(record));
  const text = chunks.join('');
  return [
    ...sequence.opening('queued'),
    ...chunks.flatMap((chunk) => sequence.deltas(chunk)),
    ...sequence.closing({ status: 'completed', outputText: text, usage: null, error: null, incompleteReason: null, completedAtMs: 0 }),
  ];
}

/** Split `text` at the given cut points. */
const chunked = (text: string, cuts: number[]) => {
  const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b).filter((point) => point > 0 && point < text.length);
  return [0, ...points, text.length].slice(0, -1).map((start, index, starts) => text.slice(start, starts[index + 1] ?? text.length));
};

describe('response event numbers', () => {
  it('are increasing and the same for every chunking; resuming after any seen number gives the rest exactly once', () => {
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (text, cutsA, cutsB) => {
      const first = eventsOf(chunked(text, cutsA));
      const second = eventsOf(chunked(text, cutsB));
      const numbers = first.map((event) => event.sequence_number);
      expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
      expect(new Set(numbers).size).toBe(numbers.length);
      const closingOf = (events: ResponseStreamEvent[]) => events.filter((event) => event.type !== 'response.output_text.delta').map((event) => [event.type, event.sequence_number]);
      expect(closingOf(first)).toEqual(closingOf(second));
      // A reader of the first chunking drops after any event; a resumed reader of the second continues.
      for (const seen of numbers) {
        const before = first.filter((event) => event.sequence_number <= seen && event.type === 'response.output_text.delta').map((event) => event.delta as string).join('');
        const after = second.map((event) => eventAfter(event, seen)).filter((event) => event?.type === 'response.output_text.delta').map((event) => event!.delta as string).join('');
        expect(before + after).toBe(text);
      }
    }));
  });
});

describe('response events of one token stream', () => {
  /** A reader's events for `entries` (the stream's delta entries) read in groups of the given sizes, merged as the relay merges them. */
  function readInGroups(entries: string[], groupSizes: number[]): ResponseStreamEvent[] {
    const sequence = new ResponseEventSequence(viewOf(record));
    const events = sequence.opening('queued');
    for (let at = 0, index = 0; at < entries.length; index++) {
      const group = entries.slice(at, at + Math.max(1, groupSizes[index % Math.max(1, groupSizes.length)] ?? 1));
      at += group.length;
      events.push(...sequence.deltas(group.join(''), group.filter((entry) => entry !== '').map((entry) => entry.length)));
    }
    return events;
  }

  it('are the same for every reader however its reads merged the entries, and for a replay of the stored answer: a client that drops what it saw from a full replay gets the rest exactly once', () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 6 }), (entries, groupsA, groupsB) => {
      const live = readInGroups(entries, groupsA);
      const other = readInGroups(entries, groupsB);
      expect(other).toEqual(live);
      // The stored answer keeps the delta lengths the fold sent: its replay is the same events too.
      const folding = new ResponseEventSequence(viewOf(record));
      folding.deltas(entries.join(''), entries.filter((entry) => entry !== '').map((entry) => entry.length));
      const replay = new ResponseEventSequence(viewOf(record));
      expect([...replay.opening('queued'), ...replay.deltas(entries.join(''), folding.deltaLengths)]).toEqual(live);
      for (const seen of live.map((event) => event.sequence_number)) {
        const before = live.filter((event) => event.sequence_number <= seen && event.type === 'response.output_text.delta').map((event) => event.delta as string).join('');
        const after = other.filter((event) => event.sequence_number > seen && event.type === 'response.output_text.delta').map((event) => event.delta as string).join('');
        expect(before + after).toBe(entries.join(''));
      }
    }));
  });
});

describe('log probabilities on response events', () => {
  const v = WIRE_VERSION;
  /** Token `id`'s entry (named by its place in the answer). */
  const entry = (id: number): TokenLogprob => ({ token: `t${id}`, logprob: -id, bytes: [], top_logprobs: [] });

  /** What a reader sends for the stream's `entries` (text, tokens), read in groups of the given sizes and merged as the relay merges them. */
  async function foldEntries(entries: Array<{ text: string; tokens: number }>, groupSizes: number[]) {
    let id = 0;
    const deltas: StreamEvent[] = entries.map(({ text, tokens }) => ({ v, type: 'token-delta', attempt: 1, text, tokens, logprobs: Array.from({ length: tokens }, () => entry(id++)) }));
    const read: StreamEvent[] = [{ v, type: 'generation-start', attempt: 1, nodeId: 'n', promptTokens: 1, cachedTokens: 0, resume: 'replay' }];
    for (let at = 0, index = 0; at < deltas.length; index++) {
      const size = Math.max(1, groupSizes[index % Math.max(1, groupSizes.length)] ?? 1);
      read.push(...mergeDeltaEvents(deltas.slice(at, at + size)));
      at += size;
    }
    read.push({ v, type: 'generation-end', attempt: 1, finishReason: 'stop', promptTokens: 1, completionTokens: id, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 1 });
    const pieces = answerOf((async function* () { yield* read; })(), () => true)[Symbol.asyncIterator]();
    const emitted: ResponseStreamEvent[] = [];
    const { outcome } = await foldResponse(viewOf(record), 'queued', async () => (await pieces.next()).value!, async (events) => { emitted.push(...events); }, () => 0);
    return { emitted, outcome, all: Array.from({ length: id }, (_, at) => entry(at)) };
  }

  it('go with the delta of their text (a text-less token\'s with the next text), the same for every reader and for a replay of the stored answer', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ text: fc.string({ maxLength: 3 }), tokens: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 10 }),
      fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 5 }),
      async (entries, groupsA, groupsB) => {
        const live = await foldEntries(entries, groupsA);
        const other = await foldEntries(entries, groupsB);
        expect(other.emitted).toEqual(live.emitted);
        // Expected: each text's delta holds the entries of the text-less entries before it and its own.
        const expected: TokenLogprob[][] = [];
        let waiting: TokenLogprob[] = [];
        let id = 0;
        for (const { text, tokens } of entries) {
          waiting.push(...Array.from({ length: tokens }, () => entry(id++)));
          if (text !== '') {
            expected.push(waiting);
            waiting = [];
          }
        }
        const deltas = live.emitted.filter((event) => event.type === 'response.output_text.delta');
        expect(deltas.map((event) => event.logprobs)).toEqual(expected);
        // The whole text's are all of them, the tokens after the last text included.
        const done = live.emitted.find((event) => event.type === 'response.output_text.done');
        if (done) expect(done.logprobs).toEqual(live.all);
        expect(live.outcome.logprobs ?? []).toEqual(live.all);
        // A replay of the stored answer sends the same events.
        const replay = new ResponseEventSequence(viewOf(record));
        const { outcome } = live;
        expect([...replay.opening('queued'), ...replay.deltas(outcome.outputText, outcome.deltaLengths, outcome.logprobs, outcome.deltaLogprobCounts), ...replay.closing(outcome)]).toEqual(live.emitted);
      },
    ));
  });
});

describe('the response object of an ended response', () => {
  it('labels a failed or cancelled response\'s partial answer incomplete, a completed one completed', () => {
    for (const [status, itemStatus] of [['completed', 'completed'], ['incomplete', 'incomplete'], ['failed', 'incomplete'], ['cancelled', 'incomplete']] as const) {
      const outcome = { status, outputText: 'partial', usage: null, error: status === 'failed' ? { code: 'node_failed', message: 'x' } : null, incompleteReason: null, completedAtMs: 0 };
      const object = responseObject({ ...viewOf(record), status, outcome });
      expect(object.output.map((item) => item.status), status).toEqual([itemStatus]);
    }
  });
});

describe('response events of an answer that may call tools', () => {
  const withTools: ResponseRecord = { ...record, tools: [{ name: 'f' }], toolChoice: 'auto' };
  const call = (index: number) => ({ id: `call_${index}`, name: 'f', arguments: `{"n": ${index}}` });

  function eventsWithCalls(chunks: string[], calls: number): ResponseStreamEvent[] {
    const sequence = new ResponseEventSequence(viewOf(withTools));
    const toolCalls = Array.from({ length: calls }, (_, index) => call(index));
    return [
      ...sequence.opening('queued'),
      ...chunks.flatMap((chunk) => sequence.deltas(chunk)),
      ...sequence.closing({ status: 'completed', outputText: chunks.join(''), usage: null, error: null, incompleteReason: null, completedAtMs: 0, ...(calls > 0 ? { toolCalls } : {}) }),
    ];
  }

  it('open the message with the first text only, number every event in order, and add each call as an item after it', () => {
    fc.assert(fc.property(fc.string({ maxLength: 20 }), fc.array(fc.nat(), { maxLength: 4 }), fc.integer({ min: 0, max: 2 }), (text, cuts, calls) => {
      const events = eventsWithCalls(text === '' ? [] : chunked(text, cuts), calls);
      const numbers = events.map((event) => event.sequence_number);
      expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
      expect(new Set(numbers).size).toBe(numbers.length);
      const types = events.map((event) => event.type);
      const message = text !== '' || calls === 0;
      expect(types.filter((type) => type === 'response.content_part.added')).toHaveLength(message ? 1 : 0);
      expect(events.filter((event) => event.type === 'response.output_item.added').map((event) => (event.item as { type: string }).type))
        .toEqual([...(message ? ['message'] : []), ...Array.from({ length: calls }, () => 'function_call')]);
      expect(events.filter((event) => event.type === 'response.function_call_arguments.done').map((event) => [event.output_index, event.arguments]))
        .toEqual(Array.from({ length: calls }, (_, index) => [(message ? 1 : 0) + index, call(index).arguments]));
      if (text !== '') expect(types.indexOf('response.content_part.added')).toBeLessThan(types.indexOf('response.output_text.delta'));
      // The final object lists the same items.
      const final = events.at(-1)!.response as { output: Array<{ type: string }> };
      expect(final.output.map((item) => item.type)).toEqual([...(message ? ['message'] : []), ...Array.from({ length: calls }, () => 'function_call')]);
      for (const seen of numbers) {
        const before = events.filter((event) => event.sequence_number <= seen && event.type === 'response.output_text.delta').map((event) => event.delta as string).join('');
        const after = events.map((event) => eventAfter(event, seen)).filter((event) => event?.type === 'response.output_text.delta').map((event) => event!.delta as string).join('');
        expect(before + after).toBe(text);
      }
    }));
  });
});
