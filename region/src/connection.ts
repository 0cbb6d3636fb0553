/**
 * Opens connections to a region's Redis, a single server or a Cluster, the same way for every
 * process. Each connection is named (`CLIENT SETNAME bamba:<role>`) so `CLIENT LIST` shows who
 * holds what, which tests and benchmarks count.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './config.js';

/** A connection to the region's Redis: ioredis' single-server client or its Cluster client. */
export type RegionRedis = Redis | Cluster;

export interface ConnectOptions {
  /** Shown in CLIENT LIST as `bamba:<role>`. */
  role: string;
  /**
   * `request` (default): a command fails after one reconnect attempt instead of waiting for
   * Redis forever, so an HTTP request gets a 503. `queue`: wait and retry for ever, as BullMQ
   * workers require. `relay`: a lost connection rejects its pending command at once and never
   * re-sends it (the relay turns that into an error for the requests it served).
   */
  mode?: 'request' | 'queue' | 'relay';
}

export function connectRedis(target: RedisTarget, options: ConnectOptions): RegionRedis {
  const mode = options.mode ?? 'request';
  const redisOptions: RedisOptions = {
    connectionName: `bamba:${options.role}`,
    maxRetriesPerRequest: mode === 'queue' ? null : mode === 'relay' ? 0 : 1,
    ...(mode === 'relay' ? { autoResendUnfulfilledCommands: false } : {}),
  };
  const connection: RegionRedis =
    target.kind === 'single'
      ? new Redis(target.url, redisOptions)
      : new Cluster(target.nodes, { redisOptions, ...(mode === 'queue' ? {} : { clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000) }) });
  // Errors surface per command; an unhandled 'error' event would crash the process.
  connection.on('error', () => {});
  return connection;
}

/** Whether `connection` talks to a Redis Cluster (some commands differ). */
export function isCluster(connection: RegionRedis): connection is Cluster {
  return connection instanceof Cluster;
}
