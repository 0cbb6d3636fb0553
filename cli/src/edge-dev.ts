/**
 * Runs the edge Worker locally under `wrangler dev` (the project's own wrangler, fully offline):
 * for `bamba start --edge` and the multi-region tests. Its bindings go in a generated env file
 * (values such as the region map are JSON), which wrangler reads like `.dev.vars`. wrangler and
 * its workerd run in their own process group, so stopping them stops both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './local-redis.js';

/** The edge's wrangler config, from this package's place in the repository. */
export const EDGE_WRANGLER_CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra/edge/wrangler.toml');
const READY_TIMEOUT_MS = 60_000;
const PORT_ATTEMPTS = 3;
const PORT_TAKEN = /Address already in use/;

/** What keeps wrangler from calling out (metrics, the `cf` object) or talking to a terminal. */
export const WRANGLER_OFFLINE_ENV = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true', CI: 'true' };

export function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
}

export interface EdgeDev {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface EdgeDevOptions {
  /**
   * Where the edge listens. Without one, a free port is picked, and picked again if another
   * process takes it before wrangler binds it (ephemeral ports are shared with every outgoing
   * connection on the machine).
   */
  port?: number;
  /** The Worker's bindings (vars and secrets). */
  bindings: Record<string, string>;
  /** Where the env file and wrangler's state go. */
  workDir: string;
  /** Each line wrangler prints (default: dropped). */
  onLine?: (line: string) => void;
}

function envFileLine(name: string, value: string): string {
  // dotenv: single quotes keep JSON (double quotes, colons) as it is.
  if (value.includes("'") || value.includes('\n')) throw new Error(`${name}: the edge's local bindings may not hold quotes or newlines`);
  return `${name}='${value}'`;
}

export async function startEdgeDev(options: EdgeDevOptions): Promise<EdgeDev> {
  mkdirSync(options.workDir, { recursive: true });
  const envFile = join(options.workDir, 'edge.env');
  writeFileSync(envFile, `${Object.entries(options.bindings).map(([name, value]) => envFileLine(name, value)).join('\n')}\n`, { mode: 0o600 });
  if (options.port !== undefined) return launchEdgeDev(options, envFile, options.port);
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchEdgeDev(options, envFile, await freePort());
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !PORT_TAKEN.test((error as Error).message)) throw error;
    }
  }
}

async function launchEdgeDev(options: EdgeDevOptions, envFile: string, port: number): Promise<EdgeDev> {
  const child = spawn(process.execPath, [
    wranglerBin(), 'dev', '-c', EDGE_WRANGLER_CONFIG, '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', '0',
    '--env-file', envFile, '--persist-to', join(options.workDir, 'state'), '--show-interactive-dev-session=false', '--log-level', 'info',
  ], { env: { ...process.env, ...WRANGLER_OFFLINE_ENV }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`wrangler dev did not become ready within ${READY_TIMEOUT_MS / 1000} s:\n${output.slice(-2000)}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split('\n')) if (line.trim() !== '') options.onLine?.(line);
      if (/Ready on http/.test(output)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wrangler dev exited (code ${code}):\n${output.slice(-2000)}`));
    });
    child.once('error', reject);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      /* gone already */
    }
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await ready;
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, process: child, stop };
}
