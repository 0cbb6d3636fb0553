/**
 * Reads one request's token stream by position, for a reader that did not queue the request: a
 * client resuming a dropped stream, or a gateway settling a response whose own gateway went away.
 * It polls with XRANGE on a shared connection (such readers are rare; a blocking read would
 * need a connection of its own, or a place in another process's relay group). Such a reader
 * may also end the stream for everyone: `markCancelled`.
 */
import { decodeStreamEvent, DeadlineExceededError, encodeStreamEvent, isFinalEvent, type StreamEvent, type WireError } from '@bamba/shared';
import type { RegionRedis } from './connection.js';
import type { RegionKeys } from './keys.js';
import { runScript, type LuaScript } from './scripts.js';
import { STREAM_TTL_AFTER_END_SECONDS } from './token-event-writer.js';

const READ_COUNT = 512;
const POLL_MS = 25;

/** Events after entry `afterId` ('0': from the start) and the id of the last one read. */
async function readRequestStream(redis: RegionRedis, keys: RegionKeys, relayGroup: string, requestId: string, afterId: string): Promise<{ events: StreamEvent[]; lastId: string }> {
  const entries = (await redis.xrange(keys.requestStream(relayGroup, requestId), afterId === '0' ? '-' : `(${afterId}`, '+', 'COUNT', READ_COUNT)) as Array<[string, string[]]>;
  return { events: entries.map(([, fields]) => decodeStreamEvent(fields)), lastId: entries.at(-1)?.[0] ?? afterId };
}

/**
 * Every event of the stream from its start, then new ones as they arrive, until a final event
 * (end, error, cancellation mark: after which it returns). Past `untilMs` it throws `DeadlineExceededError`; an aborted
 * `signal` ends it quietly.
 */
export async function* followRequestStream(redis: RegionRedis, keys: RegionKeys, relayGroup: string, requestId: string, untilMs: number, signal: AbortSignal): AsyncGenerator<StreamEvent, void, undefined> {
  let lastId = '0';
  while (!signal.aborted) {
    const read = await readRequestStream(redis, keys, relayGroup, requestId, lastId);
    lastId = read.lastId;
    for (const event of read.events) {
      yield event;
      if (isFinalEvent(event)) return;
    }
    if (read.events.length === READ_COUNT) continue;
    if (Date.now() > untilMs) throw new DeadlineExceededError('the response did not finish before its deadline');
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * KEYS[1] the request's stream. ARGV: the event's field and value, the TTL (seconds) a stream
 * without one gets (one never written yet: its job never started). Returns 1.
 */
const MARK_CANCELLED: LuaScript = {
  name: 'bambaMarkCancelled',
  keys: 1,
  lua: `
redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
`,
};

/**
 * End a request's stream here for every reader (`generation-cancelled`, with `error` when it
 * failed rather than was cancelled): what its gpu-node writes after this is nobody's answer. The
 * job itself is stopped apart (the producer's cancel).
 */
export async function markCancelled(redis: RegionRedis, keys: RegionKeys, relayGroup: string, requestId: string, error?: WireError): Promise<void> {
  await runScript(redis, MARK_CANCELLED, [keys.requestStream(relayGroup, requestId)], [...encodeStreamEvent({ type: 'generation-cancelled', ...(error ? { error } : {}) }), STREAM_TTL_AFTER_END_SECONDS]);
}
