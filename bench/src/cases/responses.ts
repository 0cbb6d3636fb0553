/**
 * The Responses API on saved state: time to first token of the 4th response of a chain linked
 * by `previous_response_id` (resumed from the 3rd's snapshot), against the same history sent
 * statelessly as a chat request twice: once as it is (the prefix cache finds the same snapshot)
 * and once with the instructions' first character changed (nothing cached: a full replay).
 * `small` preset, through the HTTP API, one stack; H characters of instructions are H tokens.
 */
import { resolve } from 'node:path';
import { DEFAULT_MODEL_SEED, ensureCachedModel } from '@bamba/model-gen';
import { startTestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { timedStream } from '../timed-stream.js';

const MODEL_ID = 'bamba-small';
const CONTEXT = 10_000;
const TURN_TOKENS = 16;

/** The final response object of a Responses stream. */
function finalResponse(body: string): { id: string; output: Array<{ content: Array<{ text: string }> }>; usage: { input_tokens_details: { cached_tokens: number } } } {
  const line = body.split('\n').filter((candidate) => candidate.startsWith('data: ') && /"type":"response\.(completed|incomplete)"/.test(candidate)).at(-1);
  if (!line) throw new Error('the response stream did not end with response.completed or response.incomplete');
  return (JSON.parse(line.slice(6)) as { response: ReturnType<typeof finalResponse> }).response;
}

export const responsesCase: BenchCase = {
  name: 'responses',
  description: 'TTFT of the 4th response of a previous_response_id chain vs the same history sent statelessly (cached and replayed), small',
  async run({ quick }) {
    const modelPath = ensureCachedModel(resolve('.cache'), 'small', DEFAULT_MODEL_SEED);
    const histories = quick ? [256] : [1024, 4096];
    const repetitions = quick ? 1 : 3;
    const stack = await startTestStack({ model: { path: modelPath, id: MODEL_ID }, nodeEnv: { BAMBA_SLOTS: '2', BAMBA_CONTEXT_SIZE: String(CONTEXT), BAMBA_THREADS: '1' } });
    const results: Record<number, { chain: number[]; cached: number[]; replay: number[]; cachedTokens: number[] }> = {};
    try {
      for (const history of histories) {
        results[history] = { chain: [], cached: [], replay: [], cachedTokens: [] };
        for (let repetition = 0; repetition < repetitions; repetition++) {
          progress(`H=${history}, ${repetition + 1}/${repetitions}`);
          // Each repetition its own instructions: nothing carries over from the one before.
          const instructions = `${repetition} ${'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil(history / 45))}`.slice(0, history);
          const messages: Array<{ role: string; content: string }> = [];
          let previous: string | null = null;
          let fourth = { ttftMs: 0, resume: '' };
          for (const [index, input] of ['First question?', 'Second question?', 'Third question?', 'Fourth question?'].entries()) {
            const turn = await timedStream(stack.url, '/v1/responses', { model: MODEL_ID, instructions, input, max_output_tokens: TURN_TOKENS, temperature: 0, ...(previous ? { previous_response_id: previous } : {}) }, 'response.output_text.delta');
            const response = finalResponse(turn.body);
            previous = response.id;
            messages.push({ role: 'user', content: input });
            if (index === 3) {
              fourth = turn;
              results[history]!.cachedTokens.push(response.usage.input_tokens_details.cached_tokens);
            } else {
              messages.push({ role: 'assistant', content: response.output[0]!.content[0]!.text });
            }
          }
          if (fourth.resume !== 'snapshot') throw new Error(`expected the 4th response to resume from a snapshot, got ${fourth.resume}`);
          const chat = (system: string) => timedStream(stack.url, '/v1/chat/completions', { model: MODEL_ID, messages: [{ role: 'system', content: system }, ...messages], max_tokens: TURN_TOKENS, temperature: 0 }, '"content"');
          const cached = await chat(instructions);
          const replayed = await chat(`#${instructions.slice(1)}`);
          if (replayed.resume !== 'replay') throw new Error(`expected the changed history to replay, got ${replayed.resume}`);
          results[history]!.chain.push(fourth.ttftMs);
          results[history]!.cached.push(cached.ttftMs);
          results[history]!.replay.push(replayed.ttftMs);
        }
      }
    } finally {
      await stack.stop();
    }
    const rows = histories.map((history) => {
      const { chain, cached, replay, cachedTokens } = results[history]!;
      return [history, round(median(chain), 1), round(median(cached), 1), round(median(replay), 1), round(median(replay) / median(chain), 2), median(cachedTokens)];
    });
    return {
      raw: { results, repetitions },
      tables: [{
        title: 'Responses: a previous_response_id chain vs stateless requests (small preset, through the HTTP API)',
        note: `Time to first token of the 4th response of a chain whose instructions are H tokens (streaming, ${TURN_TOKENS} tokens per answer), median of ${repetitions}. Stateless cached: the same history as one chat request (the prefix cache finds the same snapshot). Stateless replay: the same history with the instructions' first character changed, so nothing is cached and every token is evaluated.`,
        columns: ['H (tokens)', 'TTFT 4th response (ms)', 'TTFT stateless, cached (ms)', 'TTFT stateless, replay (ms)', 'replay / 4th response', 'cached tokens of the 4th'],
        rows,
      }],
    };
  },
};
