/**
 * `bamba start` (what `npm start` runs): the whole stack on this machine. A private
 * redis-server (data under .data/, append-only file on) unless REDIS_URL is set, one gpu-node
 * on the tiny model, the gateway on PORT (default 8080) and the workers (batches). Ctrl-C stops
 * every child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { startLocalRedis, type LocalRedis } from '../local-redis.js';
import { applyFlags } from '../flags.js';
import { GATEWAY_OPTIONS } from './gateway.js';
import { GPU_NODE_OPTIONS, TINY_MODEL_ID } from './gpu-node.js';
import { WORKERS_OPTIONS } from './workers.js';

const READY_TIMEOUT_MS = 120_000;
/** How long a child may take to stop (gpu-nodes drain running work meanwhile) before it is killed. */
const CHILD_STOP_TIMEOUT_MS = 3_500;
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `bamba start` reads its own variables and passes every gateway, gpu-node and workers variable
 * on to those processes, so each is also a flag here (`bamba start --slots 8`).
 */
export const START_OPTIONS: ReadonlySet<string> = new Set(['BAMBA_DATA_DIR', ...GATEWAY_OPTIONS, ...GPU_NODE_OPTIONS, ...WORKERS_OPTIONS]);

export async function runStartCommand(args: string[]): Promise<number> {
  const settings = applyFlags(args, process.env, START_OPTIONS);
  const dataDir = resolve(settings.BAMBA_DATA_DIR ?? '.data');
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, 'stack.json');
  if (existsSync(lockPath)) {
    const running = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid: number; url: string; redisPid?: number };
    if (isAlive(running.pid)) {
      process.stderr.write(`Bamba Serve is already running (pid ${running.pid}) at ${running.url}; stop it with Ctrl-C in its terminal first.\n`);
      return 1;
    }
    // The last stack was killed without cleaning up: its redis-server would share our data folder.
    if (running.redisPid && isAlive(running.redisPid)) process.kill(running.redisPid, 'SIGTERM');
  }
  const port = settings.PORT ?? '8080';
  writeFileSync(lockPath, JSON.stringify({ pid: process.pid, url: `http://127.0.0.1:${port}` }));

  const children: ChildProcess[] = [];
  let redis: LocalRedis | null = null;
  let shuttingDown = false;
  // Every child stops at once (Ctrl-C reaches them too); whoever is not gone within the grace
  // period is killed, so the whole stack is down within a few seconds.
  const shutdown = async (code: number): Promise<number> => {
    if (shuttingDown) return code;
    shuttingDown = true;
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), CHILD_STOP_TIMEOUT_MS))]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }));
    await redis?.stop();
    rmSync(lockPath, { force: true });
    return code;
  };

  try {
    let redisUrl = settings.REDIS_URL;
    if (!redisUrl && !settings.REDIS_CLUSTER_NODES) {
      redis = await startLocalRedis({ dataDir: join(dataDir, 'redis'), appendOnly: true });
      redisUrl = redis.url;
      writeFileSync(lockPath, JSON.stringify({ pid: process.pid, url: `http://127.0.0.1:${port}`, redisPid: redis.process.pid }));
      process.stderr.write(`redis: private redis-server at ${redisUrl} (data in ${join(dataDir, 'redis')})\n`);
    }
    const cacheDir = resolve(settings.BAMBA_CACHE_DIR ?? '.cache');
    const modelPath = settings.BAMBA_MODEL_PATH ?? ensureCachedModel(cacheDir, 'tiny', DEFAULT_MODEL_SEED);
    const modelId = settings.BAMBA_MODEL_ID ?? (settings.BAMBA_MODEL_PATH ? undefined : TINY_MODEL_ID);
    // A local stack stops within seconds of Ctrl-C: running generations get a short drain.
    const env = { BAMBA_DRAIN_TIMEOUT_MS: '2000', BAMBA_FILES_DIR: join(dataDir, 'files'), ...settings, ...(redisUrl ? { REDIS_URL: redisUrl } : {}), PORT: port, BAMBA_MODEL_PATH: modelPath, ...(modelId ? { BAMBA_MODEL_ID: modelId } : {}) };

    const exited = new Promise<string>((resolveExit) => {
      for (const name of ['gpu-node', 'gateway', 'workers']) {
        const child = spawn(process.execPath, [MAIN, name], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        child.once('exit', (code, signal) => resolveExit(`${name} exited (${signal ?? `code ${code}`})`));
      }
    });

    const url = `http://127.0.0.1:${port}`;
    const ready = await Promise.race([waitUntilReady(url), exited.then((reason) => { throw new Error(reason); })]);
    if (!ready) throw new Error(`the stack did not become ready within ${READY_TIMEOUT_MS / 1000} s`);
    const auth = settings.BAMBA_API_KEYS || settings.BAMBA_API_KEYS_FILE ? ' -H "Authorization: Bearer <your key>"' : '';
    process.stdout.write(
      `\nBamba Serve is ready at ${url}  (Ctrl-C stops everything)\n\n` +
        `  playground ${url}/   status ${url}/status\n\n` +
        `  curl ${url}/v1/chat/completions -H 'Content-Type: application/json'${auth} \\\n` +
        `    -d '{"model":"${modelId ?? 'your-model'}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'\n\n`,
    );

    const stopSignal = new Promise<string>((resolveSignal) => {
      process.once('SIGINT', () => resolveSignal('SIGINT'));
      process.once('SIGTERM', () => resolveSignal('SIGTERM'));
    });
    const reason = await Promise.race([exited, stopSignal]);
    const failed = reason.includes('exited');
    process.stderr.write(failed ? `bamba start: ${reason}; stopping the stack\n` : `bamba start: ${reason}, stopping the stack\n`);
    return shutdown(failed ? 1 : 0);
  } catch (error) {
    process.stderr.write(`bamba start: ${error instanceof Error ? error.message : String(error)}\n`);
    return shutdown(1);
  }
}

async function waitUntilReady(url: string): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) return true;
    } catch {
      /* not listening yet */
    }
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 200));
  }
  return false;
}
