/**
 * `bamba start` (what `npm start` runs) as a user meets it: it comes up and serves; a process of
 * the stack that dies is started again and the stack keeps serving; Ctrl-C ends an open stream
 * with a clean error event (not a cut connection), and leaves no process behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '@bamba/cli/local-redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_ID, readSseRest } from './support/stack.js';

const CLI = resolve('cli/dist/main.js');
let dataDir: string;
let url: string;
let start: ChildProcess;
let output = '';

/** The stack's processes now: pid and what runs (`gpu-node`, `gateway`, `workers`, `redis-server`). */
function stackProcesses(): Array<{ pid: number; role: string }> {
  const text = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(start.pid)], { encoding: 'utf8' });
  return text.trim().split('\n').filter((line) => line.trim() !== '').map((line) => {
    const [pid, ...args] = line.trim().split(/\s+/);
    const command = args.join(' ');
    return { pid: Number(pid), role: command.includes('redis-server') ? 'redis-server' : (command.match(/main\.js (\S+)/)?.[1] ?? command) };
  });
}
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; bamba start said:\n${output.slice(-3000)}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

const chat = (body: Record<string, unknown>) => fetch(`${url}/v1/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], temperature: 0, ...body }),
});

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bamba-start-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  start = spawn(process.execPath, [CLI, 'start'], {
    env: { ...process.env, PORT: String(port), BAMBA_DATA_DIR: dataDir, BAMBA_DRAIN_TIMEOUT_MS: '300', BAMBA_THREADS: '1', BAMBA_SLOTS: '2', BAMBA_HOST_TIER_BYTES: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [start.stdout!, start.stderr!]) stream.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  await waitFor('the stack to be ready', () => (output.includes('Bamba Serve is ready at') ? true : undefined), 120_000);
});
afterAll(async () => {
  if (start && start.exitCode === null && start.signalCode === null) {
    start.kill('SIGINT');
    await new Promise((resolveExit) => start.once('exit', resolveExit));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('bamba start', () => {
  it('serves once ready, and starts a gpu-node, workers or redis-server process that died again', async () => {
    expect((await chat({ max_tokens: 4 })).status).toBe(200);
    const session = (await (await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID }) })).json()) as { id: string };
    expect((await chat({ max_tokens: 4, session_id: session.id })).status).toBe(200);
    for (const role of ['gpu-node', 'workers', 'redis-server']) {
      const before = stackProcesses().find((entry) => entry.role === role)!;
      expect(before, role).toBeDefined();
      process.kill(before.pid, 'SIGKILL');
      await waitFor(`${role} to be started again`, () => stackProcesses().find((entry) => entry.role === role && entry.pid !== before.pid));
      expect(output).toContain(`${role} exited (SIGKILL); starting it again`);
    }
    await waitFor('the stack to be ready again', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    const answer = await chat({ max_tokens: 4 });
    expect(answer.status).toBe(200);
    // Redis came back from its append-only file: the committed turn is there.
    expect(((await (await fetch(`${url}/v1/sessions/${session.id}`)).json()) as { turns: number }).turns).toBe(1);
    expect(start.exitCode).toBeNull();
  });

  it('ends an open stream with an error event on Ctrl-C, exits 0 and leaves no process behind', async () => {
    const processes = stackProcesses();
    expect(processes.map((entry) => entry.role).sort()).toEqual(['gateway', 'gpu-node', 'redis-server', 'workers']);
    const stream = await chat({ max_tokens: 3000, stream: true });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    await reader.read(); // tokens are flowing
    const exited = new Promise<number | null>((resolveExit) => start.once('exit', (code) => resolveExit(code)));
    start.kill('SIGINT');
    const events = await readSseRest(reader);
    const last = JSON.parse(events.at(-1)!) as { error?: { code: string } };
    // The gpu-node's drain hands the job back (node_failed), or the gateway's ends it (gateway_stopping).
    expect(['node_failed', 'gateway_stopping']).toContain(last.error?.code);
    expect(await exited).toBe(0);
    for (const entry of processes) expect(alive(entry.pid), entry.role).toBe(false);
  });
});
