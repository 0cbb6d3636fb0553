/**
 * The node watch with a scripted event source and registry (the fakes are the point): a dead
 * attempt's node yields one `generation-retry` for that attempt; a live node, an ended attempt
 * or a later attempt's node yields none.
 */
import { WIRE_VERSION, type StreamEvent } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { withNodeWatch } from './node-watch.js';

const start = (attempt: number, nodeId: string): StreamEvent => ({ v: WIRE_VERSION, type: 'generation-start', attempt, nodeId, promptTokens: 1, cachedTokens: 0, resume: 'replay' });
const delta = (attempt: number): StreamEvent => ({ v: WIRE_VERSION, type: 'token-delta', attempt, text: 'x', tokens: 1 });
const end = (attempt: number): StreamEvent => ({ v: WIRE_VERSION, type: 'generation-end', attempt, finishReason: 'length', promptTokens: 1, completionTokens: 1, cachedTokens: 0, timeToFirstTokenMs: 0, totalMs: 0 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Events with pauses between them: a number of milliseconds, or a promise to wait for. */
async function* scripted(script: Array<StreamEvent | number | Promise<unknown>>): AsyncGenerator<StreamEvent> {
  for (const step of script) {
    if (typeof step === 'number') await sleep(step);
    else if (step instanceof Promise) await step;
    else yield step;
  }
}

/** What the watch passes on, read by a consumer that takes `readerMs` over each event. */
async function collect(source: AsyncIterable<StreamEvent>, live: (nodeId: string) => boolean, readerMs = 0) {
  const seen: string[] = [];
  for await (const event of withNodeWatch(source, async (nodeId) => live(nodeId), 5)) {
    seen.push(`${event.type}:${event.attempt}`);
    if (readerMs > 0) await sleep(readerMs);
  }
  return seen;
}

describe('node watch', () => {
  it('reports the attempt of a node that left the registry, once, then passes the retried attempt through', async () => {
    // Node a dies after its first delta; the retried attempt starts on b only after the watch looked.
    let aAlive = true;
    let sawDead!: () => void;
    const watchLooked = new Promise<void>((resolve) => { sawDead = resolve; });
    const source = scripted([start(1, 'a'), delta(1), watchLooked, 20, start(2, 'b'), delta(2), end(2)]);
    setTimeout(() => { aAlive = false; }, 5);
    const live = (nodeId: string) => {
      if (nodeId === 'a' && !aAlive) sawDead();
      return nodeId === 'b' || aAlive;
    };
    expect(await collect(source, live)).toEqual(['generation-start:1', 'token-delta:1', 'generation-retry:1', 'generation-start:2', 'token-delta:2', 'generation-end:2']);
  });

  it('still reports a dead node to a reader that was busy with the last event when it was seen gone', async () => {
    let alive = true;
    let sawDead!: () => void;
    const watchLooked = new Promise<void>((resolve) => { sawDead = resolve; });
    const source = scripted([start(1, 'a'), delta(1), watchLooked, 200, end(1)]);
    setTimeout(() => { alive = false; }, 5);
    const live = () => {
      if (!alive) sawDead();
      return alive;
    };
    // The reader spends 60 ms on each event: the watch sees the node gone while it is busy.
    expect(await collect(source, live, 60)).toEqual(['generation-start:1', 'token-delta:1', 'generation-retry:1', 'generation-end:1']);
  });

  it('does not count one missed look as gone (a late heartbeat)', async () => {
    let looks = 0;
    // Missing from every other look only: never two in a row.
    const live = () => (looks++ % 2 === 0);
    expect(await collect(scripted([start(1, 'a'), 60, end(1)]), live)).toEqual(['generation-start:1', 'generation-end:1']);
  });

  it('adds nothing while the node is live, or after the attempt ended', async () => {
    expect(await collect(scripted([start(1, 'a'), 20, delta(1), end(1), 20]), () => true)).toEqual(['generation-start:1', 'token-delta:1', 'generation-end:1']);
    let alive = true;
    const afterEnd = scripted([start(1, 'a'), end(1), 20]);
    setTimeout(() => { alive = false; }, 1);
    expect(await collect(afterEnd, () => alive)).toEqual(['generation-start:1', 'generation-end:1']);
  });
  it('leaves no unheard failure behind when its reader stops while the source still reads ahead', async () => {
    // A follower past its deadline throws after the reader is done with the stream: nobody is
    // there to hear it, and an unhandled rejection would bring the whole gateway down.
    async function* failingLater(): AsyncGenerator<StreamEvent> {
      yield start(1, 'a');
      await sleep(20);
      throw new Error('past its deadline');
    }
    for await (const event of withNodeWatch(failingLater(), async () => true, 5)) {
      expect(event.type).toBe('generation-start');
      break;
    }
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    try {
      await sleep(60);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
