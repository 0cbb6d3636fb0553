/**
 * Node entry: the gateway in a region, serving HTTP with @hono/node-server and dispatching
 * through the region's Redis. Wiring only.
 */
import { maxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import {
  BatchQueue,
  BatchStore,
  connectBulkBytes,
  connectRedis,
  FileStore,
  JobProducer,
  NodeRegistry,
  RegionWorkQueue,
  SessionTransfer,
  redisOutageError,
  regionKeys,
  ResponseStore,
  SessionStore,
  SnapshotStore,
  StreamRelay,
} from '@bamba/region';
import { serve } from '@hono/node-server';
import { createApp } from '../app.js';
import { GatewayStop } from '../gateway-stop.js';
import { RegionBatches, RegionDispatch, RegionResponses, RegionSessions, RegionTransfers } from '../dispatch/region-dispatch.js';
import type { GatewayMetrics } from '../metrics.js';
import { createPinoLogger } from '../observability/pino-logger.js';
import { PromMetrics } from '../observability/prom-metrics.js';
import type { GatewayLogger } from '../request-log.js';
import { isLoopbackHost, type GatewayConfig } from './node-config.js';
import { loadPageScripts } from './node-page-scripts.js';

export interface RunningGateway {
  url: string;
  config: GatewayConfig;
  close(): Promise<void>;
}

export interface GatewayRuntime {
  logger?: GatewayLogger;
  metrics?: GatewayMetrics;
}

/** The snapshot store is only read here (a session's state); the gpu-nodes own the budget. */
const READ_ONLY_BUDGET_BYTES = Number.MAX_SAFE_INTEGER;
/** After the drain, how long the requests still open have to write their 503 or final error event. */
const STOP_ANSWER_MS = 1_000;

export async function startGateway(config: GatewayConfig, runtime: GatewayRuntime = {}): Promise<RunningGateway> {
  const logger = runtime.logger ?? createPinoLogger(config.logLevel);
  const keys = regionKeys(config.region.prefix, config.region.region);
  const redis = connectRedis(config.region.redis, { role: 'gateway' });
  const producer = new JobProducer(redis, keys, config.jobAttempts);
  const relay = new StreamRelay(config.region.redis, keys, redis, { connections: config.relayConnections, slowConsumerMs: config.slowClientMs, presenceTtlMs: config.relayPresenceMs });
  // Before any job is queued: a gpu-node drops a job whose reader shows no presence.
  await relay.ready.catch((error: Error) => logger.error('could not announce the stream relay (renewed shortly)', error));
  const registry = new NodeRegistry(redis, keys, (nodeId, error) => logger.error(`node ${nodeId} published a malformed status`, error));
  // Reads only (a session's state, a move's chunks one at a time): two connections are plenty.
  const snapshotBytes = connectBulkBytes(config.region.redis, { role: 'gateway', connections: 2 });
  const snapshots = new SnapshotStore(redis, keys, READ_ONLY_BUDGET_BYTES, snapshotBytes);
  const batchStore = new BatchStore(redis, keys);
  const dispatch = new RegionDispatch(config.region.region, redis, producer, relay, registry, keys, snapshots, batchStore);
  const transfer = new SessionTransfer(redis, keys, snapshots);
  const regionWork = new RegionWorkQueue(redis, keys);
  const replicating = config.replicateSessions;
  const sessionStore = new SessionStore(redis, keys, snapshots);
  const sessions = new RegionSessions(sessionStore, transfer, config.sessionTtlSeconds, config.maxSessionsPerTenant, replicating ? regionWork : null);
  const transfers = new RegionTransfers(transfer, sessionStore, snapshots, regionWork, replicating, config.edgeSecret !== null);
  const responses = new RegionResponses(new ResponseStore(redis, keys), config.responseTtlSeconds, keys.region);
  const files = new FileStore(redis, keys, resolve(config.filesDir));
  const batchQueue = new BatchQueue(redis, keys);
  const batches = new RegionBatches(batchStore, batchQueue, files, config.batchWindowMs);
  const stop = new GatewayStop();
  setMaxListeners(0, stop.ended); // every open generation listens to it
  const app = createApp({ stop, region: dispatch, generation: dispatch, sessions, responses, files, batches, transfers, config, metrics: runtime.metrics ?? new PromMetrics(), pageScripts: loadPageScripts(), logger, classifyError: redisOutageError });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolve(started));
    started.once('error', reject);
  }).catch(async (error: unknown) => {
    // Not listening (the port is taken, say): its readers were never here, so nothing may see them as alive.
    for (const closing of [relay, producer, batchQueue, regionWork, snapshotBytes]) await closing.close().catch(() => {});
    redis.disconnect();
    throw error;
  });
  server.on('clientError', answerUnparsedRequest);
  // Requests whose answers are still being written (a stream stays here until it ends).
  const open = new Set<ServerResponse>();
  server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    open.add(response);
    response.once('close', () => open.delete(response));
  });
  const allAnswered = async (withinMs: number) => {
    const deadline = Date.now() + withinMs;
    while ((open.size > 0 || stop.holding > 0) && Date.now() < deadline) {
      http.closeIdleConnections?.(); // keep-alive connections whose answer just ended
      await new Promise((resolveWait) => setTimeout(resolveWait, 20));
    }
  };
  const http = server as unknown as { closeIdleConnections?: () => void; closeAllConnections?: () => void };
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  if (config.apiKeys.size === 0) {
    logger.info(isLoopbackHost(config.host)
      ? `no API keys configured (BAMBA_API_KEYS), so listening on ${config.host} only`
      : `serving WITHOUT authentication on ${config.host} (BAMBA_ALLOW_NO_AUTH=true)`);
  }
  logger.info(`listening on ${url}`, { url });
  return {
    url,
    config,
    async close() {
      // Stop accepting; open requests may finish within the drain time; those still open then
      // end with a 503 or a final error event (their jobs cancelled); then let go of Redis.
      stop.beginDrain();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await allAnswered(config.drainTimeoutMs);
      if (open.size + stop.holding > 0) logger.info(`stopping: ${open.size} requests and ${stop.holding} background responses still open after the ${config.drainTimeoutMs} ms drain end with gateway_stopping`);
      stop.endDrain();
      await allAnswered(STOP_ANSWER_MS);
      await dispatch.settleCancels(); // the cut jobs' cancels reach Redis before it is let go
      http.closeAllConnections?.();
      await closed;
      await relay.close();
      await producer.close();
      await batchQueue.close();
      await regionWork.close();
      await snapshotBytes.close();
      redis.disconnect();
    },
  };
}

/**
 * A request Node's parser refused before the app saw it (headers or URL larger than Node reads,
 * malformed HTTP): answered in OpenAI's error shape, as everything else is, instead of Node's
 * bare status line.
 */
function answerUnparsedRequest(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const body = JSON.stringify({ error: {
    message: tooLarge ? `the request's headers, its URL included, hold more than the ${maxHeaderSize} bytes this server reads` : 'malformed HTTP request',
    type: 'invalid_request_error',
    param: null,
    code: tooLarge ? 'request_too_large' : 'invalid_request',
  } });
  socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
