/**
 * `bamba start` (what `npm start` runs): the whole stack on this machine. Per region: a private
 * redis-server (data under .data/, append-only file on) unless REDIS_URL is set, one gpu-node on
 * the tiny model, the gateway and the workers. `--regions us,eu` starts one such region per
 * name (each its own Redis), replicating sessions to each other; `--edge` puts the edge Worker
 * in front of them under `wrangler dev`, on PORT (default 8080), the regions' gateways on the
 * ports after it. Ctrl-C stops every child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { REGION_NAME_PATTERN } from '@bamba/shared';
import { startEdgeDev, type EdgeDev } from '../edge-dev.js';
import { startLocalRedis, type LocalRedis } from '../local-redis.js';
import { applyFlags } from '../flags.js';
import { GATEWAY_OPTIONS } from './gateway.js';
import { GPU_NODE_OPTIONS, TINY_MODEL_ID } from './gpu-node.js';
import { WORKERS_OPTIONS } from './workers.js';

const READY_TIMEOUT_MS = 120_000;
/** Running generations' drain when the stack stops (Ctrl-C), unless BAMBA_DRAIN_TIMEOUT_MS says otherwise. */
const LOCAL_DRAIN_MS = 2_000;
/** How long a child may take to stop beyond the drain (the gateway's last answers, closing) before it is killed. */
const CHILD_STOP_MARGIN_MS = 3_000;
/** A child that dies once the stack is up is started again after this long... */
const RESTART_DELAY_MS = 1_000;
/** ...unless it died more than this many times within the window: then it will not stay up, and the stack stops. */
const RESTARTS_PER_WINDOW = 3;
const RESTART_WINDOW_MS = 60_000;
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
 * on to those processes, so each is also a flag here (`bamba start --slots 8`). Its own:
 * BAMBA_DATA_DIR, BAMBA_REGIONS (here: the names of the regions to start) and BAMBA_EDGE.
 */
export const START_OPTIONS: ReadonlySet<string> = new Set(['BAMBA_DATA_DIR', 'BAMBA_EDGE', ...GATEWAY_OPTIONS, ...GPU_NODE_OPTIONS, ...WORKERS_OPTIONS]);
const START_SWITCHES: ReadonlySet<string> = new Set(['BAMBA_EDGE']);

interface StackRecord {
  pid: number;
  url: string;
  redisPids: number[];
}

/** The regions to start: `--regions us,eu`, or one (named by BAMBA_REGION) when not given. */
function regionNamesOf(settings: Record<string, string | undefined>, edge: boolean): string[] | null {
  const text = settings.BAMBA_REGIONS;
  if (text === undefined) return edge ? [settings.BAMBA_REGION ?? 'local'] : null;
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0 || names.some((name) => !REGION_NAME_PATTERN.test(name)) || new Set(names).size !== names.length) {
    throw new Error(`--regions: give distinct region names (lowercase letters and digits), e.g. --regions us,eu (got '${text}')`);
  }
  if (settings.REDIS_URL || settings.REDIS_CLUSTER_NODES) throw new Error('--regions starts a private Redis per region; leave REDIS_URL and REDIS_CLUSTER_NODES unset');
  return names;
}

export async function runStartCommand(args: string[]): Promise<number> {
  const settings = applyFlags(args, process.env, START_OPTIONS, START_SWITCHES);
  const edgeWanted = settings.BAMBA_EDGE === 'true' || settings.BAMBA_EDGE === '1';
  let regionNames: string[] | null;
  try {
    regionNames = regionNamesOf(settings, edgeWanted);
  } catch (error) {
    process.stderr.write(`bamba start: ${(error as Error).message}\n`);
    return 1;
  }
  const dataDir = resolve(settings.BAMBA_DATA_DIR ?? '.data');
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, 'stack.json');
  if (existsSync(lockPath)) {
    const running = JSON.parse(readFileSync(lockPath, 'utf8')) as Partial<StackRecord> & { redisPid?: number };
    if (running.pid && isAlive(running.pid)) {
      process.stderr.write(`Bamba Serve is already running (pid ${running.pid}) at ${running.url}; stop it with Ctrl-C in its terminal first.\n`);
      return 1;
    }
    // The last stack was killed without cleaning up: its redis-servers would share our data folder.
    for (const pid of [...(running.redisPids ?? []), ...(running.redisPid ? [running.redisPid] : [])]) if (isAlive(pid)) process.kill(pid, 'SIGTERM');
  }
  const port = Number(settings.PORT ?? '8080');
  const url = `http://127.0.0.1:${port}`;
  const record: StackRecord = { pid: process.pid, url, redisPids: [] };
  const saveRecord = () => writeFileSync(lockPath, JSON.stringify(record));
  saveRecord();

  const children: ChildProcess[] = [];
  const redises: LocalRedis[] = [];
  let edge: EdgeDev | null = null;
  let shuttingDown = false;
  const drainMs = Number(settings.BAMBA_DRAIN_TIMEOUT_MS ?? LOCAL_DRAIN_MS);
  const childStopMs = (Number.isFinite(drainMs) ? drainMs : LOCAL_DRAIN_MS) + CHILD_STOP_MARGIN_MS;
  // Every child stops at once (Ctrl-C reaches them too); whoever is not gone within the grace
  // period is killed, so the whole stack is down within a few seconds.
  const shutdown = async (code: number): Promise<number> => {
    if (shuttingDown) return code;
    shuttingDown = true;
    await edge?.stop();
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((done) => setTimeout(() => done(false), childStopMs))]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }));
    await Promise.all(redises.map((redis) => redis.stop()));
    rmSync(lockPath, { force: true });
    return code;
  };

  try {
    const cacheDir = resolve(settings.BAMBA_CACHE_DIR ?? '.cache');
    const modelPath = settings.BAMBA_MODEL_PATH ?? ensureCachedModel(cacheDir, 'tiny', DEFAULT_MODEL_SEED);
    const modelId = settings.BAMBA_MODEL_ID ?? (settings.BAMBA_MODEL_PATH ? undefined : TINY_MODEL_ID);
    // A local stack stops within seconds of Ctrl-C: running generations get a short drain.
    const common = { BAMBA_DRAIN_TIMEOUT_MS: String(LOCAL_DRAIN_MS), ...settings, BAMBA_MODEL_PATH: modelPath, ...(modelId ? { BAMBA_MODEL_ID: modelId } : {}) };
    delete (common as Record<string, string | undefined>).BAMBA_REGIONS;
    delete (common as Record<string, string | undefined>).BAMBA_EDGE;

    // Each region: where it keeps its data, its gateway's port, and (with several) the region map.
    const regions = (regionNames ?? [null]).map((name, index) => ({
      name,
      dir: name === null ? dataDir : join(dataDir, 'regions', name),
      port: edgeWanted ? port + 1 + index : port + index,
    }));
    const secret = regionNames ? randomBytes(32).toString('hex') : null;
    const regionMap = regionNames ? JSON.stringify(regions.map(({ name, port: regionPort }) => ({ name: name!, url: `http://127.0.0.1:${regionPort}` }))) : null;

    /** Set once every region answered ready: from then on a child that dies is started again. */
    let up = false;
    const exited = new Promise<string>((resolveExit) => {
      /**
       * What happens when a process of the stack exits: before the stack is up it stops the
       * stack (a configuration error would only repeat); after, `restart` runs (once `forget`
       * has dropped the dead process), unless it keeps dying.
       */
      const onExit = (label: string) => {
        const deaths: number[] = [];
        return (code: number | null, signal: NodeJS.Signals | null, forget: () => void, restart: () => void) => {
          if (shuttingDown) return;
          const why = `${label} exited (${signal ?? `code ${code}`})`;
          if (!up) return resolveExit(why);
          const now = Date.now();
          deaths.push(now);
          while (deaths[0]! < now - RESTART_WINDOW_MS) deaths.shift();
          if (deaths.length > RESTARTS_PER_WINDOW) return resolveExit(`${why}, its ${deaths.length}th exit within ${RESTART_WINDOW_MS / 1000} s`);
          forget();
          process.stderr.write(`bamba start: ${why}; starting it again\n`);
          setTimeout(() => { if (!shuttingDown) restart(); }, RESTART_DELAY_MS);
        };
      };
      const supervise = (label: string, name: string, env: Record<string, string | undefined>) => {
        const exitedHere = onExit(label);
        const launch = () => {
          const child = spawn(process.execPath, [MAIN, name], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          children.push(child);
          child.once('exit', (code, signal) => exitedHere(code, signal, () => children.splice(children.indexOf(child), 1), launch));
        };
        launch();
      };
      const spawnRegion = async (region: (typeof regions)[number]) => {
        let redisUrl = settings.REDIS_URL;
        if (!redisUrl && !settings.REDIS_CLUSTER_NODES) {
          const redisDir = join(region.dir, 'redis');
          const redisLabel = `${region.name ? `${region.name} ` : ''}redis-server`;
          const redisExited = onExit(redisLabel);
          // Like the other processes: started again where it was (same port, same append-only
          // file) when it dies once the stack is up; the services reconnect on their own.
          const keepRedis = (redis: LocalRedis) => {
            if (shuttingDown) return void redis.stop(); // came up while the stack was stopping
            redises.push(redis);
            record.redisPids.push(redis.process.pid!);
            saveRecord();
            redis.process.once('exit', (code, signal) => redisExited(code, signal, () => {
              redises.splice(redises.indexOf(redis), 1);
              record.redisPids = record.redisPids.filter((pid) => pid !== redis.process.pid);
            }, () => {
              startLocalRedis({ dataDir: redisDir, appendOnly: true, port: redis.port }).then(keepRedis, (error: Error) => resolveExit(`${redisLabel} did not start again: ${error.message}`));
            }));
          };
          const redis = await startLocalRedis({ dataDir: redisDir, appendOnly: true });
          keepRedis(redis);
          redisUrl = redis.url;
          process.stderr.write(`redis${region.name ? ` (${region.name})` : ''}: private redis-server at ${redisUrl} (data in ${join(region.dir, 'redis')})\n`);
        }
        const env = {
          BAMBA_FILES_DIR: join(region.dir, 'files'),
          ...common,
          ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
          PORT: String(region.port),
          ...(region.name ? { BAMBA_REGION: region.name } : {}),
          ...(secret && regionMap ? { BAMBA_EDGE_SECRET: secret, BAMBA_REGIONS: regionMap } : {}),
          ...((regionNames?.length ?? 0) > 1 ? { BAMBA_REPLICATE_SESSIONS: 'true' } : {}),
        };
        for (const name of ['gpu-node', 'gateway', 'workers']) supervise(`${region.name ? `${region.name} ` : ''}${name}`, name, env);
      };
      void Promise.all(regions.map(spawnRegion)).catch((error: Error) => resolveExit(`a region did not start: ${error.message}`));
    });

    const failed = exited.then((reason) => { throw new Error(reason); });
    const allReady = Promise.all(regions.map((region) => waitUntilReady(`http://127.0.0.1:${region.port}`)));
    if (!(await Promise.race([allReady, failed])).every(Boolean)) throw new Error(`the stack did not become ready within ${READY_TIMEOUT_MS / 1000} s`);
    up = true;

    let apiKeyHint = settings.BAMBA_API_KEYS || settings.BAMBA_API_KEYS_FILE ? '<your key>' : null;
    if (edgeWanted) {
      // The edge is public by design, so it always wants a key: one is made for this run if none is set.
      const edgeKeys = settings.BAMBA_API_KEYS ?? (settings.BAMBA_API_KEYS_FILE ? readFileSync(settings.BAMBA_API_KEYS_FILE, 'utf8').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).join(',') : `bamba-local-${randomBytes(12).toString('hex')}:local`);
      if (!settings.BAMBA_API_KEYS && !settings.BAMBA_API_KEYS_FILE) apiKeyHint = edgeKeys.slice(0, edgeKeys.lastIndexOf(':'));
      edge = await Promise.race([startEdgeDev({ port, workDir: join(dataDir, 'edge'), bindings: { BAMBA_API_KEYS: edgeKeys, BAMBA_EDGE_SECRET: secret!, BAMBA_REGIONS: regionMap! } }), failed]);
      if (!(await Promise.race([waitUntilReady(url), failed]))) throw new Error('the edge did not become ready');
    }
    const auth = apiKeyHint ? ` -H "Authorization: Bearer ${apiKeyHint}"` : '';
    const layout = regionNames
      ? `  regions  ${regions.map((region) => `${region.name} http://127.0.0.1:${region.port}`).join('   ')}${edgeWanted ? `   (the edge at ${url} routes to them)` : ''}\n\n`
      : '';
    process.stdout.write(
      `\nBamba Serve is ready at ${url}  (Ctrl-C stops everything)\n\n` +
        layout +
        (edgeWanted ? '' : `  playground ${url}/   status ${url}/status\n\n`) +
        `  curl ${url}/v1/chat/completions -H 'Content-Type: application/json'${auth} \\\n` +
        `    -d '{"model":"${modelId ?? 'your-model'}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'\n\n`,
    );

    const stopSignal = new Promise<string>((resolveSignal) => {
      process.once('SIGINT', () => resolveSignal('SIGINT'));
      process.once('SIGTERM', () => resolveSignal('SIGTERM'));
    });
    const edgeExited = edge ? new Promise<string>((resolveExit) => edge!.process.once('exit', () => resolveExit('the edge (wrangler dev) exited'))) : new Promise<string>(() => {});
    const reason = await Promise.race([exited, stopSignal, edgeExited]);
    const crashed = reason.includes('exited');
    process.stderr.write(`bamba start: ${reason}, stopping the stack\n`);
    return shutdown(crashed ? 1 : 0);
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
