/**
 * Moving a session between regions: time to first token of the next turn in region eu after H
 * tokens of history were built in region us, for the session moved us → eu with its state
 * (`POST /v1/sessions/{id}/move`, the next turn resumes from the moved snapshot) next to the same
 * history sent to eu as a stateless request (a full replay), side by side in one run; plus the
 * move's own wall time and the snapshot bytes it carried. Two real regions on loopback, each its
 * own redis-server, gateway, gpu-node and workers; no edge: the move goes straight to eu, whose
 * workers pull the session from us. The character-level vocabulary makes H characters of system
 * prompt H tokens of history.
 */
import { randomBytes } from 'node:crypto';
import { freePort } from '@bamba/cli/local-redis';
import { MODEL_ID, startTestStack, type TestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { timedStream } from '../timed-stream.js';

// The tiny model's own context length; the longest history leaves room for two turns.
const CONTEXT = 4096;
const TURN_TOKENS = 16;
const NEXT_TURN = 'And what comes next?';

interface WireSession {
  id: string;
  turns: number;
  token_count: number;
  snapshot_bytes: number;
  state: string;
  messages: Array<{ role: string; content: string }>;
}

async function requestJson<T>(url: string, method: 'GET' | 'POST', body?: object): Promise<T> {
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  if (!response.ok) throw new Error(`${method} ${url} failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A session in `stack` with about `historyTokens` tokens of history, its first turn answered and its snapshot saved. */
async function sessionWithHistory(stack: TestStack, historyTokens: number, repetition: number): Promise<WireSession> {
  // Each repetition's history differs, so nothing cached for an earlier one can serve it.
  const system = `${repetition}: ${'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(historyTokens / 45))}`.slice(0, historyTokens);
  const { id } = await requestJson<{ id: string }>(`${stack.url}/v1/sessions`, 'POST', { model: MODEL_ID, system });
  await timedStream(stack.url, '/v1/chat/completions', { model: MODEL_ID, session_id: id, messages: [{ role: 'user', content: 'first turn' }], max_tokens: TURN_TOKENS, temperature: 0 }, '"content"');
  // The turn's end does not wait for the snapshot write; a move only carries a saved snapshot.
  return stack.waitFor('the first turn\'s snapshot', async () => {
    const session = await requestJson<WireSession>(`${stack.url}/v1/sessions/${id}`, 'GET');
    return session.turns === 1 && session.snapshot_bytes > 0 ? session : undefined;
  }, 30_000);
}

interface Sample { replayMs: number; movedMs: number; moveMs: number; snapshotBytes: number; historyTokens: number; promptTokens: number }

/** One side-by-side sample: the stateless replay in eu, and the session moved to eu then resumed. */
async function sample(us: TestStack, eu: TestStack, historyTokens: number, repetition: number): Promise<Sample> {
  const session = await sessionWithHistory(us, historyTokens, repetition);
  const nextTurn = { role: 'user', content: NEXT_TURN };

  const replay = async () => {
    const turn = await timedStream(eu.url, '/v1/chat/completions', { model: MODEL_ID, messages: [...session.messages, nextTurn], max_tokens: TURN_TOKENS, temperature: 0, stream_options: { include_usage: true } }, '"content"');
    if (turn.resume !== 'replay') throw new Error(`expected the stateless request to replay, got ${turn.resume}`);
    return { ttftMs: turn.ttftMs, promptTokens: Number(/"prompt_tokens":(\d+)/.exec(turn.body)?.[1] ?? -1) };
  };
  const moveAndResume = async () => {
    const started = performance.now();
    const moved = await requestJson<WireSession>(`${eu.url}/v1/sessions/${session.id}/move`, 'POST', { region: 'eu' });
    const moveMs = performance.now() - started;
    if (!moved.id.startsWith('sess_eu_') || moved.state !== 'snapshot') throw new Error(`unexpected move answer: id ${moved.id}, state ${moved.state}`);
    const turn = await timedStream(eu.url, '/v1/chat/completions', { model: MODEL_ID, session_id: moved.id, messages: [nextTurn], max_tokens: TURN_TOKENS, temperature: 0 }, '"content"');
    if (turn.resume !== 'snapshot') throw new Error(`expected the moved session to resume from its snapshot, got ${turn.resume}`);
    return { ttftMs: turn.ttftMs, moveMs, snapshotBytes: moved.snapshot_bytes, historyTokens: moved.token_count };
  };
  // Alternate which goes first, so neither always runs right after the other's work.
  if (repetition % 2 === 0) {
    const fromReplay = await replay();
    const fromMove = await moveAndResume();
    return { replayMs: fromReplay.ttftMs, movedMs: fromMove.ttftMs, moveMs: fromMove.moveMs, snapshotBytes: fromMove.snapshotBytes, historyTokens: fromMove.historyTokens, promptTokens: fromReplay.promptTokens };
  }
  const fromMove = await moveAndResume();
  const fromReplay = await replay();
  return { replayMs: fromReplay.ttftMs, movedMs: fromMove.ttftMs, moveMs: fromMove.moveMs, snapshotBytes: fromMove.snapshotBytes, historyTokens: fromMove.historyTokens, promptTokens: fromReplay.promptTokens };
}

export const regionMoveCase: BenchCase = {
  name: 'region-move',
  description: 'TTFT in eu after H tokens of history built in us on tiny: session moved with its state vs replay',
  async run({ quick }) {
    const histories = quick ? [1024] : [256, 1024, 3072];
    const repetitions = quick ? 2 : 5;
    const secret = randomBytes(32).toString('hex');
    const [usPort, euPort] = [await freePort(), await freePort()];
    const regions = JSON.stringify([{ name: 'us', url: `http://127.0.0.1:${usPort}` }, { name: 'eu', url: `http://127.0.0.1:${euPort}` }]);
    // No prefix cache in eu: the moved snapshot is indexed by its tokens there, and a stateless
    // request with the same history would otherwise resume from it instead of replaying.
    const region = (name: string, port: number, nodeEnv: Record<string, string>) => startTestStack({
      region: name,
      workers: 1,
      nodeEnv: { BAMBA_REPLICATE_SESSIONS: 'true', BAMBA_CONTEXT_SIZE: String(CONTEXT), ...nodeEnv },
      gatewayEnv: { PORT: String(port), BAMBA_HOST: '127.0.0.1', BAMBA_EDGE_SECRET: secret },
      workersEnv: { BAMBA_EDGE_SECRET: secret, BAMBA_REGIONS: regions },
    });
    progress('two regions, us and eu (tiny model)');
    const started = await Promise.allSettled([region('us', usPort, {}), region('eu', euPort, { BAMBA_PREFIX_CACHE: 'false' })]);
    const stacks = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const results: Record<number, Sample[]> = {};
    try {
      const failed = started.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      const [us, eu] = stacks as [TestStack, TestStack];
      for (const history of histories) {
        results[history] = [];
        for (let repetition = 0; repetition < repetitions; repetition++) {
          progress(`H=${history}, ${repetition + 1}/${repetitions}`);
          results[history].push(await sample(us, eu, history, repetition));
        }
      }
    } finally {
      await Promise.all(stacks.map((stack) => stack.stop()));
    }

    const rows = histories.map((history) => {
      const samples = results[history]!;
      const of = (field: keyof Sample) => median(samples.map((one) => one[field]));
      const [replayMs, movedMs] = [of('replayMs'), of('movedMs')];
      return [history, of('historyTokens'), round(replayMs, 1), round(movedMs, 1), round(replayMs / movedMs, 2), round(of('moveMs'), 1), round(of('snapshotBytes') / 1e6, 3)];
    });
    return {
      raw: { results, repetitions },
      tables: [{
        title: 'Region move vs replay (tiny, two regions on loopback)',
        note: `Time to first token of a session's next turn in region eu after H tokens of history (a system prompt of H characters plus one answered turn) were built in region us, streaming, median of ${repetitions}. Moved: \`POST /v1/sessions/{id}/move {"region":"eu"}\` sent to eu (its workers pull the session and its snapshot from us), then the turn on the new id resumes from the moved snapshot. Replay: the same messages sent to eu as a stateless request (eu's prefix cache off), so the whole history is evaluated. Move: the POST's wall time; MB: the snapshot it carried. Each region is its own redis-server, in-process gateway, gpu-node (1 thread) and workers process, all sharing the machine's 2 cores, so figures are noisy.`,
        columns: ['H (chars)', 'history tokens', 'TTFT replay (ms)', 'TTFT moved (ms)', 'replay/moved', 'move (ms)', 'snapshot MB moved'],
        rows,
      }],
    };
  },
};
