/**
 * Starts a private `redis-server` on a free loopback port: for `bamba start` (data kept under
 * .data/ with the append-only file on) and for tests (a throwaway folder).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

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

export async function startLocalRedis(options: { dataDir: string; appendOnly: boolean }): Promise<LocalRedis> {
  mkdirSync(options.dataDir, { recursive: true });
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', options.dataDir,
      '--appendonly', options.appendOnly ? 'yes' : 'no', '--save', '', '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, exited, spawnFailed);
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

async function waitForPing(url: string, exited: Promise<number | null>, spawnFailed: Promise<Error>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let done = false;
  const failure = Promise.race([
    exited.then((code) => { throw new Error(`redis-server exited with code ${code}`); }),
    spawnFailed.then((error) => { throw error; }),
  ]);
  failure.catch(() => {});
  while (!done && Date.now() < deadline) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await Promise.race([client.connect().then(() => client.ping()), failure]);
      done = true;
    } catch (error) {
      if (!(error instanceof Error) || /exited|ENOENT/.test(error.message) || (error as NodeJS.ErrnoException).code === 'ENOENT') throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
  if (!done) throw new Error('redis-server did not answer within 10 s');
}
