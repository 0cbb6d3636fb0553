/**
 * Starts a private `redis-server` on a free loopback port: for `bamba start` (data kept under
 * .data/ with the append-only file on) and for tests (a throwaway folder).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, createServer } from 'node:net';

export interface LocalRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (redis-server cannot bind port 0 and report it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const START_TIMEOUT_MS = 10_000;
const ATTEMPTS = 3;

export interface LocalRedisOptions {
  dataDir: string;
  appendOnly: boolean;
  /** A fixed port (to restart a server where it was); default a free one. */
  port?: number;
  /** More redis-server arguments (e.g. cluster mode). */
  extraArgs?: string[];
}

export async function startLocalRedis(options: LocalRedisOptions): Promise<LocalRedis> {
  mkdirSync(options.dataDir, { recursive: true });
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = options.port ?? (await freePort());
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', options.dataDir,
      '--appendonly', options.appendOnly ? 'yes' : 'no', '--save', '', '--daemonize', 'no', '--loglevel', 'warning',
      ...(options.extraArgs ?? []),
      // Its own process group: a Ctrl-C meant for the stack must not stop Redis before the
      // services that are draining into it; whoever started it stops it last.
    ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(port, exited, spawnFailed);
      return {
        url,
        port,
        process: child,
        async stop() {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM');
          await exited;
        },
      };
    } catch (error) {
      child.kill('SIGKILL');
      lastError = stderr ? new Error(`redis-server: ${stderr.trim()}`) : error;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
    }
  }
  throw lastError;
}

export interface LocalCluster {
  servers: LocalRedis[];
  nodes: Array<{ port: number }>;
  stop(): Promise<void>;
}

/**
 * A local Redis Cluster of `masters` servers without replicas, each on a free port, joined with
 * `redis-cli --cluster create` (redis-cli comes with redis-server), ready when every node says
 * `cluster_state:ok`.
 */
export async function startLocalCluster(options: { dataDir: string; masters: number }): Promise<LocalCluster> {
  const servers: LocalRedis[] = [];
  try {
    for (let index = 0; index < options.masters; index++) {
      servers.push(await startLocalRedis({
        dataDir: join(options.dataDir, `cluster-${index}`),
        appendOnly: false,
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${index}.conf`, '--cluster-node-timeout', '2000'],
      }));
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...servers.map((server) => `127.0.0.1:${server.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${(created.stderr || created.stdout || String(created.error)).trim().slice(-400)}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (const server of servers) {
      while (!(await redisCommand(server.port, 'CLUSTER INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('the local Redis Cluster did not reach cluster_state:ok within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { servers, nodes: servers.map((server) => ({ port: server.port })), stop: async () => { await Promise.all(servers.map((server) => server.stop())); } };
  } catch (error) {
    await Promise.all(servers.map((server) => server.stop()));
    throw error;
  }
}

/** One inline command over a raw socket; the reply's text, or '' on failure. */
function redisCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = () => { socket.destroy(); resolve(reply); };
    socket.setTimeout(timeoutMs, done);
    socket.once('error', done);
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (!bulk ? reply.includes('\r\n') : reply.length >= bulk[0].length + Number(bulk[1]) + 2) done();
    });
  });
}

/** One PING over a raw socket: true on `+PONG`, false on any failure (not up yet). */
export async function pingRedis(port: number, timeoutMs = 1000): Promise<boolean> {
  return (await redisCommand(port, 'PING', timeoutMs)).startsWith('+PONG');
}

async function waitForPing(port: number, exited: Promise<number | null>, spawnFailed: Promise<Error>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let failed: Error | null = null;
  void exited.then((code) => { failed ??= new Error(`redis-server exited with code ${code}`); });
  void spawnFailed.then((error) => { failed ??= error; });
  while (Date.now() < deadline) {
    if (failed) throw failed;
    if (await pingRedis(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw failed ?? new Error('redis-server did not answer within 10 s');
}
