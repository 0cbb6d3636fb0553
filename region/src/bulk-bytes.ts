/**
 * Moves snapshot chunk bytes (SET and GET of 1 MiB Buffers, nothing else) over a small pool of
 * connections of their own, so a 100 MB write neither waits behind nor delays the region's other
 * commands on one socket.
 *
 * Why node-redis (@redis/client) here and ioredis everywhere else: ioredis copies every Buffer
 * argument into a new buffer per command, node-redis writes it to the socket as it is (measured
 * in BENCHMARKS.md "Snapshot store": a 137 MB state written in 1 MiB chunks, ioredis on one
 * connection vs node-redis over 4). BullMQ and every other command stay on ioredis.
 *
 * A Redis Cluster target keeps ioredis (its Cluster client on a connection of its own): the
 * chunks' keys each carry their own hash tag and spread over the shards, which node-redis'
 * cluster client would have to learn too; that is not done yet.
 */
import { createClient, RESP_TYPES } from '@redis/client';
import type { RedisTarget } from './config.js';
import { connectRedis, type ConnectOptions, type RegionRedis } from './connection.js';

/** SET and GET of byte values (snapshot chunks). */
export interface BulkBytes {
  /** Which client moves the bytes and over how many connections (benchmarks and logs say it). */
  readonly description: string;
  set(key: string, value: Buffer): Promise<void>;
  /** The value, or null when the key is gone. */
  get(key: string): Promise<Buffer | null>;
  /** Closes the connections this opened (none for `ioredisBulkBytes`). Idempotent. */
  close(): Promise<void>;
}

/** How long `close()` lets commands in flight finish before it drops the connections. */
const CLOSE_WAIT_MS = 2_000;

/** Connections a bulk pool opens unless told otherwise (4 wrote a 137 MB state fastest here). */
export const BULK_CONNECTIONS_DEFAULT = 4;

export interface BulkBytesOptions {
  /** Shown in CLIENT LIST as `bamba:bulk:<role>`. */
  role: string;
  /**
   * As `ConnectOptions.mode`: `request` (default) fails a command at once while the connection
   * is down (the HTTP request gets a 503); `queue` holds commands until Redis is back.
   */
  mode?: 'request' | 'queue';
  /** Connections in the pool (single server only), default `BULK_CONNECTIONS_DEFAULT`. */
  connections?: number;
}

/** The bytes travel over the connection the caller already has (the path before the pool). */
export function ioredisBulkBytes(redis: RegionRedis): BulkBytes {
  return {
    description: 'ioredis × 1 (shared)',
    async set(key, value) { await redis.set(key, value); },
    get: (key) => redis.getBuffer(key),
    async close() {},
  };
}

/**
 * A pool of node-redis connections to a single server (calls go round-robin over it), or for a
 * Cluster an ioredis Cluster connection of its own. The caller owns it and must `close()` it.
 */
export function connectBulkBytes(target: RedisTarget, options: BulkBytesOptions): BulkBytes {
  if (target.kind === 'cluster') {
    const connectOptions: ConnectOptions = { role: `bulk:${options.role}`, mode: options.mode ?? 'request' };
    const redis = connectRedis(target, connectOptions);
    return { ...ioredisBulkBytes(redis), description: 'ioredis Cluster × 1', async close() { redis.disconnect(); } };
  }
  return nodeRedisPool(target.url, options);
}

/** How long a request-mode call waits for its connection before it fails. */
const FAIL_FAST_CONNECT_MS = 2_000;

function nodeRedisPool(url: string, options: BulkBytesOptions): BulkBytes {
  const size = options.connections ?? BULK_CONNECTIONS_DEFAULT;
  if (!Number.isInteger(size) || size < 1) throw new Error(`bulk connections must be a positive integer, got ${size}`);
  const clients = Array.from({ length: size }, () => {
    const client = createClient({ url, name: `bamba:bulk:${options.role}`, disableOfflineQueue: (options.mode ?? 'request') === 'request' });
    // Errors surface per command; an unhandled 'error' event would crash the process.
    client.on('error', () => {});
    return client;
  });
  // Replies as Buffers: node-redis decodes bulk strings to JS strings unless told otherwise.
  const byteClients = clients.map((client) => client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }));
  // Commands before the first connect would throw ClientClosedError: every call waits for its
  // client's first connect (a failed one fails the call, not the process).
  const connected = clients.map((client) => client.connect().then(() => undefined));
  for (const attempt of connected) attempt.catch(() => {});
  let next = 0;
  let closed = false;
  const failFast = (options.mode ?? 'request') === 'request';
  const pick = async () => {
    if (closed) throw new Error('bulk bytes client is closed');
    const index = next;
    next = (next + 1) % size;
    if (failFast) {
      // A request must not hang on a Redis that is down (node-redis retries its connection for ever).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([connected[index], new Promise<void>((resolve) => { timer = setTimeout(resolve, FAIL_FAST_CONNECT_MS); })]);
      clearTimeout(timer);
      if (!clients[index]!.isReady) throw new Error('Redis cannot be reached (snapshot byte connection not ready)');
    } else {
      await connected[index];
    }
    return byteClients[index]!;
  };
  return {
    description: `node-redis × ${size}`,
    async set(key, value) { await (await pick()).set(key, value); },
    async get(key) { return (await (await pick()).get(key)) ?? null; },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(clients.map(async (client) => {
        if (!client.isOpen) return;
        // Commands in flight may finish (for a while: Redis may be down); one still connecting
        // is dropped, which also fails the calls waiting for it.
        if (client.isReady) {
          let timer: NodeJS.Timeout | undefined;
          const waited = new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); });
          await Promise.race([client.close().catch(() => {}), waited]);
          clearTimeout(timer);
        }
        if (client.isOpen) client.destroy();
      }));
    },
  };
}
