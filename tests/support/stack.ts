/**
 * A real stack for end-to-end tests: a private redis-server (or a 3-master Redis Cluster) on
 * free ports, gpu-nodes as child processes on the tiny model (so one can be SIGKILLed), and the
 * gateway in this process. Each stack uses its own Redis and key prefix, and removes everything
 * on stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, startLocalCluster, startLocalRedis, type LocalRedis } from '@bamba/cli/local-redis';
import { parseGatewayConfig, silentLogger, startGateway, type RunningGateway } from '@bamba/gateway';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { connectRedis, isCluster, JobProducer, NodeRegistry, regionKeys, type RegionKeys, type RegionRedis } from '@bamba/region';
import { decodeStreamEvent, type NodeStatus, type StreamEvent } from '@bamba/shared';

export const MODEL_ID = 'bamba-tiny';
export const TINY_MODEL_PATH = ensureCachedModel(resolve('.cache'), 'tiny', DEFAULT_MODEL_SEED);
const CLI = resolve('cli/dist/main.js');
const NODE_START_TIMEOUT_MS = 60_000;

export interface StackOptions {
  gpuNodes?: number;
  /** GGUF the gpu-nodes serve and the id clients use (default: the tiny model as bamba-tiny). */
  model?: { path: string; id: string };
  /** Environment for every gpu-node (strings, as in production). */
  nodeEnv?: Record<string, string>;
  /** Environment for the gateway. */
  gatewayEnv?: Record<string, string>;
  /** Run the region on a local 3-master Redis Cluster instead of one redis-server. */
  cluster?: boolean;
  /** Run the gateway as its own process (`bamba gateway`), as in production, instead of in this one. */
  gatewayProcess?: boolean;
  /** Redis keeps an append-only file, as a region's Redis does (single server only). */
  redisAppendOnly?: boolean;
  /** `bamba workers` processes to start (batches); default 0. */
  workers?: number;
  /** Environment for every workers process. */
  workersEnv?: Record<string, string>;
  /** The region's name (BAMBA_REGION of every process; default `local`). */
  region?: string;
}

export interface TestStack {
  url: string;
  redis: RegionRedis;
  keys: RegionKeys;
  nodes: Map<string, ChildProcess>;
  gateway: RunningGateway;
  /** The gateway's process id when it runs as its own process. */
  gatewayPid: number | null;
  /** The environment the gateway was configured from (to start a twin with changes). */
  gatewayEnv: Record<string, string>;
  /** Where Redis is, as the processes see it (REDIS_URL or REDIS_CLUSTER_NODES). */
  redisEnv: Record<string, string>;
  startNode(nodeId: string, env?: Record<string, string>): Promise<ChildProcess>;
  /** SIGTERM a node and wait until it exited. */
  stopNode(nodeId: string): Promise<void>;
  /** Start a `bamba workers` process (ready once it logged that it runs batches). */
  startWorkers(name: string, env?: Record<string, string>): Promise<ChildProcess>;
  /** Stop a workers process: SIGTERM (or SIGKILL, as a crash) and wait until it exited. */
  stopWorkers(name: string, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Where uploaded files live (BAMBA_FILES_DIR of the gateway and the workers). */
  filesDir: string;
  nodeStatuses(): Promise<NodeStatus[]>;
  /** Jobs waiting in the region queue (the figure /metrics shows as bamba_queue_depth). */
  queueDepth(): Promise<number>;
  /** Every event a request's stream holds (its key found by request id, whatever its relay group). */
  streamEvents(requestId: string): Promise<StreamEvent[]>;
  /** Keys of every request stream in Redis (every master of a Cluster). */
  streamKeys(): Promise<string[]>;
  /** SIGKILL the (single) redis-server and start it again on the same port and data (its AOF, if on). */
  crashRedis(): Promise<void>;
  /** Poll `check` until it returns a value other than undefined, or fail after `timeoutMs`. */
  waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

export const DEFAULT_NODE_ENV: Record<string, string> = {
  BAMBA_SLOTS: '4',
  BAMBA_CONTEXT_SIZE: '1024',
  BAMBA_THREADS: '1',
  BAMBA_DEVICE: 'cpu',
  BAMBA_HEARTBEAT_MS: '250',
  BAMBA_LOCK_DURATION_MS: '2000',
  BAMBA_STALLED_INTERVAL_MS: '1000',
};

export async function startTestStack(options: StackOptions = {}): Promise<TestStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bamba-stack-'));
  let servers: LocalRedis[] = [];
  const nodes = new Map<string, ChildProcess>();
  const workers = new Map<string, ChildProcess>();
  let redis: RegionRedis | null = null;
  try {
    let redisEnv: Record<string, string>;
    if (options.cluster) {
      const cluster = await startLocalCluster({ dataDir, masters: 3 });
      servers = cluster.servers;
      redisEnv = { REDIS_CLUSTER_NODES: cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(',') };
    } else {
      const local = await startLocalRedis({ dataDir, appendOnly: options.redisAppendOnly ?? false });
      servers = [local];
      redisEnv = { REDIS_URL: local.url };
    }
    const prefix = `test-${randomUUID().slice(0, 8)}`;
    const regionName = options.region ?? 'local';
    const keys = regionKeys(prefix, regionName);
    const target = options.cluster
      ? { kind: 'cluster' as const, nodes: servers.map((server) => ({ host: '127.0.0.1', port: server.port })) }
      : { kind: 'single' as const, url: servers[0]!.url };
    redis = connectRedis(target, { role: 'test', mode: 'queue' });
    const registry = new NodeRegistry(redis, keys);
    const producer = new JobProducer(redis, keys, 1);
    const filesDir = join(dataDir, 'files');
    const common = { ...redisEnv, BAMBA_REDIS_PREFIX: prefix, BAMBA_REGION: regionName, BAMBA_FILES_DIR: filesDir };
    const gatewayEnv = { PORT: options.gatewayProcess ? String(await freePort()) : '0', ...common, ...options.gatewayEnv };
    const gatewayChild = options.gatewayProcess ? await startGatewayProcess(gatewayEnv) : null;
    const gateway = gatewayChild?.gateway ?? await startGateway(parseGatewayConfig(gatewayEnv), process.env.BAMBA_TEST_GATEWAY_STDERR === '1' ? {} : { logger: silentLogger });

    const waitFor = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((done) => setTimeout(done, 25));
      }
    };
    const model = options.model ?? { path: TINY_MODEL_PATH, id: MODEL_ID };
    const connection = redis;
    const startNode = async (nodeId: string, env: Record<string, string> = {}) => {
      const child = spawn(process.execPath, [CLI, 'gpu-node'], {
        env: { ...process.env, ...common, ...DEFAULT_NODE_ENV, ...options.nodeEnv, ...env, BAMBA_NODE_ID: nodeId, BAMBA_MODEL_PATH: model.path, BAMBA_MODEL_ID: model.id, BAMBA_LOG_LEVEL: process.env.BAMBA_TEST_NODE_STDERR === '1' ? 'info' : 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (process.env.BAMBA_TEST_NODE_STDERR === '1') process.stderr.write(`[${nodeId}] ${chunk.toString()}`);
      });
      nodes.set(nodeId, child);
      await waitFor(`gpu-node ${nodeId} to announce itself`, async () => {
        if (child.exitCode !== null) throw new Error(`gpu-node ${nodeId} exited: ${stderr}`);
        return (await registry.isAlive(nodeId)) ? true : undefined;
      }, NODE_START_TIMEOUT_MS);
      return child;
    };
    const stopNode = async (nodeId: string) => {
      const child = nodes.get(nodeId);
      nodes.delete(nodeId);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
    };
    const startWorkers = async (name: string, env: Record<string, string> = {}) => {
      const child = spawn(process.execPath, [CLI, 'workers'], {
        env: { ...process.env, ...common, BAMBA_BATCH_LOCK_DURATION_MS: '2000', BAMBA_BATCH_STALLED_INTERVAL_MS: '1000', ...options.workersEnv, ...env, BAMBA_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      workers.set(name, child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (process.env.BAMBA_TEST_WORKERS_STDERR === '1') process.stderr.write(`[${name}] ${chunk.toString()}`);
      });
      await waitFor(`workers ${name} to start`, async () => {
        if (child.exitCode !== null) throw new Error(`workers ${name} exited: ${stderr}`);
        return stderr.includes('running batches') ? true : undefined;
      });
      return child;
    };
    const stopWorkers = async (name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
      const child = workers.get(name);
      workers.delete(name);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill(signal);
      await exited;
    };
    const streamKeys = async () => {
      const servers = isCluster(connection) ? connection.nodes('master') : [connection];
      return (await Promise.all(servers.map((server) => server.keys(`${prefix}:*:stream:*`)))).flat();
    };
    const streamEvents = async (requestId: string) => {
      const [key] = (await streamKeys()).filter((candidate) => candidate.endsWith(`:stream:${requestId}`));
      if (!key) return [];
      return (await connection.xrange(key, '-', '+')).map(([, fields]) => decodeStreamEvent(fields));
    };
    for (let index = 0; index < (options.gpuNodes ?? 1); index++) await startNode(`node-${index}`);
    for (let index = 0; index < (options.workers ?? 0); index++) await startWorkers(`workers-${index}`);

    const stack: TestStack = {
      url: gateway.url,
      redis,
      keys,
      nodes,
      gateway,
      gatewayPid: gatewayChild?.pid ?? null,
      gatewayEnv,
      redisEnv,
      startNode,
      stopNode,
      startWorkers,
      stopWorkers,
      filesDir,
      nodeStatuses: () => registry.liveNodes(),
      queueDepth: () => producer.waitingJobs(),
      streamEvents,
      streamKeys,
      waitFor,
      async crashRedis() {
        if (options.cluster) throw new Error('crashRedis is for single-server stacks');
        const [server] = servers;
        const exited = new Promise((done) => server!.process.once('exit', done));
        server!.process.kill('SIGKILL');
        await exited;
        servers = [await startLocalRedis({ dataDir, appendOnly: options.redisAppendOnly ?? false, port: server!.port })];
      },
      async stop() {
        await producer.close();
        await stack.gateway.close(); // (a test may have replaced it)
        await Promise.all([...nodes.keys()].map((nodeId) => stopNode(nodeId)));
        await Promise.all([...workers.keys()].map((name) => stopWorkers(name)));
        connection.disconnect();
        await Promise.all(servers.map((server) => server.stop()));
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    return stack;
  } catch (error) {
    for (const child of nodes.values()) child.kill('SIGKILL');
    for (const child of workers.values()) child.kill('SIGKILL');
    redis?.disconnect();
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** `bamba gateway` as a child process, ready when /healthz answers. */
export async function startGatewayProcess(env: Record<string, string>): Promise<{ gateway: RunningGateway; pid: number }> {
  const child = spawn(process.execPath, [CLI, 'gateway'], { env: { ...process.env, BAMBA_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const url = `http://127.0.0.1:${env.PORT}`;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`bamba gateway exited with code ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch { /* not listening yet */ }
    if (attempt > 200) throw new Error('bamba gateway did not start within 20 s');
    await new Promise((done) => setTimeout(done, 100));
  }
  return {
    pid: child.pid!,
    gateway: { url, config: parseGatewayConfig(env), close: async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await exited; } } },
  };
}

/** POST JSON and return status, headers and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, headers: response.headers, json: json as Record<string, any>, text };
}

/** The rest of an SSE body whose first bytes were already read with `reader`: its `data:` payloads to the end. */
export function readSseRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string[]> {
  return readSse(new Response(new ReadableStream({
    pull: async (controller) => {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  })));
}

/** Read an SSE response's `data:` payloads until `limit` events (or the end). */
export async function readSse(response: Response, limit = Infinity): Promise<string[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: string[] = [];
  let buffer = '';
  while (events.length < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let boundary;
    while ((boundary = buffer.indexOf('\n\n')) !== -1 && events.length < limit) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const data = block.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n');
      if (data) events.push(data);
    }
  }
  if (events.length >= limit) await reader.cancel();
  return events;
}
