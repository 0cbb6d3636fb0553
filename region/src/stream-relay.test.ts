/**
 * The multiplexed relay against a real redis-server: streams joining and leaving while a read
 * blocks, a reader connection killed mid-stream, a consumer that stops reading, malformed
 * events, and the connection count staying at the configured pool size.
 */
import { encodeStreamEvent, ServiceUnavailableError, SlowClientError, WireFormatError, type StreamEvent, type StreamEventBody } from '@bamba/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RegionRedis } from './connection.js';
import { regionKeys } from './keys.js';
import { absentRelayGroups } from './relay-presence.js';
import { StreamRelay, type RelaySubscription } from './stream-relay.js';
import { startTestRedis, type TestRedis } from './testing/local-redis.js';

let server: TestRedis;
let control: RegionRedis;
const keys = regionKeys('relay-test', 'local');
const relays: StreamRelay[] = [];

beforeAll(async () => {
  server = await startTestRedis('relay-test-control');
  control = server.redis;
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});
afterAll(async () => server?.stop());

function newRelay(options: ConstructorParameters<typeof StreamRelay>[3]): StreamRelay {
  const relay = new StreamRelay(server.target, keys, control, options);
  relays.push(relay);
  return relay;
}

const delta = (text: string, attempt = 1): StreamEventBody => ({ type: 'token-delta', attempt, text, tokens: text.length });
const start: StreamEventBody = { type: 'generation-start', attempt: 1, nodeId: 'n', promptTokens: 3, cachedTokens: 0, resume: 'replay' };

async function write(subscription: RelaySubscription, ...events: StreamEventBody[]): Promise<void> {
  const pipeline = control.pipeline();
  for (const event of events) pipeline.xadd(subscription.streamKey, '*', ...encodeStreamEvent(event));
  await pipeline.exec();
}

async function take(subscription: RelaySubscription, count: number): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  while (events.length < count) {
    const step = await subscription.next();
    if (step.done) break;
    events.push(step.value);
  }
  return events;
}

async function relayConnections(): Promise<number> {
  const list = (await control.call('CLIENT', 'LIST')) as string;
  return list.split('\n').filter((line) => / name=bamba:relay:/.test(line)).length;
}

describe('StreamRelay', () => {
  it('starts reading a stream that joins while the read blocks, and drops one that leaves', async () => {
    // A read blocks for a minute: only the wake-up can bring the new stream in before the test times out.
    const relay = newRelay({ connections: 1, blockMs: 60_000 });
    const first = relay.subscribe('req-first');
    await write(first, start);
    expect(await take(first, 1)).toMatchObject([{ type: 'generation-start' }]);
    const second = relay.subscribe('req-second'); // joins while the reader blocks on `first`
    await write(second, start, delta('hi'));
    expect((await take(second, 2)).map((event) => event.type)).toEqual(['generation-start', 'token-delta']);
    first.close(); // leaves
    await write(first, delta('lost'));
    await write(second, delta('more'));
    expect(await take(second, 1)).toMatchObject([{ type: 'token-delta', text: 'more' }]);
    expect(relay.openStreams).toBe(1);
  }, 10_000);

  it('merges consecutive deltas that arrive in one read into one event, keeping where each entry ended', async () => {
    const relay = newRelay({ connections: 1 });
    const subscription = relay.subscribe('req-merge');
    await write(subscription, start, delta('a'), delta(''), delta('bc'), delta('d'), delta('stale', 2));
    const events = await take(subscription, 3);
    expect(events[1]).toMatchObject({ type: 'token-delta', text: 'abcd', tokens: 4, entryLengths: [1, 2, 1] });
    expect(events[2]).toMatchObject({ type: 'token-delta', text: 'stale', attempt: 2 }); // another attempt is never merged in
  });

  it('fails the requests of a killed reader connection with a retryable error, then serves new ones', async () => {
    const relay = newRelay({ connections: 1, blockMs: 60_000 });
    const subscription = relay.subscribe('req-killed');
    await write(subscription, start);
    await take(subscription, 1);
    const list = (await control.call('CLIENT', 'LIST')) as string;
    const readerId = /id=(\d+) [^\n]* name=bamba:relay:/.exec(list)?.[1];
    expect(readerId).toBeDefined();
    await control.call('CLIENT', 'KILL', 'ID', readerId!);
    const failure = await subscription.next().then(() => null, (error: unknown) => error);
    expect(failure).toBeInstanceOf(ServiceUnavailableError);
    expect(failure).toMatchObject({ code: 'relay_lost', retryable: true });
    // The reader reconnects and serves a new request.
    const after = await (async () => {
      for (;;) {
        try {
          return relay.subscribe('req-after');
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
    await write(after, start, delta('ok'));
    expect((await take(after, 2)).map((event) => event.type)).toEqual(['generation-start', 'token-delta']);
  }, 15_000);

  it('cuts a consumer that stops reading, and the others keep getting every event', async () => {
    const relay = newRelay({ connections: 1, slowConsumerMs: 200 });
    let cut: Error | null = null;
    const stalled = relay.subscribe('req-stalled', (error) => { cut = error; });
    const reading = relay.subscribe('req-reading');
    const received: string[] = [];
    const readAll = (async () => {
      for (;;) {
        const [event] = await take(reading, 1);
        if (!event || event.type === 'generation-end') return;
        if (event.type === 'token-delta') received.push(event.text);
      }
    })();
    const sent: string[] = [];
    for (let index = 0; cut === null; index++) {
      sent.push(String(index % 10));
      await write(stalled, delta('x'));
      await write(reading, delta(sent.at(-1)!));
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (index > 1000) throw new Error('the stalled consumer was never cut');
    }
    expect(cut).toBeInstanceOf(SlowClientError);
    await write(reading, { type: 'generation-end', attempt: 1, finishReason: 'length', promptTokens: 3, completionTokens: sent.length, cachedTokens: 0, timeToFirstTokenMs: 1, totalMs: 2 });
    await readAll;
    expect(received.join('')).toBe(sent.join(''));
    expect(relay.openStreams).toBe(1); // the stalled stream is no longer read
  }, 20_000);

  it('fails only the request whose stream holds a malformed event', async () => {
    const relay = newRelay({ connections: 1 });
    const broken = relay.subscribe('req-broken');
    const healthy = relay.subscribe('req-healthy');
    await control.xadd(broken.streamKey, '*', 'data', JSON.stringify({ v: 99, type: 'token-delta' }));
    await write(healthy, start);
    await expect(broken.next()).rejects.toBeInstanceOf(WireFormatError);
    expect(await take(healthy, 1)).toMatchObject([{ type: 'generation-start' }]);
  });

  it('reads 500 streams over the configured number of connections', async () => {
    const before = await relayConnections();
    const relay = newRelay({ connections: 3 });
    const subscriptions = Array.from({ length: 500 }, (_, index) => relay.subscribe(`req-many-${index}`));
    await Promise.all(subscriptions.map((subscription, index) => write(subscription, start, delta(String(index)))));
    const texts = await Promise.all(subscriptions.map(async (subscription) => (await take(subscription, 2))[1]));
    expect(texts.map((event) => (event?.type === 'token-delta' ? event.text : null))).toEqual(subscriptions.map((_, index) => String(index)));
    expect((await relayConnections()) - before).toBe(3);
  });
});

describe('the relay readers’ presence (for gpu-nodes to stop jobs whose reader is gone)', () => {
  it('is there once the relay is ready, stays while it runs, and goes with a clean close', async () => {
    const relay = new StreamRelay(server.target, keys, control, { connections: 2, presenceTtlMs: 300 });
    await relay.ready;
    const group = relay.subscribe('req-presence').group;
    expect(await absentRelayGroups(control, keys, [group, 'never-a-relay'])).toEqual(new Set(['never-a-relay']));
    const left = await control.pttl(keys.relayPresence(group));
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(300);
    // Renewed: still there after several lifetimes of the key.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await absentRelayGroups(control, keys, [group])).toEqual(new Set());
    await relay.close();
    expect(await absentRelayGroups(control, keys, [group])).toEqual(new Set([group]));
  });

  it('is written again as soon as its connection is back (a Redis that lost its data)', async () => {
    const connection = connectRedis(server.target, { role: 'presence-test' });
    const relay = new StreamRelay(server.target, keys, connection, { connections: 1, presenceTtlMs: 60_000 });
    try {
      await relay.ready;
      const group = relay.subscribe('req-reconnect').group;
      await connection.ping(); // the subscription's own renewal has landed
      await control.del(keys.relayPresence(group));
      connection.disconnect(true); // and reconnect
      for (let tries = 0; (await control.exists(keys.relayPresence(group))) === 0; tries++) {
        if (tries > 200) throw new Error('presence was not written again after the reconnect');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      await relay.close();
      connection.disconnect();
    }
  });

  it('lapses when nobody renews it (a killed gateway)', async () => {
    await control.set(keys.relayPresence('killed-gateway-0'), '1', 'PX', 200);
    expect(await absentRelayGroups(control, keys, ['killed-gateway-0'])).toEqual(new Set());
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await absentRelayGroups(control, keys, ['killed-gateway-0'])).toEqual(new Set(['killed-gateway-0']));
  });
});
