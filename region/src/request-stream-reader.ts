/**
 * Reads one request's token stream by position, for a reader that did not queue the request: a
 * client resuming a dropped stream, or a gateway settling a response whose own gateway went away.
 * It polls with XRANGE on a shared connection (such readers are rare; a blocking read would
 * need a connection of its own, or a place in another process's relay group).
 */
import { decodeStreamEvent, DeadlineExceededError, type StreamEvent } from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';

const READ_COUNT = 512;
const POLL_MS = 25;

/** Events after entry `afterId` ('0': from the start) and the id of the last one read. */
async function readRequestStream(redis: RegionRedis, keys: RegionKeys, relayGroup: string, requestId: string, afterId: string): Promise<{ events: StreamEvent[]; lastId: string }> {
  const entries = (await redis.xrange(keys.requestStream(relayGroup, requestId), afterId === '0' ? '-' : `(${afterId}`, '+', 'COUNT', READ_COUNT)) as Array<[string, string[]]>;
  return { events: entries.map(([, fields]) => decodeStreamEvent(fields)), lastId: entries.at(-1)?.[0] ?? afterId };
}

/**
 * Every event of the stream from its start, then new ones as they arrive, until an end or error
 * event (after which it returns). Past `untilMs` it throws `DeadlineExceededError`; an aborted
 * `signal` ends it quietly.
 */
export async function* followRequestStream(redis: RegionRedis, keys: RegionKeys, relayGroup: string, requestId: string, untilMs: number, signal: AbortSignal): AsyncGenerator<StreamEvent, void, undefined> {
  let lastId = '0';
  while (!signal.aborted) {
    const read = await readRequestStream(redis, keys, relayGroup, requestId, lastId);
    lastId = read.lastId;
    for (const event of read.events) {
      yield event;
      if (event.type === 'generation-end' || event.type === 'generation-error') return;
    }
    if (read.events.length === READ_COUNT) continue;
    if (Date.now() > untilMs) throw new DeadlineExceededError('the response did not finish before its deadline');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
