/**
 * n choices of one chat request whose messages are evaluated once for all of them (a prefill-only
 * job saves the state at their end; every choice resumes from it) against each choice evaluating
 * them itself (`BAMBA_SHARED_PREFILL_CHARS=0`): one stack, two gateways, alternating, a fresh
 * prompt each time. `small` preset, 4 slots, through the HTTP API; P characters are P tokens.
 */
import { resolve } from 'node:path';
import { parseGatewayConfig, silentLogger, startGateway } from '@bamba/gateway';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { startTestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';

const MODEL_ID = 'bamba-small';
const CHOICES = 4;
const ANSWER_TOKENS = 8;

interface ChoicesTiming {
  /** Until every choice had written text: what the slowest choice's reader waits. */
  allAnsweringMs: number;
  totalMs: number;
  /** Prompt tokens every choice found cached (usage's `cached_tokens`). */
  cachedTokens: number;
}

/** Stream a chat request for `CHOICES` answers; time until each choice wrote text, and the end. */
async function timedChoices(baseUrl: string, content: string): Promise<ChoicesTiming> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content }], max_tokens: ANSWER_TOKENS, temperature: 1, seed: 7, n: CHOICES, stream: true, stream_options: { include_usage: true } }),
  });
  if (response.status !== 200) throw new Error(`chat failed: ${response.status} ${await response.text()}`);
  const answering = new Set<number>();
  let allAnsweringMs = 0;
  let cachedTokens = -1;
  let pending = '';
  const decoder = new TextDecoder();
  for await (const bytes of response.body!) {
    pending += decoder.decode(bytes, { stream: true });
    const events = pending.split('\n\n');
    pending = events.pop()!;
    for (const event of events) {
      // Comment lines (`: …`) carry no data.
      const data = event.split('\n').find((line) => line.startsWith('data: '))?.slice('data: '.length);
      if (data === undefined || data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { choices: Array<{ index: number; delta: { content?: string } }>; usage?: { prompt_tokens_details: { cached_tokens: number } } | null };
      for (const choice of chunk.choices) {
        if (choice.delta.content) answering.add(choice.index);
      }
      if (chunk.usage) cachedTokens = chunk.usage.prompt_tokens_details.cached_tokens;
      if (allAnsweringMs === 0 && answering.size === CHOICES) allAnsweringMs = performance.now() - started;
    }
  }
  return { allAnsweringMs, totalMs: performance.now() - started, cachedTokens };
}

export const sharedPrefillCase: BenchCase = {
  name: 'shared-prefill',
  description: `n=${CHOICES} choices of one chat request: its messages evaluated once for all (shared prefill) vs by each choice, small`,
  async run({ quick }) {
    const modelPath = ensureCachedModel(resolve('.cache'), 'small', DEFAULT_MODEL_SEED);
    const lengths = quick ? [512] : [1024, 4096];
    const repetitions = quick ? 1 : 3;
    const stack = await startTestStack({
      model: { path: modelPath, id: MODEL_ID },
      nodeEnv: { BAMBA_SLOTS: String(CHOICES), BAMBA_CONTEXT_SIZE: '8192', BAMBA_THREADS: '1' },
      gatewayEnv: { BAMBA_SHARED_PREFILL_CHARS: '1' },
    });
    const separate = await startGateway(parseGatewayConfig({ ...stack.gatewayEnv, PORT: '0', BAMBA_SHARED_PREFILL_CHARS: '0' }), { logger: silentLogger });
    const results: Record<number, { shared: ChoicesTiming[]; separate: ChoicesTiming[] }> = {};
    try {
      for (const length of lengths) {
        results[length] = { shared: [], separate: [] };
        for (let repetition = 0; repetition < repetitions; repetition++) {
          progress(`P=${length}, ${repetition + 1}/${repetitions}`);
          // A prompt of its own each time (its first characters differ): nothing is cached before.
          const prompt = (mode: string) => `${mode}${repetition} ${'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(length / 45))}`.slice(0, length);
          const order = repetition % 2 === 0 ? (['shared', 'separate'] as const) : (['separate', 'shared'] as const);
          for (const mode of order) {
            // The previous run's snapshot writes end first: each run starts on an idle node.
            await stack.waitFor('an idle gpu-node', async () => ((await stack.nodeStatuses())[0]?.busySlots === 0 ? true : undefined));
            const timing = await timedChoices(mode === 'shared' ? stack.url : separate.url, prompt(mode));
            // Every choice resumed from the prefill's state (shared), or none found anything (separate).
            if (mode === 'shared' && timing.cachedTokens < length / 2) throw new Error(`expected every choice to resume from the shared prefill, cached tokens ${timing.cachedTokens}`);
            if (mode === 'separate' && timing.cachedTokens !== 0) throw new Error(`expected every choice to evaluate its prompt, cached tokens ${timing.cachedTokens}`);
            results[length]![mode].push(timing);
          }
        }
      }
    } finally {
      await separate.close();
      await stack.stop();
    }
    const rows = lengths.map((length) => {
      const { shared, separate: alone } = results[length]!;
      const pick = (timings: ChoicesTiming[], field: 'allAnsweringMs' | 'totalMs') => median(timings.map((timing) => timing[field]));
      return [
        length,
        round(pick(shared, 'allAnsweringMs'), 1), round(pick(alone, 'allAnsweringMs'), 1), round(pick(alone, 'allAnsweringMs') / pick(shared, 'allAnsweringMs'), 2),
        round(pick(shared, 'totalMs'), 1), round(pick(alone, 'totalMs'), 1), round(pick(alone, 'totalMs') / pick(shared, 'totalMs'), 2),
      ];
    });
    return {
      raw: { results, repetitions },
      tables: [{
        title: `n = ${CHOICES} choices: messages evaluated once for all vs by each choice (small preset, through the HTTP API)`,
        note: `One chat request for ${CHOICES} streamed answers of ${ANSWER_TOKENS} tokens whose message is P tokens, on a CPU gpu-node with ${CHOICES} slots and 1 thread, median of ${repetitions} (alternating, a fresh prompt each time). Shared: a prefill-only job evaluates the message once and saves the state there, every choice resumes from it (BAMBA_SHARED_PREFILL_CHARS). Separate: each choice evaluates it (BAMBA_SHARED_PREFILL_CHARS=0). "All answering": until the last choice wrote its first text.`,
        columns: ['P (tokens)', 'all answering, shared (ms)', 'all answering, separate (ms)', 'separate / shared', 'total, shared (ms)', 'total, separate (ms)', 'separate / shared'],
        rows,
      }],
    };
  },
};
